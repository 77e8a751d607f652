"""Where the Hydra configs live: the one place the commands (cli, plan, measure, data verify) read it
from, so none of them imports another for it. ``APBENCH_CONFIG_DIR`` points at another tree."""
from __future__ import annotations

import os
from pathlib import Path

CONF_DIR = Path(os.environ.get("APBENCH_CONFIG_DIR", Path(__file__).resolve().parent / "conf"))
