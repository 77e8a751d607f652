"""A fake SLURM on PATH for launcher tests: sbatch, srun, sacct and scontrol as small shell scripts.

``sbatch`` records its argv and the submitted batch file, prints ``Submitted batch job 123`` and, with
``FAKE_SLURM_RUN=1``, runs each array task in the background the way SLURM would (array env vars set,
one task after the other). ``srun`` drops its options and runs the command. ``sacct`` reports every
array task as ``$FAKE_SLURM_STATE`` (RUNNING: done-ness then comes from submitit's result files).
``scontrol requeue ID`` records the call and, once the calling job process has exited, runs that task
again -- a preempted job coming back.
"""
from __future__ import annotations

import os
from pathlib import Path

_TASK_ENV = ('SLURM_JOB_ID=$((1000+$i)) SLURM_ARRAY_JOB_ID=123 SLURM_ARRAY_TASK_ID=$i SLURM_NTASKS=1 '
             'SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_JOB_NUM_NODES=1 SLURM_JOB_NODELIST=localhost')

SCRIPTS = {
    "sbatch": f"""#!/bin/bash
d="$FAKE_SLURM_DIR"; script="${{@: -1}}"
printf '%s\\n' "$@" > "$d/sbatch_argv"; cp "$script" "$d/batch.sh"
last=$(sed -n 's/^#SBATCH --array=0-\\([0-9]*\\).*/\\1/p' "$script")
if [ "$FAKE_SLURM_RUN" = 1 ]; then
  ( for i in $(seq 0 "${{last:-0}}"); do {_TASK_ENV} bash "$script" >> "$d/task_$i.log" 2>&1; done ) \\
    </dev/null >/dev/null 2>&1 &
fi
echo "Submitted batch job 123"
""",
    "srun": """#!/bin/bash
while [ $# -gt 0 ]; do case "$1" in --output|--error|-o|-e) shift 2;; -*) shift;; *) break;; esac; done
echo $$ > "$FAKE_SLURM_DIR/task_${SLURM_ARRAY_TASK_ID}.pid"
exec "$@"
""",
    "sacct": """#!/bin/bash
echo "JobID|State|NodeList"
last=$(sed -n 's/^#SBATCH --array=0-\\([0-9]*\\).*/\\1/p' "$FAKE_SLURM_DIR/batch.sh")
for i in $(seq 0 "${last:-0}"); do echo "123_$i|${FAKE_SLURM_STATE:-RUNNING}|localhost"; done
""",
    "scontrol": f"""#!/bin/bash
d="$FAKE_SLURM_DIR"; echo "$@" >> "$d/scontrol_calls"
if [ "$1" = requeue ]; then
  i="${{2#*_}}"; parent=$PPID
  ( while kill -0 $parent 2>/dev/null; do sleep 0.2; done
    {_TASK_ENV} bash "$d/batch.sh" >> "$d/task_$i.log" 2>&1 ) </dev/null >/dev/null 2>&1 &
fi
""",
}


def install(tmp: Path, run: bool, state: str = "RUNNING") -> dict:
    """Write the fakes into ``tmp/bin``; return an environment that puts them first on PATH."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, text in SCRIPTS.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_SLURM_DIR=str(tmp),
                FAKE_SLURM_RUN="1" if run else "", FAKE_SLURM_STATE=state)
