"""One JSON record per run, written atomically.

A record is written to a temporary file in the target directory, flushed and fsynced, then renamed
over the final name: readers (and concurrent writers in a sweep) see either the previous complete
file or the new complete file, never a partial one.
"""
from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

from ..filemode import follow_umask
from .record_check import problems

RECORD_NAME = "record.json"
SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "oom", "skipped")
MAX_RECORD_BYTES = 256 << 20  # a record with the predictions of 100k test images is a few hundred kB


def _jsonable(value: Any) -> Any:
    """NaN/inf are not JSON; store them as null so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _jsonable(value.item())
    return value


def write_record(path: str | os.PathLike, record: dict) -> Path:
    """Atomically write ``record`` as JSON to ``path`` (a file path)."""
    path = Path(path)
    if record.get("status") not in STATUSES:
        raise ValueError(f"record status must be one of {STATUSES}, got {record.get('status')!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_jsonable(record), indent=2, sort_keys=True, allow_nan=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        follow_umask(fd)  # mkstemp makes 0600; a record is read by colleagues as any file is
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


class BadRecord(Exception):
    """A file that should hold a record but does not parse as one."""


def read_record(path: str | os.PathLike) -> dict:
    """The record at ``path``; ``BadRecord`` when it is not a regular file of a sane size holding a JSON
    object with ``run_id`` and a known ``status`` (a FIFO or device named record.json is never opened)."""
    path = Path(path)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise BadRecord(f"{path}: not a regular file")
        if st.st_size > MAX_RECORD_BYTES:
            raise BadRecord(f"{path}: {st.st_size} bytes, too large for a record (at most {MAX_RECORD_BYTES})")
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise BadRecord(f"{path}: not a readable JSON record ({str(e)[:200]})") from e
    if not isinstance(record, dict) or "status" not in record or "run_id" not in record:
        raise BadRecord(f"{path}: JSON but not an apbench record (needs 'run_id' and 'status')")
    if not isinstance(record["status"], str) or record["status"] not in STATUSES:
        raise BadRecord(f"{path}: status {str(record['status'])[:40]!r} is not one of {', '.join(STATUSES)}")
    return record


def iter_records(root: str | os.PathLike, bad: list | None = None) -> Iterator[dict]:
    """Yield every record under ``root`` fit for a table; unreadable and invalid ones
    (``record_check.problems``) are appended to ``bad`` as (path, reason) instead."""
    for path in sorted(Path(root).rglob("*.json")):
        if path.name.startswith("."):
            continue  # an in-flight temporary file of a concurrent writer
        if path.name != RECORD_NAME and not path.name.endswith(".record.json"):
            continue
        try:
            rec = read_record(path)
            if why := problems(rec):
                raise BadRecord(f"{path}: invalid record: {'; '.join(why)}")
        except BadRecord as e:
            if bad is not None:
                bad.append((str(path), str(e)))
            continue
        rec.setdefault("_path", str(path))
        yield rec


def finished_ok(path: str | os.PathLike) -> bool:
    """True when ``path`` holds a complete record whose status is ok (the run can be skipped)."""
    try:
        return read_record(path).get("status") == "ok"
    except BadRecord:
        return False
