#!/usr/bin/env bash
# Issue 10's study, one command: every CNN method on bundled EfficientNet-Lite0 x Fashion-MNIST-1k,
# lr chosen on val200 per cell, 3 final seeds, then tables and plots. Resumable: finished runs are
# skipped, so re-running completes only what is missing. On a GPU add: model.preprocessing.image_size=224
#   bash scripts/study_cpu_lite0_fmnist1k.sh [extra overrides...]
set -euo pipefail
cd "$(dirname "$0")/.."
X=(experiment=cpu_lite0_fmnist1k "$@")
OUT=results/cpu-lite0-fmnist1k
if [ "${PLAN_ONLY:-0}" = 1 ]; then run() { apbench plan "$@" --measure first; }; else run() { apbench run "$@"; }; fi
run -m "${X[@]}" method=linear_probe,full_ft,norm_tuning,bitfit,lora,ssf
run -m "${X[@]}" method=adapter method.variant=conv
run -m "${X[@]}" method=vp method.variant=pad method.pad_width=8 method.head=linear,flm,ilm
run -m "${X[@]}" method=vp method.variant=expansive method.inner_size=48 method.head=linear,flm,ilm
run -m "${X[@]}" method=ap method.layers=input,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16
run -m "${X[@]}" method=ap method.shape=channel method.layers=0,4,8,12,16
[ "${PLAN_ONLY:-0}" = 1 ] || apbench results "$OUT/runs" --out "$OUT"
