"""Fixed-protocol runs of several methods are single untuned points, and every table and console built
from them says so (issue 26 item 7); tuned protocols and single-method tables carry no such note."""
from apbench.commands import results as results_command
from apbench.results.frame import load_records
from apbench.results.rows import UNTUNED_NOTE, untuned
from apbench.results.store import write_record


def _rec(run_id, method, seed, acc, protocol="fixed", layers=()):
    return {"schema": 1, "run_id": run_id, "status": "ok", "dataset": "fmnist1k", "protocol": protocol,
            "stage": "final", "model": "effnet", "method": method, "head": "linear", "layers": list(layers),
            "seed": seed, "hparams": {"lr": 0.01}, "metrics": {"val_top1": acc, "test_top1": acc},
            "params": {"total": 100, "trainable": 10, "trainable_no_head": 0}, "efficiency": {},
            "data": {"test": 100}, "finished_at": "2025-01-01T00:00:00Z"}


def _write(root, recs):
    for r in recs:
        write_record(root / r["run_id"] / "record.json", r)
    return root


TWO_METHODS = [_rec("lp", "linear_probe", 0, 68.33), _rec("ap", "ap", 0, 91.94, layers=["8"])]


def test_fixed_runs_of_two_methods_are_untuned_and_one_method_or_a_tuned_protocol_is_not(tmp_path):
    df, _ = load_records(_write(tmp_path / "two", TWO_METHODS))
    assert untuned(df)
    one, _ = load_records(_write(tmp_path / "one", [_rec("a8", "ap", 0, 90.0, layers=["8"]),
                                                    _rec("a4", "ap", 0, 80.0, layers=["4"])]))
    assert not untuned(one)  # a layer sweep of one method: no comparison of methods
    tuned, _ = load_records(_write(tmp_path / "tuned", [_rec("lp", "linear_probe", 0, 70.0, "vtab1k"),
                                                        _rec("ap", "ap", 0, 72.0, "vtab1k")]))
    assert not untuned(tuned)


# every comparison table a report writes; failures.md (not a comparison) carries no note
COMPARISONS = {"accuracy-effnet-fixed", "stats-effnet-fixed", "efficiency-effnet", "paper-effnet-fixed",
               "ranks-effnet-fixed", *(f"{kind}-effnet-fixed-{ds}" for kind in ("methods", "recipes")
                                       for ds in ("fmnist1k", "digits"))}


def test_every_table_file_and_the_console_state_it(tmp_path, capsys):
    # two datasets, so that the paper-style table and the ranks across datasets are written too
    root = _write(tmp_path / "runs", [r | {"run_id": f"{r['run_id']}-{ds}", "dataset": ds}
                                      for ds in ("fmnist1k", "digits") for r in TWO_METHODS])
    assert results_command.main([str(root), "--out", str(tmp_path / "report"), "--reference", "linear_probe"]) == 0
    out = capsys.readouterr().out
    assert f"note: {UNTUNED_NOTE}" in out and out.index("note: single untuned") < out.index("## test top-1")
    files = {p.name: p.read_text() for p in (tmp_path / "report").iterdir() if p.suffix != ".png"}
    tables = {p.removesuffix(".md") for p in files if p.endswith(".md")} - {"failures"}
    assert tables == COMPARISONS  # a new kind of table is added here, with its note
    for stem in sorted(tables):
        assert files[f"{stem}.md"].endswith(f"\n**Note:** {UNTUNED_NOTE}\n"), stem
        assert r"\textit{Note: single untuned runs: under protocol=fixed" in files[f"{stem}.tex"], stem
        assert r"experiment=cpu\_lite0\_fmnist1k" in files[f"{stem}.tex"], stem
        assert "untuned" not in files[f"{stem}.csv"], stem  # plain data for other tools
    assert "untuned" not in files["failures.md"]  # not a comparison


def test_a_tuned_protocol_table_has_no_note(tmp_path):
    from apbench.results.tables import write_tables
    df, _ = load_records(_write(tmp_path / "runs", [_rec("lp", "linear_probe", 0, 70.0, "vtab1k"),
                                                    _rec("ap", "ap", 0, 72.0, "vtab1k")]))
    write_tables(df, tmp_path / "report")
    assert "untuned" not in (tmp_path / "report" / "accuracy-effnet-vtab1k.md").read_text()
    assert "untuned" not in (tmp_path / "report" / "methods-effnet-vtab1k-fmnist1k.md").read_text()


def test_a_fixed_sweep_of_several_methods_says_so_on_the_console(tmp_path, capsys):
    from apbench.cli import main
    code = main(["run", "-m", "model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu",
                 "trainer.measure_efficiency=false", f"paths.root_dir={tmp_path}", "method=linear_probe,bitfit",
                 "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"[apbench] note: bitfit, linear_probe: {UNTUNED_NOTE}" in out, out[-2000:]
