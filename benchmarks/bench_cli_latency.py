"""How long the command line takes to answer, against the imports it cannot avoid (issue 23 item 3).

Each command runs in a fresh interpreter, interleaved with its baseline so a loaded machine's drift hits
both alike: listing and help commands against a bare ``python -c pass`` (target: at most 1 s, and no
torch), ``apbench layers`` and ``apbench data verify`` against ``python -c "import torch, timm"``
(target: at most 1 s beyond it). Medians of ``--repeats`` rounds.

    PYTHONPATH=src python benchmarks/bench_cli_latency.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

PY = [sys.executable]
BARE = PY + ["-c", "pass"]
TORCH = PY + ["-c", "import torch, timm"]
APB = PY + ["-m", "apbench"]
LISTING = [["--help"], ["methods"]] + [[c, "--help"] for c in
                                       ("run", "plan", "measure", "results", "analyze", "layers", "methods", "data")]
NEEDS_TORCH = [["layers", "efficientnet_lite0"], ["data", "verify", "fmnist1k", "--quick"]]


def seconds(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    rows = []
    for argv in LISTING + NEEDS_TORCH:
        base = TORCH if argv in NEEDS_TORCH else BARE
        pairs = [(seconds(base), seconds(APB + argv)) for _ in range(a.repeats)]
        b, c = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        rows.append((" ".join(argv), "import torch, timm" if base is TORCH else "python -c pass", b, c))
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.1f} at the end; medians of {a.repeats} interleaved rounds")
    print(f"{'apbench ...':<40} {'baseline':<20} {'base s':>7} {'cmd s':>7} {'cmd - base':>10}")
    for name, base, b, c in rows:
        print(f"{name:<40} {base:<20} {b:7.2f} {c:7.2f} {c - b:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
