"""A run's record is the same before and after a restructuring (issue 23 item 5).

tests/golden/record_lite0_ap.json is the record of one short run on the bundled ImageNet
EfficientNet-Lite0 (AP at block 8 and the linear probe's head, 32 px, Fashion-MNIST cut, one epoch),
written by the code of commit 3e68fb5 (before the commands/ restructuring) with

    PYTHONPATH=<checkout of 3e68fb5>/src python tests/test_record_identity.py tests/golden/record_lite0_ap.json

Everything that is not a clock reading or a machine fact must be identical: run id, identity digests,
resolved config, accuracies, losses, per-image predictions, parameter counts, memory and FLOPs.
"""
from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden" / "record_lite0_ap.json"
OVERRIDES = ["model=efficientnet_lite0", "dataset=fmnist_tiny", "trainer=fast", "device=cpu",
             "method=ap", "method.layers=[8]", "model.preprocessing.image_size=32", "seed=0"]
MACHINE_KEYS = {"env", "started_at", "finished_at"}  # the host, library builds and the clock


def _is_clock(key: str) -> bool:
    return key.endswith("_s") or "throughput" in key


def normalized(record: dict, root: str) -> dict:
    """The record without clock readings and machine facts, with the run's root folder as <ROOT>."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not _is_clock(k)}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            return value.replace(root, "<ROOT>")
        return value
    record = json.loads(json.dumps(record))  # tuples as the JSON file holds them
    out = clean({k: v for k, v in record.items() if k not in MACHINE_KEYS})
    out["weights"]["path"] = Path(out["weights"]["path"]).name  # where the package is installed
    return out


def run_once(root: str) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import compose
    from apbench.run import run
    record = run(compose(*OVERRIDES, f"paths.root_dir={root}"))
    assert record["status"] == "ok", record["error"]
    return normalized(record, root)


def same(a, b, key: str = "") -> bool:
    """Equal, except that a float loss may differ in its last float32 bits: the mean of float32 batch
    losses depends on which vector kernels the CPU gets (the golden record was written on an earlier
    machine; this one, with AVX-512, reads 2.3390133 where it read 2.3390132). Accuracies, predictions,
    counts, digests and everything else must match exactly."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], k) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, key) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and "loss" in key:
        return math.isclose(a, b, rel_tol=1e-6)
    return a == b


def test_a_run_record_is_identical_to_the_one_written_before_the_restructuring(tmp_path):
    golden = json.loads(GOLDEN.read_text())
    now = run_once(str(tmp_path))
    assert now["run_id"] == golden["run_id"]
    differing = sorted(k for k in golden.keys() | now.keys() if not same(golden.get(k), now.get(k), k))
    assert not differing, {k: (golden.get(k), now.get(k)) for k in differing}


if __name__ == "__main__":  # writes the golden record with whatever apbench is on the path
    with tempfile.TemporaryDirectory() as root:
        Path(sys.argv[1]).write_text(json.dumps(run_once(root), indent=1, sort_keys=True) + "\n")
