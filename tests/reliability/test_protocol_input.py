"""A protocol's space and seeds as bad input through the real CLI (issue 26 item 9): refused before any
run with exit 2 and a message that names the key and the fix, no record, no traceback. Each case is
counted in the reliability summary line."""
from __future__ import annotations

import pytest

from .conftest import records_under, tiny

VTAB = ["protocol=vtab1k", "method=linear_probe", "protocol.seeds=[0,1]", "protocol.reserve=1", "protocol.retest=0"]
QUIET = ["hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
CASES = {  # id -> (extra overrides, messages that must appear, environment)
    "space_names_the_stage": (["+method.space.protocol.stage=[final]"],
                              ["method.space key 'protocol.stage' names a protocol setting",
                               "Remove the key from the space"], {}),
    "space_names_the_split": (["+method.space.dataset.trainval=[true]"],
                              ["method.space key 'dataset.trainval' names a dataset setting"], {}),
    "space_names_the_seed": (["+method.space.seed=[0,1]"], ["method.space key 'seed' names the seed"], {}),
    "bad_second_point": (["method.space.head_lr=[0.01,-1.0]", "method.space.weight_decay=null"],
                         ["trainer.head_lr=-1.0 must be a positive number"], {}),
    "bad_second_seed": (["protocol.seeds=[0,-1]"], ["protocol.seeds[1]=-1 is out of range"], {}),
    "bad_sampler_seed": (["protocol.sampler_seed=-3"], ["protocol.sampler_seed=-3 is out of range",
                                                        "a seed is an integer from 0 to"], {}),
    "bad_reserve": (["protocol.reserve=-1"], ["protocol.reserve=-1 must be an integer >= 0"], {}),
    "malformed_shard": (["seed=0,1"], ["APBENCH_SHARD='3/2' must be i/n with 0 <= i < n, e.g. 0/4"],
                        {"APBENCH_SHARD": "3/2"}),
}


@pytest.mark.parametrize("cid", sorted(CASES))
def test_a_protocol_input_is_refused_before_any_run(cid, tmp_path, capsys, monkeypatch, tally):
    from apbench import cell
    from apbench.cli import main

    extra, expected, env = CASES[cid]
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(cell, "fit", lambda *a, **k: pytest.fail("training started on bad input"))
    multirun = cid == "malformed_shard"
    tally.bad_inputs += 1
    capsys.readouterr()
    code = main([*tiny(tmp_path, *VTAB, *extra, multirun=multirun), *QUIET])
    out = capsys.readouterr()
    text = out.out + out.err
    missing = [e for e in expected if e not in text]
    assert code == 2, text[-2000:]
    assert not missing, f"message lacks {missing}:\n{text[-2000:]}"
    assert "Traceback" not in text, text[-2000:]
    assert records_under(tmp_path) == []
    tally.clear_errors += 1
