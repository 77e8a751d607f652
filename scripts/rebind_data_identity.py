"""Re-bind finished records to a re-written copy of the same generated data (a one-off migration, recorded).

A run's data digest (``apbench.identity.dataset_digest``) reads each image's name, size and mtime: cheap,
and it notices an image rewritten in place. Until `apbench data prepare` fixed the mtimes of what it
writes, every copy of a pkg task had its own mtimes, so the records of a study made on one copy read as
"made from other inputs" on any other copy, and a resumed study trained them again. This script re-binds
such records, and only where nothing but that listing can have changed:

- the record's config digest and weights are those of the run as it would run now (`identity.changes`
  names the data alone);
- every split's folder is a task written by `apbench data prepare`: its manifest's content digest equals
  the sha256 of the files now there (nothing edited since), and its generator version is the current one;
- the record says which listing it had before: ``identity_rebound`` keeps the old identity, the manifest
  digest it was re-bound against, the time and the reason. Run ids and every number are unchanged.

    PYTHONPATH=src python scripts/rebind_data_identity.py RUNS_DIR [RUNS_DIR ...] [--dry-run]
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import OmegaConf

from apbench import identity
from apbench.data.pkgsuite.write import GENERATOR_VERSION, files_digest
from apbench.results.store import write_record

WHY = ("the task was re-written by `apbench data prepare` (same generator, same content digest); the old "
       "listing differed only in file mtimes, which prepare did not fix before")


def generated_folder(rec: dict) -> Path | None:
    """The task folder a record's data came from, when `apbench data prepare` wrote it; else None."""
    source = (rec.get("data") or {}).get("source")
    folder = Path(str(source)) if source else None
    return folder if folder is not None and (folder / "manifest.json").is_file() else None


def rebind(rec: dict, now: str, checked: dict[Path, str]) -> tuple[str, dict | None]:
    """(what happened, the re-bound record or None)."""
    if rec.get("status") != "ok" or "identity" not in rec:
        return "not an ok record with an identity", None
    folder = generated_folder(rec)
    if folder is None:
        return "its data is not a task written by apbench data prepare", None
    if folder not in checked:
        manifest = json.loads((folder / "manifest.json").read_text())
        intact = (manifest.get("generator_version") == GENERATOR_VERSION
                  and manifest.get("digest") == files_digest(folder))
        checked[folder] = manifest["digest"] if intact else ""
    if not checked[folder]:
        return f"{folder}: its files are not what its manifest says (or another generator wrote it)", None
    cfg = OmegaConf.create(rec["config"])
    new = identity.of_config(cfg, rec["preprocessing"])
    changed = identity.changes(rec["identity"], new)
    if not changed:
        return "already bound", None
    if any(not c.startswith("the data") for c in changed):
        return f"more than the data changed: {'; '.join(changed)}", None
    out = dict(rec, identity=new)
    out["identity_rebound"] = {"at": now, "before": rec["identity"], "manifest_digest": checked[folder],
                               "why": WHY}
    return "re-bound", out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--dry-run", action="store_true", help="say what would be re-bound; write nothing")
    args = ap.parse_args(argv)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    checked: dict[Path, str] = {}
    counts: dict[str, int] = {}
    for runs in args.runs:
        for path in sorted(runs.glob("*/record.json")):
            rec = json.loads(path.read_text())
            what, out = rebind(rec, now, checked)
            key = what if what in ("re-bound", "already bound") else "left as it is"
            counts[key] = counts.get(key, 0) + 1
            if out is None and key == "left as it is":
                print(f"{path.parent.name}: left as it is: {what}", file=sys.stderr)
            if out is not None and not args.dry_run:
                write_record(path, out)
    print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + (" (dry run)" if args.dry_run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
