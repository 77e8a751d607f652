"""What makes two runs the same experiment.

``NOT_IDENTITY``: config options that say where things go or how they are shown, not what is
computed. They are left out of a run's identity and never split a results-table cell. Each entry is
a dotted config path; ``x.*`` removes the whole section ``x``. Every entry is backed by a test
showing bit-identical results with the option changed (tests/test_cells.py).
"""
from __future__ import annotations

NOT_IDENTITY = (
    "paths.*", "logger.*", "hydra.*", "force",
    "trainer.progress", "trainer.prefix_cache", "trainer.prefix_cache_dir",
    "trainer.measure_efficiency", "trainer.throughput_warmup", "trainer.throughput_iters",
    "dataset.cache", "dataset.cache_dir",
)
