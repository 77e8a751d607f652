"""Results browser at scale: a folder of 10,000 synthetic records (tests/synthetic_records.py: 20 VTAB-style
datasets x 4 backbones x 25 cells, each cell 2 select + 3 final runs with per-image predictions), the page
`apbench results --html-only` writes for it, and its load time in Debian's chromium (playwright), as
the browser reports it: the navigation's loadEventEnd and the moment the page's script finished its
first render (``window.apbenchRendered``, performance.now()), median of several fresh loads; and the
first click on a cell until its detail is drawn (the details and comparisons are unpacked then).
Target: a load under 2 s.

    PYTHONPATH=src python benchmarks/bench_results_browser.py [--datasets 20 --models 4 --cells 25 --loads 7]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the synthetic record writer

import synthetic_records as sr  # noqa: E402

from apbench.commands.results import main as results_main  # noqa: E402

VTAB = [("caltech101", "natural"), ("cifar", "natural"), ("dtd", "natural"), ("flowers", "natural"),
        ("pets", "natural"), ("svhn", "natural"), ("sun397", "natural"), ("camelyon", "specialized"),
        ("eurosat", "specialized"), ("resisc45", "specialized"), ("retinopathy", "specialized"),
        ("clevr_count", "structured"), ("clevr_dist", "structured"), ("dmlab", "structured"),
        ("kitti", "structured"), ("dsprites_loc", "structured"), ("dsprites_ori", "structured"),
        ("snorb_azim", "structured"), ("snorb_elev", "structured"), ("extra", "natural")]
TARGET_S = 2.0


def methods(cells: int) -> list[tuple]:
    """The 7 methods of the tests plus AP at as many further layers as make ``cells`` cells."""
    base = list(sr.METHODS)
    ap = next(m for m in base if m[0] == "ap")
    layers = [k for k in range(64) if [k] not in [m[1] for m in base]]
    extra = [("ap", [k], *ap[2:3], ap[3] - 0.001 * k, ap[4] + 100 * k, ap[5] * (1 + k / 8), ap[6], ap[7])
             for k in layers[: cells - len(base)]]
    return base + extra


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--datasets", type=int, default=20)
    p.add_argument("--models", type=int, default=4)
    p.add_argument("--cells", type=int, default=25)
    p.add_argument("--loads", type=int, default=7)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--keep", type=Path, default=None, help="write the records and the page here and keep them")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        t0 = time.perf_counter()
        records = sr.study(datasets=VTAB[: args.datasets], models=[f"model_{i}" for i in range(args.models)],
                           methods=methods(args.cells), unpaired=())
        sr.write(root / "runs", records)
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            assert results_main([str(root / "runs"), "--out", str(root), "--html-only"]) == 0
        t_build = time.perf_counter() - t0
        page = root / "index.html"
        print(f"{len(records)} records ({args.datasets} datasets x {args.models} backbones x {args.cells} cells), "
              f"written in {t_write:.1f} s; page built in {t_build:.1f} s (apbench results --html-only); "
              f"index.html {page.stat().st_size / 1e6:.1f} MB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        loads, rendered, opened = [], [], []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True)
            print(f"chromium {browser.version}, headless, {args.loads} fresh loads from file://")
            for _ in range(args.loads):
                ctx = browser.new_context(viewport={"width": 1400, "height": 900})
                tab = ctx.new_page()
                errors = []
                tab.on("pageerror", lambda e: errors.append(str(e)))
                tab.goto(page.as_uri(), wait_until="load")
                tab.wait_for_function("() => window.apbenchRendered !== undefined")
                nav = tab.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
                loads.append(nav / 1e3)
                rendered.append(tab.evaluate("() => window.apbenchRendered") / 1e3)
                rows = tab.eval_on_selector_all("#methods tbody tr", "r => r.length")
                t0 = time.perf_counter()  # the first click unpacks the details and comparisons (gzip'd JSON)
                tab.click("#methods tbody tr >> nth=0")
                tab.wait_for_selector('#drawer[data-ready="1"]')
                opened.append(time.perf_counter() - t0)
                assert not errors, errors
                ctx.close()
            browser.close()
    med_load, med_render = statistics.median(loads), statistics.median(rendered)
    print(f"rows in the methods table: {rows}")
    print(f"first render done (s): median {med_render:.3f}  (all: {', '.join(f'{v:.3f}' for v in rendered)})")
    print(f"load event end (s):    median {med_load:.3f}  (all: {', '.join(f'{v:.3f}' for v in loads)})")
    print(f"first cell detail (s): median {statistics.median(opened):.3f}  (click to drawn, unpacking included)")
    verdict = "under" if max(med_load, med_render) < TARGET_S else "OVER"
    print(f"{verdict} the {TARGET_S:.0f} s target")
    return 0 if verdict == "under" else 1


if __name__ == "__main__":
    sys.exit(main())
