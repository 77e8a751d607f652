#!/usr/bin/env bash
# Issue 10's study, one command: every CNN method on bundled EfficientNet-Lite0 x Fashion-MNIST-1k,
# lr chosen on val200 per cell, 3 final seeds, then tables and plots. Resumable: finished runs are
# skipped, so re-running completes only what is missing.
#   bash scripts/study_cpu_lite0_fmnist1k.sh [extra overrides...]
#   PLAN_ONLY=1 bash scripts/study_cpu_lite0_fmnist1k.sh     # cost estimate, runs nothing
# On CPU it runs at 64 px (the preset). Where CUDA is available the same command runs at the model's
# full 224 px, with the VP pad / inner sizes scaled in proportion (8/64 -> 28/224, 48/64 -> 168/224);
# those records go to results/gpu-lite0-fmnist1k/, so the two studies never mix.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=results/cpu-lite0-fmnist1k
PAD=8 INNER=48
X=(experiment=cpu_lite0_fmnist1k)
if python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  PAD=28 INNER=168 OUT=results/gpu-lite0-fmnist1k
  X+=(model.preprocessing.image_size=224 "paths.results_dir=$PWD/$OUT/runs")
fi
X+=("$@")
# A sweep with refused cells exits 2 after running the rest; go on with the other groups, fail at the end.
status=0
if [ "${PLAN_ONLY:-0}" = 1 ]; then run() { apbench plan "$@" --measure each; }
else run() { apbench run "$@" || status=$?; }; fi
run -m "${X[@]}" method=linear_probe,full_ft,norm_tuning,bitfit,lora,ssf
run -m "${X[@]}" method=adapter method.variant=conv
run -m "${X[@]}" method=ap method.layers=input,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16
run -m "${X[@]}" method=vp method.variant=pad method.pad_width=$PAD method.head=linear,flm,ilm
run -m "${X[@]}" method=vp method.variant=expansive method.inner_size=$INNER method.head=linear,flm,ilm
run -m "${X[@]}" method=ap method.shape=channel method.layers=0,8,16
if [ "${PLAN_ONLY:-0}" != 1 ]; then
  apbench results "$OUT/runs" --out "$OUT" --reference linear_probe
  # the efficiency table measured back to back in one process (the records' own timings depend on load)
  apbench measure --records "$OUT/runs" --baseline full_ft --out "$OUT" > "$OUT/efficiency-measured.txt"
fi
exit $status
