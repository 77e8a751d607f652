"""Provenance for records: versions, device, git revision. Never environment variables (secrets)."""
from __future__ import annotations

import platform
import socket
import subprocess
from pathlib import Path

import torch


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but no CUDA GPU is visible; use device=auto or device=cpu")
    if choice not in ("cpu", "cuda"):
        raise ValueError(f"device {choice!r} unknown; choose auto, cuda or cpu")
    return torch.device(choice)


def environment(device: torch.device) -> dict:
    import timm

    info = {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
            "device": str(device), "threads": torch.get_num_threads(), "git": git_revision(),
            "host": socket.gethostname(), "platform": platform.platform()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
