"""Security basics: checkpoints are data, never code; no string from a record or config is run;
no secret from the environment reaches a record or a log; no network unless asked."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from apbench.engine import checkpoint as ckpt
from apbench.models.weights import WeightsError, read_state_dict

from .conftest import SRC, apbench, cli_env, records_under, tiny

SECRETS = {"WANDB_API_KEY": "secret123-wandb-key", "AWS_SECRET_ACCESS_KEY": "aws-SECRET-do-not-leak-42",
           "HF_TOKEN": "hf_secrettoken987"}


class _Payload:
    """Unpickling this runs open(marker, 'w'): proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": _Payload(marker)}, path)
    torch.load(path, weights_only=False)  # the payload is live: an unsafe loader would run it
    assert marker.exists()
    marker.unlink()
    return path, marker


def test_every_torch_load_is_weights_only():
    calls = []
    for py in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "load" \
                    and ast.unparse(node.func) in ("torch.load", "load"):
                kw = {k.arg: k.value for k in node.keywords}
                calls.append((py.name, node.lineno, isinstance(kw.get("weights_only"), ast.Constant)
                              and kw["weights_only"].value is True))
    assert calls and all(ok for *_, ok in calls), calls


def test_nothing_runs_strings_as_code():
    banned = {"eval", "exec", "compile", "__import__"}
    unsafe = {"pickle.load", "pickle.loads", "yaml.load", "yaml.unsafe_load", "marshal.loads", "os.system",
              "subprocess.call"}
    hits = []
    for py in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in banned or name in unsafe or (name.endswith(".run") and any(
                        k.arg == "shell" for k in node.keywords)):
                    hits.append(f"{py.relative_to(SRC)}:{node.lineno} {name}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "oc.eval" in node.value:
                hits.append(f"{py.relative_to(SRC)}:{node.lineno} resolver {node.value!r}")
    for yml in SRC.rglob("*.yaml"):
        if "${eval:" in yml.read_text() or "${python:" in yml.read_text():
            hits.append(str(yml))
    assert hits == []


def test_malicious_checkpoint_is_refused_and_never_runs(evil, tmp_path, tally):
    path, marker = evil
    with pytest.raises(WeightsError, match="not a loadable PyTorch checkpoint"):
        read_state_dict(path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(path.read_bytes())
    assert ckpt.load(tmp_path / "run" / "checkpoint.pt") is None  # a resume checkpoint is no way in either
    out = apbench(*tiny(tmp_path, "model=efficientnet_lite0", "model.weights=file", f"model.checkpoint={path}"),
                  cwd=tmp_path)
    tally.bad_inputs += 1
    assert out.returncode == 2 and "is not a loadable PyTorch checkpoint" in out.stderr, out.stderr[-2000:]
    assert "give a file saved with torch.save" in out.stderr
    assert not marker.exists(), "the checkpoint's code ran"
    assert records_under(tmp_path) == []
    tally.clear_errors += 1


def test_no_secrets_in_records_or_logs_and_no_network(tmp_path):
    """A whole run with secrets in the environment and every socket connection made to fail."""
    site = tmp_path / "site"
    site.mkdir()
    attempts = tmp_path / "network-attempts.txt"
    (site / "sitecustomize.py").write_text(f'''
import socket
open({str(tmp_path / "guard-loaded")!r}, "w").close()

def _refuse(*args, **kwargs):
    with open({str(attempts)!r}, "a") as f:
        f.write(repr(args[1:] or args) + "\\n")
    raise OSError("network disabled by the apbench reliability test")

socket.socket.connect = socket.socket.connect_ex = _refuse
socket.create_connection = socket.getaddrinfo = _refuse
''')
    env = cli_env(PYTHONPATH=str(site), **SECRETS)
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', 9))"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert "network disabled" in probe.stderr and attempts.exists()  # the guard works ...
    attempts.unlink()
    out = apbench(*tiny(tmp_path / "root", "logger=none"), cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    [rec] = records_under(tmp_path / "root")
    assert json.loads(rec.read_text())["status"] == "ok"
    assert (tmp_path / "guard-loaded").exists() and not attempts.exists(), "the run tried the network"
    written = [p for p in (tmp_path / "root").rglob("*") if p.is_file()]
    assert any(p.name == "hydra.yaml" for p in written)  # Hydra's logs are among what is searched
    for value in SECRETS.values():
        leaks = [str(p) for p in written if value.encode() in p.read_bytes()]
        assert leaks == [] and value not in out.stdout + out.stderr, (value, leaks)
