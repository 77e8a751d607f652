"""Every command example issue 17 added to the docs composes (and, for runs, validates on meta)."""
import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from apbench.validate import validate

ROOT = Path(__file__).resolve().parents[1]
# every `apbench analyze ...`, and every `apbench run ...` that names what issue 17 added
PATTERN = re.compile(r"apbench (analyze)()([^`|#\n]*)|"
                     r"apbench (run)( -m)? ([^`|#\n]*(?:gated_prompt|e2vpt|norm_layer_sweep|small_models|where=)[^`|#\n]*)")


def commands():
    found = []
    for doc in ("README.md", "docs/analyses.md", "docs/methods_prompt.md", "docs/sweeps.md"):
        for m in PATTERN.finditer((ROOT / doc).read_text()):
            cmd, multi, args = (m.group(1), m.group(2), m.group(3)) if m.group(1) else m.group(4, 5, 6)
            found.append((doc, cmd, bool(multi), args.strip()))
    return found


def test_the_docs_hold_the_examples():
    cmds = commands()
    assert sum(c[1] == "analyze" for c in cmds) >= 5
    assert {"gated_prompt", "e2vpt_no_pruning"} <= {w.split("=")[1] for c in cmds for w in c[3].split()
                                                    if w.startswith("method=")}


@pytest.mark.parametrize("doc,cmd,multirun,args", commands())
def test_every_issue17_command_composes(doc, cmd, multirun, args, tmp_path):
    overrides = [a for a in shlex.split(args)] + [f"paths.root_dir={tmp_path}"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="analyze" if cmd == "analyze" else "config", overrides=overrides)
    if cmd == "run" and not multirun:
        assert validate(cfg)["family"]
