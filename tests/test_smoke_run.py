"""The runner end to end on a tiny model and tiny real data."""
from apbench.results.store import read_record
from apbench.run import run

from conftest import compose


def test_one_run_writes_an_ok_record_and_is_skipped_when_relaunched(tiny_overrides, tmp_path, capsys):
    cfg = compose(*tiny_overrides, "method=ap", "method.layers=[2]")
    rec = run(cfg)
    assert rec["status"] == "ok", rec["error"]
    path = tmp_path / "runs" / rec["run_id"] / "record.json"
    assert read_record(path)["metrics"]["val_top1"] == rec["metrics"]["val_top1"]
    assert not (path.parent / "checkpoint.pt").exists()
    mtime = path.stat().st_mtime_ns
    run(compose(*tiny_overrides, "method=ap", "method.layers=[2]"))
    assert "skipped" in capsys.readouterr().out
    assert path.stat().st_mtime_ns == mtime
