#!/usr/bin/env bash
# Issue 17's small-model study (items 2, 3, 5), one command: the two ~0.7M-parameter models pretrained
# here on Fashion-MNIST (fmnist_cnn, 8 blocks; fmnist_vit, 6 blocks) adapted to sklearn digits under the
# CPU study's equal-budget protocol (experiment=small_models_digits): every method with its own recipe
# (conf/method/*.yaml, docs/recipes.md), N = 8 select runs from its own declared space by one rule (AP's
# layer is part of AP's N), 3 final seeds on train+val, tested once on the 797 test images. Then the
# layer figure (its own results folder: it never feeds the methods table): AP at every point and
# layer-wise norm tuning at every point (BatchNorm of one block for the CNN, the one LayerNorm right
# after the point for the ViT), each point searched like a methods-table cell with its layer fixed; then
# tables, curves, plots and the efficiency pass.
# Resumable: finished runs are skipped, so re-running completes only what is missing.
#   bash scripts/study_small_models_digits.sh [extra overrides...]
#   PLAN_ONLY=1 bash scripts/study_small_models_digits.sh     # run counts (apbench plan --measure none)
#
# The plan (fixed before the runs below; the same for every method). Second version, 2026-12-01 (the first,
# at E = 1 with 2 lr points per layer-figure point, is in git history: 1 epoch left every cell's
# convergence check with nothing to read):
#   E = 3 epochs (75 steps of batch 32; final runs 96 steps on train+val), warm-up and milestones kept as
#   fractions of each reference schedule; N = 8 select runs per methods-table cell (protocol.budget); final
#   seeds 0, 1, 2; 32 px; batch 32 (linear-rule lrs rescaled by 32/256); prompt methods at 10 tokens
#   (vpt's default; gated_prompt's reference 100 was for ViT-B's 196 patch tokens, this ViT has 64;
#   e2vpt_no_pruning at its defaults, 5 visual + 5 key-value tokens).
#   Layer figure: at every point the methods table's selection, the layer fixed: N = 8 select runs from
#   the method's own space (AP: 4 prompt lrs x 2 head lrs, the whole grid; norm tuning: 5 lrs x 4 head lrs
#   x 2 weight decays, halton(seed=0)), one final seed (0). (A first try of this version fixed the head lr
#   at the methods-table cell's choice: norm tuning's, chosen with every norm layer trained, was 1e-3, and
#   one block's BNs with that head stayed 20 points below the linear probe; the head's lr is the method's
#   to search, so it is searched at every point.)
#   Runs:
#     methods   fmnist_cnn: linear_probe, full_ft, norm_tuning, ap (layer on val)    4 jobs, 44 runs (32 + 12)
#               fmnist_vit: the same + vpt, gated_prompt, e2vpt_no_pruning           7 jobs, 77 runs (56 + 21)
#     layers    AP:   fmnist_cnn input,0..8 (10 jobs), fmnist_vit input,0..6 (8 jobs): 18 x (8 + 1) = 162
#               norm: fmnist_cnn 0..8 (9 jobs), fmnist_vit 0..6 (7 jobs):               16 x (8 + 1) = 144
#     total     121 + 306 = 427 runs
#   Time: measured on 2026-12-01, the two lanes below side by side beside other jobs: 15:56-17:03, the
#   records' wall_time_s summing to 4,684 s for the 427 runs (ViT methods 2,076 s, ViT layers 1,503 s,
#   CNN methods 343 s, CNN layers 762 s). The two models' lanes are independent
#   (the layer figure of a model needs only that model's methods table), so `MODELS=fmnist_cnn SKIP_REPORT=1` and
#   `MODELS=fmnist_vit SKIP_REPORT=1` can run side by side on 2 cores (one thread each), then the report:
#     MODELS= bash scripts/study_small_models_digits.sh   # no training left: tables, curves, measure
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=results/small-models-digits
X=(experiment=small_models_digits trainer.measure_efficiency=false "$@")
SWEEP=("protocol.seeds=[0]")   # the layer figure's own protocol: one final seed
SWEEP_DIR="$PWD/$OUT/layer-sweep/runs"
CACHE="${TMPDIR:-/tmp}/apbench-small-models-digits-prefix"   # shared frozen-prefix activations (a cache only)
export OMP_NUM_THREADS=1
status=0
if [ "${PLAN_ONLY:-0}" = 1 ]; then run() { apbench plan "$@" --measure none; }
else run() { apbench run "$@" trainer.prefix_cache_dir="$CACHE" || status=$?; }; fi

sweep() {  # sweep METHOD MODEL POINTS [overrides]: the layer figure, the method's own space minus the layer
  local method=$1 model=$2 points=$3; shift 3
  run -m "${X[@]}" "${SWEEP[@]}" model=$model method=$method method.layers=$points "$@" "paths.results_dir=$SWEEP_DIR"
}

fmnist_cnn() {
  run -m "${X[@]}" model=fmnist_cnn method=linear_probe,ap,norm_tuning,full_ft
  sweep ap fmnist_cnn input,0,1,2,3,4,5,6,7,8 method.space.method.layers=null
  sweep norm_tuning fmnist_cnn 0,1,2,3,4,5,6,7,8 'method.kinds=[batchnorm]' method.where=block
}
fmnist_vit() {
  run -m "${X[@]}" model=fmnist_vit method=linear_probe,ap,vpt,e2vpt_no_pruning   # vpt's default is 10 tokens
  run -m "${X[@]}" model=fmnist_vit method=gated_prompt method.num_tokens=10
  run -m "${X[@]}" model=fmnist_vit method=norm_tuning,full_ft
  sweep ap fmnist_vit input,0,1,2,3,4,5,6 method.space.method.layers=null
  sweep norm_tuning fmnist_vit 0,1,2,3,4,5,6 'method.kinds=[layernorm]' method.where=after
}
# The cheap CNN first, so the layer figure of at least one model exists early.
for model in ${MODELS-fmnist_cnn fmnist_vit}; do
  case $model in fmnist_cnn|fmnist_vit) "$model" ;;
    *) echo "MODELS: unknown model '$model' (choices: fmnist_cnn fmnist_vit)" >&2; exit 2 ;; esac
done
if [ "${PLAN_ONLY:-0}" = 1 ] || [ "${SKIP_REPORT:-0}" = 1 ]; then exit $status; fi

apbench results "$OUT/runs" --out "$OUT" --reference linear_probe
apbench results "$SWEEP_DIR" --out "$OUT/layer-sweep"
# learning curves per cell and the convergence check (val over the last 20 % of epochs within 1 point of its max)
python -m apbench.results.curves "$OUT/runs" --out "$OUT/curves"
# the efficiency table measured back to back in one process (per model: every cell once)
apbench measure --records "$OUT/runs" --baseline full_ft --out "$OUT" > "$OUT/efficiency-measured.txt" || status=$?
# the offline results browser of each folder, last: it shows every figure written above
apbench results "$OUT/runs" --out "$OUT" --html-only || status=$?
apbench results "$SWEEP_DIR" --out "$OUT/layer-sweep" --html-only || status=$?
exit $status
