#!/usr/bin/env bash
# GPU checks that CPUs cannot do (AMP bf16/fp16, CUDA peak memory, throughput vs a timm-style loop,
# prefix cache, torch.compile, a device=cuda sweep). Prints one table; exits 1 if a check fails,
# 2 at once when no CUDA device is visible. At most 5 minutes on one GPU.
#   bash scripts/gpu_check.sh            # uses .venv/bin/python if present, else python3
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: torch ($PY) sees no CUDA device (or is not installed); run this on a machine with a GPU" >&2
  exit 2
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
timeout 300 "$PY" scripts/gpu_check.py "$@"
rc=$?
[ $rc -eq 124 ] && echo "gpu_check: over the 5-minute budget (timeout)" >&2
exit $rc
