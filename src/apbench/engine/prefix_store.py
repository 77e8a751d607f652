"""On-disk store of prefix-cache activations, shared by the runs of a sweep.

Every run of a grid (lr x weight decay, then the seeds) that trains after the same frozen point of
the same model on the same images computes the same prefix activations. With
``trainer.prefix_cache_dir=DIR`` the first run saves them and the others load them instead of
running the prefix again (a VTAB-style cell has 8 grid points + 5 seeds: 13 builds become 1).

A hit must be exact, so the key covers everything the activations depend on:

* the images, as the loader gives them (a digest of every input tensor and label, in order: any
  change of files, split, preprocessing or image size gives another key);
* the model: its class and module structure (``repr``), the names, dtypes and values of every frozen
  parameter and buffer, and the forward hooks registered on it (trainable tensors, e.g. a new head
  or a prompt, are left out so that runs with other seeds share the entry);
* the point, the stored dtype, the AMP mode, the batch size, the device type and the torch version.

Entries are written to a temporary file and renamed, so concurrent runs never read half an entry;
two runs racing on one key both write the same content. Nothing is ever evicted: delete the
folder to reclaim its space (each entry's size is in the run record).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..filemode import follow_umask, make_writable_dir

STORE_VERSION = 1


def _update(h, tensor: torch.Tensor) -> None:
    t = tensor.detach().to("cpu").contiguous()  # bytes, so any dtype (bf16 too) hashes exactly
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def _hooks(model: nn.Module) -> list[str]:
    """Qualified names of the forward (pre-)hooks on every module: a method that hooks the prefix
    changes the key even when it adds no tensor."""
    out = []
    for name, m in model.named_modules():
        for kind, hooks in (("pre", m._forward_pre_hooks), ("post", m._forward_hooks)):
            out += [f"{name}:{kind}:{getattr(fn, '__qualname__', type(fn).__name__)}" for fn in hooks.values()]
    return out


def model_fingerprint(model: nn.Module) -> str:
    h = hashlib.sha256()
    h.update(type(model).__qualname__.encode())
    h.update(repr(model).encode())
    h.update("\n".join(_hooks(model)).encode())
    for name, p in model.named_parameters():
        if not p.requires_grad:
            h.update(name.encode())
            _update(h, p)
    for name, b in model.named_buffers():
        h.update(name.encode())
        _update(h, b)
    return h.hexdigest()


def data_digest(batches) -> tuple[str, torch.Tensor]:
    """Digest of every (input, label) batch in order, and the labels."""
    h = hashlib.sha256()
    labels = []
    for x, y in batches:
        y = torch.as_tensor(y)
        _update(h, x)
        _update(h, y)
        labels.append(y)
    return h.hexdigest(), torch.cat(labels) if labels else torch.empty(0, dtype=torch.long)


class PrefixStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()

    def check_writable(self) -> None:
        """Raise ``OSError`` when the folder cannot be created or written."""
        make_writable_dir(self.root)

    @staticmethod
    def key(model_fp: str, point: str, dtype: torch.dtype, amp: str, batch_size: int, device: torch.device,
            data: str) -> str:
        parts = [f"v{STORE_VERSION}", model_fp, point, str(dtype), amp, str(batch_size),
                 torch.device(device).type, torch.__version__, data]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def load(self, key: str, labels: torch.Tensor) -> TensorDataset | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            acts, stored = entry["activations"], entry["labels"]
        except Exception:  # unreadable or foreign file: rebuild it (and overwrite it) rather than fail
            return None
        if not torch.equal(stored, labels) or len(acts) != len(labels):
            return None
        return TensorDataset(acts, stored)

    def save(self, key: str, ds: TensorDataset) -> int:
        """Write atomically; returns the bytes written (0 when the disk refused: the run goes on)."""
        acts, labels = ds.tensors
        tmp = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{key}-", suffix=".tmp")
            follow_umask(fd)
            with os.fdopen(fd, "wb") as f:
                torch.save({"activations": acts, "labels": labels}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path(key))
            return self.path(key).stat().st_size
        except OSError:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
            return 0


def lookup_or_build(store: PrefixStore, model_fp: str, batches, build, *, point: str,
                    dtype: torch.dtype, amp: str, batch_size: int, device: torch.device) -> tuple[TensorDataset, dict]:
    """The split's activations from the store, or ``build()`` them and save them. ``batches``: the
    split's (input, label) batches as the build reads them (read once here, for the digest)."""
    digest, labels = data_digest(batches)
    key = store.key(model_fp, point, dtype, amp, batch_size, device, digest)
    hit = store.load(key, labels)
    if hit is not None:
        return hit, {"key": key, "hit": True, "bytes_written": 0}
    built = build()
    return built, {"key": key, "hit": False, "bytes_written": store.save(key, built)}
