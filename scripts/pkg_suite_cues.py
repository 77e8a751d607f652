"""The two trivial cues of every pkg task (docs/pkg_suite.md quotes this script's output):
the majority class, and a logistic regression on each image's pixel mean and variance.

    PYTHONPATH=src python scripts/pkg_suite_cues.py --root data      # after `apbench data prepare pkg`
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from apbench.data.pkgsuite import TASKS
from apbench.data.pkgsuite.cues import task_cues
from apbench.data.pkgsuite.write import task_folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="data", help="the data root the tasks were written to (default: data)")
    a = ap.parse_args(argv)
    print("| task | group | classes | chance | majority class | logistic on (mean, variance) | fit / test images |")
    print("|---|---|---|---|---|---|---|")
    for name, task in TASKS.items():
        folder = task_folder(a.root, name)
        if not (folder / "test.txt").is_file():
            print(f"{name}: not written under {a.root}; run `apbench data prepare {name} --root {a.root}`",
                  file=sys.stderr)
            return 2
        c = task_cues(folder)
        print(f"| {name} | {task.group} | {c['classes']} | {c['chance']:.1f} | {c['majority']:.1f} | "
              f"{c['mean_var']:.1f} | {c['n_fit']} / {c['n_test']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
