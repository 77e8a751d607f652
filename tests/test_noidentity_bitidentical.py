"""The options that never split a results cell (identity.NOT_IDENTITY) leave results bit-identical:
real tiny runs: one with the prefix cache, progress bars off and the efficiency measures on; one
with the cache off, progress on, no measures and other throughput settings and results folder; two
forced ones sharing a prefix store on disk (``trainer.prefix_cache_dir``)."""
import json

from apbench.results.predictions import correct, decode, encode


def test_predictions_round_trip_and_width():
    pred, target = [0, 3, 3, 9, 1], [0, 3, 2, 9, 4]
    stored = encode(pred, target)
    assert stored["dtype"] == "uint8" and stored["n"] == 5
    p, t = decode(stored)
    assert p.tolist() == pred and t.tolist() == target
    assert correct(stored).tolist() == [True, True, False, True, False]
    assert encode([300], [2])["dtype"] == "uint16" and decode(encode([300], [2]))[0].tolist() == [300]
    assert correct(None) is None


def test_prefix_cache_progress_and_measures_leave_results_bit_identical(tiny_overrides, tmp_path):
    from apbench.run import run
    from conftest import compose

    common = [*tiny_overrides, "method=ap", "method.layers=[2]", "protocol=fixed"]
    a = run(compose(*common, "trainer.prefix_cache=auto", "trainer.progress=false",
                    "trainer.measure_efficiency=true"))
    b = run(compose(*common, "trainer.prefix_cache=off", "trainer.progress=true",
                    "trainer.measure_efficiency=false", "trainer.throughput_warmup=0",
                    "trainer.throughput_iters=1", f"paths.results_dir={tmp_path / 'other'}"))
    # a shared prefix store (written by the first run, read by the second), forced reruns
    store = [f"trainer.prefix_cache_dir={tmp_path / 'store'}", "force=true", "trainer.measure_efficiency=false"]
    c = run(compose(*common, *store, f"paths.results_dir={tmp_path / 'c1'}"))
    d = run(compose(*common, *store, f"paths.results_dir={tmp_path / 'c2'}"))
    assert a["status"] == b["status"] == c["status"] == d["status"] == "ok", (a["error"], b["error"])
    assert a["prefix_cache"]["used"] and not b["prefix_cache"]["used"]  # the option really differed
    assert any((tmp_path / "store").iterdir())  # the store was used
    for other in (c, d):
        assert json.dumps(other["metrics"]) == json.dumps(a["metrics"]) and other["predictions"] == a["predictions"]
    # bit-identical: the same floats, not merely close; and the same class for every test image
    assert json.dumps(a["metrics"]) == json.dumps(b["metrics"])
    assert json.dumps(a["history"]) == json.dumps(b["history"])
    assert a["predictions"] == b["predictions"] and a["predictions"]["n"] == a["data"]["test"]
    assert correct(a["predictions"]).mean() * 100 == a["metrics"]["test_top1"]
    # ... so the tables put them in one cell (as two runs; run ids are i16-lifecycle's)
    from apbench.results.frame import records_frame
    assert records_frame([a, b, c, d])["cell"].nunique() == 1
