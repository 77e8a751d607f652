"""``apbench analyze [OVERRIDES...]``: CKA between layers, attention distance, per-point probes and
effective receptive fields of a frozen backbone (docs/analyses.md); Hydra overrides of conf/analyze.yaml."""
from __future__ import annotations

import sys

from ..config_dir import CONF_DIR
from ..errors import ConfigError, InputError
from . import commented_keys, hydra_help, wants_help


def main(argv: list[str]) -> int:
    if wants_help(argv):
        print(hydra_help("apbench analyze [GROUP=OPTION | KEY=VALUE ...]", __doc__.split(": ", 1)[1],
                         [(f"analysis.{k}", text) for k, text in commented_keys(CONF_DIR / "analysis" / "default.yaml")]))
        return 0
    import hydra

    code = {"rc": 0}

    @hydra.main(config_path=str(CONF_DIR), config_name="analyze", version_base="1.3")
    def task(cfg):
        from ..analysis.analyze import analyze, summary  # after Hydra: --help and a bad override need no torch

        try:
            rec = analyze(cfg)
        except ConfigError as e:
            what = "bad input" if isinstance(e, InputError) else "invalid configuration"
            print(f"apbench analyze: {what}: {e}", file=sys.stderr)
            code["rc"] = 2
            return
        print(summary(rec))
        if rec["status"] != "ok":
            code["rc"] = 1

    sys.argv = ["apbench analyze", *argv]
    task()
    return code["rc"]
