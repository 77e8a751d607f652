#!/usr/bin/env bash
# Issue 14's rerun of the CPU study, one command: every CNN method on bundled EfficientNet-Lite0 x
# Fashion-MNIST-1k with its own recipe (conf/method/*.yaml, docs/recipes.md) and the equal-budget
# search (N select runs per cell from the method's own space by one rule; AP's layer is part of AP's
# N), 3 final seeds tested on all 10,000 official test images; then the layer sweep as its own figure
# (its own results folder: it never feeds the methods table), the learning curves, tables and plots.
# Resumable: finished runs are skipped, so re-running completes only what is missing.
#   bash scripts/study_cpu_lite0_fmnist1k.sh [extra overrides...]
#   PLAN_ONLY=1 bash scripts/study_cpu_lite0_fmnist1k.sh     # cost estimate (apbench plan), runs nothing
#   REDO_COUNT=1 bash scripts/study_cpu_lite0_fmnist1k.sh    # which runs are done (by run id), which would train
#   SKIP_REPORT=1 bash scripts/study_cpu_lite0_fmnist1k.sh   # training only, no tables/curves/measure
# Two training lanes can share the 2 cores, each with one thread: start
# `OMP_NUM_THREADS=1 SKIP_REPORT=1 bash scripts/study_cpu_lite0_fmnist1k.sh` twice. Run leases make
# each run train once; in a cell, the lane that finishes its last select run while the other still holds
# one leaves the cell to that lane (the protocol never chooses from a partial budget), so the last lane
# to finish chooses and runs the finals. Then run the script once alone, without
# SKIP_REPORT: nothing is left to train, and the report (whose measure pass times back to back) runs on
# an otherwise idle machine.
#
# The plan (E fixed before any run; the same E for every method, warm-up and milestones kept as
# fractions of each reference schedule; records carry epochs_reference and epochs_used):
#   E = 12 epochs, N = 8 select runs per cell (protocol.budget), 3 final seeds, 64 px, batch 32.
#   Runs (`apbench plan ... --measure none` per group, as printed):
#     methods   77 + 11 + 11 + 22 = 121 runs (88 select + 33 final) in 11 cells: linear_probe, full_ft,
#               norm_tuning, bitfit, lora, ssf, ap (layer on val) | adapter conv | vp pad | vp_ilm ilm, flm;
#               every cell "8 select runs (equal budget)"; halton(seed=0) for the 9 spaces over 8 points,
#               grid for vp_ilm's 8-point space
#     layers    18 jobs x (4 select + 3 final) = 126 runs (72 + 54): AP at input, 0..16, only the prompt
#               lr searched (a 4-point grid), head lr fixed at AP's own choice in its methods-table cell
#               (AP's recipe, AdamW: the linear probe's head lr is an SGD lr per 256 images and does not carry over)
#     total     247 runs
#   Time: `apbench plan --measure each` cannot time cells on this machine while other sessions share
#   its 2 cores (three timed steps under load read 5-20x the idle speed; the previous study's README
#   saw the same: 22 h printed for an 89-min study; in this session `PLAN_ONLY=1` at E = 30 printed
#   175.6 h for the first group alone, full_ft timed at 19.5 s/step). E was therefore sized from the previous study's
#   records, taken on this machine with each run at about 1/2-2/3 of the 2 cores (the ~60 % assumed):
#   per epoch of 800 images, full-backward cells 8-12 s (full_ft 11.8, lora 12.1, norm 10.4, bitfit
#   8.6, adapter 8.9, vp 7.9, ilm 10.7, flm 8.3; ssf assumed 12 at its reference placement), AP
#   0.4 s (block 16) to 12 s (block 1), linear probe 0.1 s; final runs x 1.25 (train+val). Summed:
#   methods ~1,140 s and layer sweep ~520 s per epoch of E, plus ~3,800 s per study of fixed costs
#   (efficiency measures, prefix-cache builds, 10,000-image test passes of 87 final runs), so
#   ~1,660 s x E + 3,800 s: E = 12 -> 6.6 h, E = 14 -> 7.5 h, E = 16 -> 8.4 h. E = 12 leaves ~1.4 h of
#   the 8 for the tables, curves and measure pass and for noise. Rerun `PLAN_ONLY=1` on an idle
#   machine to check before launching; a cell the convergence check flags gets more epochs within
#   the budget or leaves the headline comparison with the reason stated.
#
# The redo under the edge rule (issue 24), declared before its first new run:
#   R = 1 reserve run per cell (protocol.reserve), k = 2 points retested with 1 further seed each
#   (protocol.retest, protocol.retest_seeds), in conf/experiment/cpu_lite0_fmnist1k.yaml: per cell
#   8 drawn + 1 reserve + 2 retest = 11 select-stage runs, then 3 final seeds. k and the seed count:
#   results/cpu-lite0-fmnist1k/retest-analysis.md (scripts/study_retest_analysis.py, the study's own val
#   records): the top 2 retested once cut the mean regret of the choice by a quarter (1.20 -> 0.90 val
#   points) for 2 runs, the most per run of the options; more (top 3 x 2: 0.65) does not fit the time.
#   R = 1 for the same reason: a second reserve run costs another 11 runs.
#   What trains (`REDO_COUNT=1 bash scripts/study_cpu_lite0_fmnist1k.sh`, scripts/redo_count.py, as
#   printed): the 88 drawn select runs are found by run id, and the 33 final runs where a choice stays;
#   33 runs train (11 edge-rule or sampler runs, 22 retest runs), 64 min at the fastest and 116 min at
#   the median of each cell's own recorded runs; each cell whose choice moves adds its 3 final runs
#   (full FT's 3 the most: 33-100 min). The layer sweep keeps its published protocol (reserve 0,
#   retest 0: nothing trains there) unless SWEEP_REDO=1, which gives its 18 points the same rule
#   (54 select-stage runs, about 70 min more, plus the final runs of moved points).
#   After training, the report splits the records by protocol (python -m apbench.results.compare):
#   the tables in $OUT are the edge rule's, $OUT/old-protocol the first protocol's, and
#   $OUT/edge-rule-comparison.md the two side by side.
#
# On CPU it runs at 64 px (the preset). Where CUDA is available the same command runs at the model's
# full 224 px with the reference VP sizes (30-px pad, 128-px inner image) into results/gpu-lite0-fmnist1k/,
# so the two studies never mix.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=results/cpu-lite0-fmnist1k
# VP sizes in proportion to the references' at 224 px: pad 30/224 -> 8/64; ILM-VP's inner 128/224 -> 36/64.
PAD=8 INNER=36
X=(experiment=cpu_lite0_fmnist1k)
if python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  PAD=30 INNER=128 OUT=results/gpu-lite0-fmnist1k
  X+=(model.preprocessing.image_size=224 "paths.results_dir=$PWD/$OUT/runs")
fi
X+=("$@")
SWEEP_DIR="$PWD/$OUT/layer-sweep/runs"
# A sweep with refused cells exits 2 after running the rest; go on with the other groups, fail at the end.
status=0
# Progress across sessions: the records on disk (247 before the edge rule: 121 + 126; the redo adds 33
# select-stage runs and the final runs of the choices that move).
progress() { echo "[study] $(ls "$OUT"/runs/*/record.json "$SWEEP_DIR"/*/record.json 2>/dev/null | wc -l) runs recorded; next: $*"; }
if [ "${PLAN_ONLY:-0}" = 1 ]; then run() { apbench plan "$@" --measure each; }
elif [ "${REDO_COUNT:-0}" = 1 ]; then run() { python scripts/redo_count.py "${@:2}"; }  # "$@" after -m
else run() { progress "${@:$((${#X[@]} + 2))}"; apbench run "$@" || status=$?; }; fi  # the args after -m and X

# 1. The methods table: every method, its recipe, N select runs from its own space, 3 final seeds.
run -m "${X[@]}" method=linear_probe,full_ft,norm_tuning,bitfit,lora,ssf,ap
run -m "${X[@]}" method=adapter method.variant=conv
run -m "${X[@]}" method=vp method.variant=pad method.pad_width=$PAD
run -m "${X[@]}" method=vp_ilm method.inner_size=$INNER method.head=ilm,flm

# 2. The layer sweep (a figure, never a choice): AP at every point, only the prompt lr searched, the
# head's lr fixed at the one AP's own cell chose in part 1 (read from its final record: the same recipe,
# AdamW; the linear probe's is an SGD lr per 256 images). Before that exists only PLAN_ONLY goes on.
HEAD_LR=$(python - "$OUT/runs" <<'PY'
import json, pathlib, sys
recs = [json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob("*/record.json"))]
ap = [r for r in recs if r.get("method") == "ap" and r.get("stage") == "final" and r.get("status") == "ok"
      and "head_lr" in r.get("hparams", {})]  # a record from before the recipes (one shared lr) has none
# The sweep's head lr is the one AP's cell chose under the first protocol (a selection without a reserve),
# so that the sweep's run ids, and so its records, stay the same when the edge rule moves AP's choice.
sel = lambda r: r["hparams"].get("selected_from")
first = [r for r in ap if not any("reserve" in s for s in (sel(r) if isinstance(sel(r), list) else [sel(r) or {}]))]
print((first or ap)[0]["hparams"]["head_lr"] if ap else "")
PY
)
if [ -z "$HEAD_LR" ]; then
  if [ "${PLAN_ONLY:-0}" = 1 ]; then HEAD_LR=1e-3  # any one value: the cost does not depend on it
  else echo "no finished AP cell in $OUT/runs: part 1 must finish first (rerun this script)" >&2; exit 2; fi
fi
SWEEP_RULE=(protocol.reserve=0 protocol.retest=0)  # the sweep as published; SWEEP_REDO=1: the preset's rule
[ "${SWEEP_REDO:-0}" = 1 ] && SWEEP_RULE=()
run -m "${X[@]}" method=ap method.layers=input,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 \
  method.space.method.layers=null "method.space.head_lr=[$HEAD_LR]" "paths.results_dir=$SWEEP_DIR" ${SWEEP_RULE[@]+"${SWEEP_RULE[@]}"}

if [ "${PLAN_ONLY:-0}" != 1 ] && [ "${REDO_COUNT:-0}" != 1 ] && [ "${SKIP_REPORT:-0}" != 1 ]; then
  # One folder holds both protocols' searches (finished runs were reused by run id): split them, so every
  # table below is the edge rule's, and the first protocol's tables are rebuilt beside them.
  SPLIT=$(mktemp -d)
  python -m apbench.results.compare "$OUT/runs" --split-to "$SPLIT" --out "$OUT/edge-rule-comparison.md"
  python scripts/study_retest_analysis.py --out "$OUT/retest-analysis.md" > /dev/null
  apbench results "$SPLIT/old" --out "$OUT/old-protocol" --reference linear_probe
  # against the linear probe (stats-*), and AP's row against every other (stats-*-vs-<AP's label>: AP vs VP,
  # AP vs BN tuning); AP's label names the layer its cell chose on val, so it is read from the records
  AP_LABEL=$(python -c 'import sys; from apbench.results.frame import load_records; from apbench.results.tables import final_ok
df = final_ok(load_records(sys.argv[1])[0]); print(*sorted(set(df[df.method == "ap"].label)), sep="\n")' "$SPLIT/new" | head -1)
  apbench results "$SPLIT/new" --out "$OUT" --reference linear_probe ${AP_LABEL:+--reference "$AP_LABEL"}
  # the sweep's figure with the methods table's linear probe, BN tuning, VP and full FT as reference lines
  apbench results "$SWEEP_DIR" --out "$OUT/layer-sweep" --baselines-from "$SPLIT/new"
  # learning curves per cell and the convergence check (val over the last 20 % of epochs within 1 point of its max)
  python -m apbench.results.curves "$SPLIT/new" --out "$OUT/curves"
  # the efficiency table measured back to back in one process (the records' own timings depend on load)
  apbench measure --records "$SPLIT/new" --baseline full_ft --out "$OUT" > "$OUT/efficiency-measured.txt"
  # the offline results browser of each folder, last: it shows every figure written above
  apbench results "$SPLIT/new" --out "$OUT" --html-only
  apbench results "$SWEEP_DIR" --out "$OUT/layer-sweep" --html-only
  rm -rf "$SPLIT"
fi
exit $status
