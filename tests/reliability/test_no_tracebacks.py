"""No traceback reaches a user: `apbench analyze` given a prompt file that is no prompt says so (and never
advises ``weights_only=False``, i.e. running the file's code); `apbench measure` given malformed records
names each record and measures the good ones."""
from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch

from apbench.results.store import write_record
from apbench.run import run

from conftest import compose
from .test_bad_input import _Payload, run_main

VIT = ["model=tiny_vit", "dataset=fmnist_tiny", "device=cpu"]


@pytest.fixture(scope="module")
def ap_run(tmp_path_factory):
    """A finished AP run on the tiny ViT, with its prompt.pt: the folder `analysis.prompt_run` names."""
    root = tmp_path_factory.mktemp("ap")
    rec = run(compose(*VIT, "trainer=fast", f"paths.root_dir={root}", "method=ap", "method.layers=[1]",
                      "trainer.measure_efficiency=false"))
    assert rec["status"] == "ok", rec.get("error")
    return root / "runs" / rec["run_id"]


def _no_prompt(kind: str, path, marker):
    if kind == "code":  # a pickle that runs `touch MARKER` when loaded without weights_only
        torch.save({"1": _Payload(marker)}, path)
    elif kind == "text":
        path.write_text("my notes, not a prompt\n")
    elif kind == "list":
        torch.save([torch.zeros(17, 32)], path)
    elif kind == "wrong_shape":
        torch.save({"1": torch.zeros(3)}, path)
    elif kind == "wrong_point":
        torch.save({"2": torch.zeros(17, 32)}, path)


PROMPT_CASES = {
    "code": "is not a saved prompt (it holds posix.system, which would run code if loaded: refused, not loaded)",
    "text": "is not a saved prompt (UnpicklingError: Unsupported operand 109)",
    "list": "is not a saved prompt (a prompt is a dict of named tensors; this holds list)",
    "wrong_shape": "its prompt.pt holds {'1': (3,)}, but AP as that run was configured gives {'1': (17, 32)}",
    "wrong_point": "its prompt.pt holds {'2': (17, 32)}, but AP as that run was configured gives {'1': (17, 32)}",
}


@pytest.mark.parametrize("kind", sorted(PROMPT_CASES))
def test_analyze_with_a_prompt_file_that_is_no_prompt_says_so(kind, ap_run, tmp_path, capsys, tally):
    folder = tmp_path / "run"
    shutil.copytree(ap_run, folder)
    _no_prompt(kind, folder / "prompt.pt", tmp_path / "PWNED")
    tally.bad_inputs += 1
    code, text = run_main(capsys, ["analyze", *VIT, f"paths.root_dir={tmp_path}", f"analysis.prompt_run={folder}",
                                   "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"])
    assert code == 2, text[-2000:]
    assert f"analysis.prompt_run={folder}" in text and PROMPT_CASES[kind] in text, text[-2000:]
    assert "Traceback" not in text and "weights_only" not in text, text[-2000:]
    assert not (tmp_path / "PWNED").exists(), "the file's code ran"
    assert not (tmp_path / "runs" / "analyses").exists()  # refused before any analysis record
    tally.clear_errors += 1


def test_analyze_with_a_malformed_run_record_names_it(ap_run, tmp_path, capsys, tally):
    folder = tmp_path / "run"
    shutil.copytree(ap_run, folder)
    rec = json.loads((folder / "record.json").read_text())
    (folder / "record.json").write_text(json.dumps(rec | {"config": "not a config"}))
    tally.bad_inputs += 1
    code, text = run_main(capsys, ["analyze", *VIT, f"paths.root_dir={tmp_path}", f"analysis.prompt_run={folder}",
                                   "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"])
    assert code == 2 and f"{folder / 'record.json'}: invalid record: config is str, not an object" in text, text[-2000:]
    assert "Traceback" not in text
    tally.clear_errors += 1


def test_measure_names_each_malformed_record_and_measures_the_good_one(tmp_path, capsys, tally):
    good = run(compose("model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu",
                       f"paths.root_dir={tmp_path / 'made'}", "method=linear_probe", "trainer.measure_efficiency=false"))
    runs = tmp_path / "runs"
    write_record(runs / "good" / "record.json", good)
    broken = {  # name -> a change to the good record that no cell can be built from
        "no_method": lambda r: r["config"].pop("method"),
        "no_trainer_batch": lambda r: r["config"]["trainer"].pop("batch_size"),
        "model_a_list": lambda r: r["config"].__setitem__("model", [1, 2]),
        "config_a_string": lambda r: r.__setitem__("config", "x"),
        "accuracy_negative": lambda r: r["metrics"].__setitem__("test_top1", -3.0),
    }
    for name, change in broken.items():
        rec = copy.deepcopy(good) | {"run_id": name}
        change(rec)
        write_record(runs / name / "record.json", rec)
    tally.bad_inputs += len(broken)
    code, text = run_main(capsys, ["measure", "--records", str(runs), "--iters", "1", "--repeat", "1", "--warmup", "0"])
    assert code == 0, text[-3000:]
    assert "Traceback" not in text
    for name in broken:
        line = next((ln for ln in text.splitlines() if f"{runs / name / 'record.json'}:" in ln), "")
        assert line.startswith("record skipped: "), (name, text[-3000:])
        tally.clear_errors += 1
    assert "does not describe a cell" in text and "invalid record: metrics.test_top1 = -3.0" in text
    assert "[apbench measure] 1/1 linear_probe:" in text and "| linear_probe " in text  # the good one, measured
