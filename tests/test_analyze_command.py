"""`apbench analyze` end to end (issue 17): record, files, prompted vs unprompted CKA, results section."""
import json

import pytest
import torch

from apbench.cli import main
from apbench.run import run

from conftest import compose


def _analyze(tmp_path, *extra):
    return main(["analyze", "model=tiny_vit", "dataset=fmnist_tiny", "device=cpu", f"paths.root_dir={tmp_path}",
                 "analysis.erf_images=4", "analysis.batch_size=16", *extra])


def _record(tmp_path):
    (path,) = list((tmp_path / "runs" / "analyses").glob("*/analysis.json"))
    return path, json.loads(path.read_text())


def test_analyze_a_vit_with_a_trained_prompt_and_show_it_in_results(tmp_path, capsys):
    # An AP run at block 1 of tiny_vit saves its trained prompt beside its record.
    ap = run(compose("model=tiny_vit", "dataset=fmnist_tiny", "trainer=fast", "device=cpu", f"paths.root_dir={tmp_path}",
                     "method=ap", "method.layers=[1]", "trainer.lr=0.1", "trainer.measure_efficiency=false"))
    assert ap["status"] == "ok", ap["error"]
    run_dir = tmp_path / "runs" / ap["run_id"]
    prompt = torch.load(run_dir / "prompt.pt", weights_only=True)
    assert list(prompt) == ["1"] and prompt["1"].shape == (1 + 16, 32) and prompt["1"].abs().sum() > 0

    assert _analyze(tmp_path, f"analysis.prompt_run={run_dir}") == 0
    path, rec = _record(tmp_path)
    assert rec["status"] == "ok" and rec["kind"] == "analysis"
    assert rec["cka"]["points"] == ["0", "1", "2"] and rec["cka"]["n"] == 40 and rec["cka"]["pooled"] is False
    assert rec["cka"]["features"] == {"0": 17 * 32, "1": 17 * 32, "2": 17 * 32}  # tokens x width, flattened
    assert [rec["cka"]["debiased"][i][i] for i in range(3)] == pytest.approx([1.0] * 3, abs=1e-12)
    assert rec["probe"]["train_n"] == 40 and rec["probe"]["val_n"] == 20
    assert set(rec["erf"]) == {"0", "1", "2"}
    att = rec["attention_distance"]
    assert att["grid"] == [4, 4] and att["patch"] == [8, 8] and len(att["per_head_px"]) == 2
    assert len(att["per_head_px"][0]) == 2  # heads
    pr = rec["cka_prompted"]
    assert pr["run_id"] == ap["run_id"] and pr["prompt_points"] == ["1"]
    assert pr["values"]["0"] == pytest.approx(1.0, abs=1e-12)  # before the prompt: the same activations
    # At point 1 the prompt is one constant added to every image: centering removes it, CKA is exactly 1.
    assert pr["values"]["1"] == pytest.approx(1.0, abs=1e-12)
    assert pr["values"]["2"] < 1 - 1e-6  # the block after it is nonlinear in the shift
    for name in ("cka.png", "curves.png", "cka.csv", "cka_biased.csv", "points.csv", "attention_distance.csv"):
        assert (path.parent / name).stat().st_size > 0

    assert _analyze(tmp_path, f"analysis.prompt_run={run_dir}") == 0  # the same analysis again: skipped
    assert "skipped" in capsys.readouterr().out

    # `apbench results` on the folder shows the section beside the run tables
    assert main(["results", str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "## analyses (1;" in out and "cka_prompted" in out and "attn_dist_px" in out
    assert (tmp_path / "report" / "analyses.csv").is_file()
    # a folder with analysis records only: the section, exit 0 (no run tables to make)
    assert main(["results", str(tmp_path / "runs" / "analyses"), "--out", str(tmp_path / "report2")]) == 0
    assert "## analyses (1;" in capsys.readouterr().out
    assert (tmp_path / "report2" / "analyses.csv").is_file()


def test_analyze_refuses_bad_input_with_exit_2_and_writes_nothing(tmp_path, capsys):
    assert _analyze(tmp_path, "analysis.split=test") == 2
    assert "choose one of: train, val" in capsys.readouterr().err
    assert _analyze(tmp_path, f"analysis.prompt_run={tmp_path}/nowhere") == 2
    assert "give the folder of a finished AP run" in capsys.readouterr().err
    assert _analyze(tmp_path, "analysis.max_gb=0.00001") == 2
    assert "set analysis.cka_pool=true" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "analyses").exists()
