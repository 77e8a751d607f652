"""The pkg suite: an offline VTAB-style suite built from images that registry packages ship
(docs/pkg_suite.md). ``registry`` declares the tasks, ``natural`` and ``structured`` generate them,
``write`` puts them on disk in the VTAB-1k layout (``apbench data prepare pkg_<task>``)."""
from .registry import TASKS, Task

__all__ = ["TASKS", "Task"]
