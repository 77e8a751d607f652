#!/usr/bin/env bash
# The README demo: a small real comparison on the bundled default (ImageNet-1k EfficientNet-Lite0,
# Fashion-MNIST-1k at 64 px, 5 epochs): linear probe, AP at a shallow, a middle and the last block,
# full fine-tuning. At 64 px `make demo` took 2 min 49 s on 2 idle CPU cores
# (2026-12-02; 112 px took 226 s). Finished runs are skipped when re-launched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${APBENCH_ROOT:-.}
apbench run -m experiment=demo method=linear_probe,full_ft trainer.progress=false
apbench run -m experiment=demo method=ap method.layers=1,8,16 trainer.progress=false
python scripts/demo_table.py "$ROOT/runs/demo" results/demo
