"""Write a pkg task in the VTAB-1k on-disk layout that ``data/vtab1k.py`` reads:

    <root>/vtab-1k/<task>/images/{train800,val200,test}/NNNN.png
    <root>/vtab-1k/<task>/{train800,val200,train800val200,test}.txt     "images/<split>/NNNN.png label"
    <root>/vtab-1k/<task>/meta.jsonl      one line per image: path, split, label and what it is made of
    <root>/vtab-1k/<task>/manifest.json   sizes, class counts per split, seed, package versions, digest

The same bytes every time: seeded draws, PNG through PIL with fixed options (PIL's PNG writer stores no
time), JSON with sorted keys; and the same listing every time: every file's mtime is set to
FIXED_MTIME, because a run's data digest (``identity.dataset_digest``) reads names, sizes and mtimes, so
records made from one copy stay valid for another copy written on any machine (a fresh clone resumes a
committed study instead of retraining it). The folder appears whole or not at all: it is written beside
its final place and renamed into it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from .natural import KINDS as NATURAL
from .registry import TASKS, TRAIN, VAL, Task
from .sampling import SPLITS
from .sources import Sources
from .structured import KINDS as STRUCTURED

KINDS = NATURAL | STRUCTURED
GENERATOR_VERSION = 1  # bump when a change alters the written bytes
FOLDERS = {"train": "train800", "val": "val200", "test": "test"}
PNG = {"format": "PNG", "optimize": False, "compress_level": 6}
FIXED_MTIME = 1_767_225_600  # 2026-01-01T00:00:00Z, in seconds: any constant would do, this one is kept


def declared_sizes(task: Task) -> dict[str, int]:
    return {"train": TRAIN, "val": VAL, "test": task.test}


def draw(task: Task, sizes: dict[str, int], src: Sources) -> dict[str, list[dict]]:
    """{split: one metadata dict per image}: labels and layouts, no pixels."""
    fn = KINDS[task.kind][0]
    return {s: fn(task, s, sizes[s], src) for s in SPLITS}


def render(task: Task, meta: dict, src: Sources) -> np.ndarray:
    return KINDS[task.kind][1](task, meta, src)


def files_digest(folder: Path) -> str:
    """sha256 over (relative path, file sha256) of every file under ``folder`` but manifest.json."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            h.update(f"{p.relative_to(folder).as_posix()}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def write_task(task: Task, dest: Path, sizes: dict[str, int], src: Sources) -> dict:
    """Write the task into the empty folder ``dest``; returns its manifest."""
    metas = draw(task, sizes, src)
    lists, meta_lines = {}, []
    for split in SPLITS:
        (dest / "images" / FOLDERS[split]).mkdir(parents=True)
        lines = []
        for i, meta in enumerate(metas[split]):
            rel = f"images/{FOLDERS[split]}/{i:04d}.png"
            Image.fromarray(render(task, meta, src), "L").save(dest / rel, **PNG)
            lines.append(f"{rel} {meta['label']}")
            meta_lines.append(json.dumps({"path": rel, "split": FOLDERS[split], **meta}, sort_keys=True))
        lists[FOLDERS[split]] = lines
    lists["train800val200"] = lists["train800"] + lists["val200"]
    for name, lines in lists.items():
        (dest / f"{name}.txt").write_text("\n".join(lines) + "\n")
    (dest / "meta.jsonl").write_text("\n".join(meta_lines) + "\n")
    counts = {FOLDERS[s]: np.bincount([m["label"] for m in metas[s]], minlength=task.num_classes).tolist()
              for s in SPLITS}
    manifest = {"task": task.name, "group": task.group, "kind": task.kind, "num_classes": task.num_classes,
                "seed": task.seed, "generator_version": GENERATOR_VERSION,
                "sizes": {FOLDERS[s]: sizes[s] for s in SPLITS} | {"train800val200": sizes["train"] + sizes["val"]},
                "declared_sizes": {FOLDERS[s]: n for s, n in declared_sizes(task).items()},
                "class_counts": counts, "versions": src.versions(), "digest": files_digest(dest)}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def task_folder(root: str | os.PathLike, name: str) -> Path:
    return Path(root) / "vtab-1k" / name


def prepare(name: str, root: str | os.PathLike, sizes: dict[str, int] | None = None,
            src: Sources | None = None) -> Path:
    """Write task ``name`` under ``root`` (``sizes``: {train, val, test} for a smaller copy; default the
    declared ones), replacing an older copy only once the new one is complete."""
    task = TASKS[name]
    sizes = declared_sizes(task) | (sizes or {})
    final = task_folder(root, name)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(f".{name}.partial-{os.getpid()}")
    old = final.with_name(f".{name}.old-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir()
        write_task(task, partial, sizes, src or Sources())
        for p in partial.rglob("*"):
            if p.is_file():
                os.utime(p, (FIXED_MTIME, FIXED_MTIME))
        if final.exists():
            final.rename(old)
        partial.rename(final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return final
