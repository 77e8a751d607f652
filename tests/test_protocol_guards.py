"""A protocol cannot be subverted by its own space (issue 26 item 9): keys that are not the method's
hyper-parameters are refused, every point and seed is checked before the first run, repeats are merged
and counted once, the protocol's seeds are checked like ``seed``, and a malformed shard says so."""
import pytest

from apbench import protocol
from apbench.errors import ConfigError
from conftest import compose

BASE = ["dataset=fmnist_tiny", "model=tiny_resnet", "device=cpu", "trainer=fast", "method=linear_probe",
        "protocol=vtab1k", "protocol.seeds=[0]", "protocol.reserve=0", "protocol.retest=0"]


def _never(c, hparams=None):
    pytest.fail(f"a run started: {c.protocol.stage} seed {c.seed}")


def _cfg(tmp_path, *overrides):
    return compose(f"paths.root_dir={tmp_path}", *BASE, *overrides)


@pytest.mark.parametrize("override, names", [
    ("+method.space.protocol.stage=[final]", "names a protocol setting (protocol.stage)"),
    ("+method.space.dataset.trainval=[true]", "names a dataset setting (dataset.trainval)"),
    ("+method.space.seed=[0,1]", "names the seed (seed)"),
    ("+method.space.model.name=[resnet50]", "names the model (model.name)"),
    ("+method.space.method.name=[ap]", "names not a hyper-parameter of the method (method.name)"),
    ("+method.space.paths.results_dir=[/tmp]", "names an output path (paths.results_dir)"),
])
def test_a_space_key_outside_the_methods_hyper_parameters_is_refused(tmp_path, override, names):
    with pytest.raises(ConfigError, match=r"method\.space key .* " + names.replace("(", r"\(").replace(")", r"\)")):
        protocol.run_protocol(_cfg(tmp_path, override), run=_never)


@pytest.mark.parametrize("overrides, message", [
    # the second drawn point
    (["method.space.head_lr=[0.01,-1.0]", "method.space.weight_decay=null"], "trainer.head_lr=-1.0 must be a positive number"),
    # a candidate the draw of 2 points does not take (checked: see the assertion below)
    (["method.space.head_lr=[0.01,0.1,1.0,-1.0]", "method.space.weight_decay=[0.0,1e-4,1e-3,1e-2]", "protocol.budget=2"],
     "trainer.head_lr=-1.0 must be a positive number"),
    (["protocol.seeds=[0,-1]"], r"protocol.seeds\[1\]=-1 is out of range"),
    (["protocol.seeds=[0,x]"], r"protocol.seeds\[1\]='x' must be an integer"),
    (["method.space.weight_decay=[0.0,-0.1]"], "trainer.weight_decay=-0.1 must be a number >= 0"),
])
def test_every_point_and_seed_is_checked_before_the_first_run(tmp_path, overrides, message):
    cfg = _cfg(tmp_path, *overrides)
    p = protocol.resolve(cfg) if "seeds" not in overrides[0] else None
    if p and p["budget"] == 2:
        assert all(pt["head_lr"] != -1.0 for pt in protocol.draw(p["space"], 2, 0)[0])
    with pytest.raises(ConfigError, match=message):
        protocol.run_protocol(cfg, run=_never)


def test_repeated_candidates_and_seeds_are_merged_said_and_counted_once(tmp_path, capsys):
    cfg = _cfg(tmp_path, "method.space.head_lr=[0.1,0.1,0.1]", "method.space.weight_decay=[0.0,0.0]",
               "protocol.seeds=[0,0,0,2]")
    p = protocol.resolve(cfg)
    assert p["space"] == {"head_lr": [0.1], "weight_decay": [0.0]} and p["seeds"] == [0, 2]
    assert protocol.runs_of(cfg) == 1 + 2                                  # one point, two seeds
    ran = []
    protocol.run_protocol(cfg, run=lambda c, hparams=None: ran.append((c.protocol.stage, c.seed)) or
                          {"status": "ok", "run_id": f"r{len(ran)}", "metrics": {"val_top1": 50.0, "val_loss": 1.0}})
    assert ran == [("select", 0), ("final", 0), ("final", 2)]
    out = capsys.readouterr().out
    assert "method.space.head_lr lists 0.1 more than once: merged, each counted once (3 entries -> 1 distinct)" in out
    assert "protocol.seeds lists 0 more than once: merged, each counted once (4 entries -> 2 distinct)" in out
    # 0.1 and 1e-1 are one candidate
    assert protocol.resolve(_cfg(tmp_path, "method.space.head_lr=[0.1,1e-1]"))["space"]["head_lr"] == [0.1]


@pytest.mark.parametrize("key", ["sampler_seed", "select_seed"])
@pytest.mark.parametrize("value, message", [("-1", "is out of range"), ("4294967296", "is out of range"),
                                            ("abc", "must be an integer"), ("true", "must be an integer")])
def test_the_protocols_seeds_are_checked_like_seed(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=f"protocol.{key}=.* {message}"):
        protocol.resolve(_cfg(tmp_path, f"protocol.{key}={value}"))


@pytest.mark.parametrize("override, message", [
    ("protocol.reserve=-1", "protocol.reserve=-1 must be an integer >= 0"),
    ("protocol.retest=two", "protocol.retest='two' must be an integer >= 0"),
    ("protocol.seeds=0", "protocol.seeds=0 must be an integer >= 1"),
    ("+protocol.bounds.lr=[1.0,0.1]", r"protocol.bounds.lr=\[1.0, 0.1\] must be \[low, high\]"),
])
def test_the_rules_own_settings_are_checked(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        protocol.resolve(_cfg(tmp_path, override))
    with pytest.raises(ConfigError, match="retest_seeds >= 1"):
        protocol.resolve(_cfg(tmp_path, "protocol.retest=2", "protocol.retest_seeds=0"))


@pytest.mark.parametrize("shard", ["3/2", "x", "1/0", "-1/2", "0/2/3"])
def test_a_malformed_shard_prints_its_message_and_exits_2(shard, monkeypatch, capsys):
    from apbench.cli import main
    monkeypatch.setenv("APBENCH_SHARD", shard)
    assert main(["run", "-m", "model=tiny_resnet", "seed=0,1"]) == 2
    assert f"apbench: APBENCH_SHARD={shard!r} must be i/n with 0 <= i < n, e.g. 0/4" in capsys.readouterr().err
