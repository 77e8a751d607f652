#!/usr/bin/env bash
# The README demo: a small real comparison on the bundled default (ImageNet-1k EfficientNet-Lite0,
# Fashion-MNIST-1k at 112 px, 5 epochs): linear probe, AP at a shallow, a middle and the last block,
# full fine-tuning. About 4 minutes on 2 idle CPU cores (226 s measured; 452 s with the machine shared). Finished runs are skipped when re-launched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${APBENCH_ROOT:-.}
apbench run -m experiment=demo method=linear_probe,full_ft trainer.progress=false
apbench run -m experiment=demo method=ap method.layers=1,8,16 trainer.progress=false
python scripts/demo_table.py "$ROOT/runs/demo" results/demo
