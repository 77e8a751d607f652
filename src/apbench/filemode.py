"""Files written through a temporary name (``mkstemp``: mode 0600) get the mode the umask gives a new
file, so colleagues on a shared cluster can read records and checkpoints as they read any other file."""
from __future__ import annotations

import os


def _umask() -> int:
    # /proc tells it without changing it (os.umask can only be read by setting it, racing other threads).
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def follow_umask(path_or_fd) -> None:
    """chmod ``path_or_fd`` to 0666 minus the process's umask."""
    mode = 0o666 & ~_umask()
    if isinstance(path_or_fd, int):
        os.fchmod(path_or_fd, mode)
    else:
        os.chmod(path_or_fd, mode)


def make_writable_dir(path) -> bool:
    """Create folder ``path`` (and its parents) and write a probe file in it; ``OSError`` when either
    fails. True when this call created the folder. (Folder modes say too little: ACLs, read-only mounts.)"""
    import tempfile
    from pathlib import Path
    path = Path(path)
    existed = path.is_dir()
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
        pass
    return not existed
