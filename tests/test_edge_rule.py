"""The edge rule, the reserve and the retest (issue 24 item 6; issue 26 item 1) on a synthetic objective:
a stub stands in for the training call and returns val = f(point, seed), so every expected run and
choice below is computed by hand. Nothing trains except where a test says so (tiny data)."""
import math

import pytest
from scipy.stats import qmc

from apbench import protocol
from apbench.search_space import draw, edges, extension
from conftest import compose

BASE = ["dataset=fmnist_tiny", "model=tiny_resnet", "device=cpu", "trainer=fast", "method=linear_probe",
        "protocol=vtab1k", "protocol.seeds=[0]"]


def _cfg(tmp_path, *overrides):
    return compose(f"paths.root_dir={tmp_path}", *BASE, *overrides)


class Objective:
    """``run`` for :func:`protocol.run_protocol`: val top-1 = ``f(point, seed)``, val loss = (100 - val)/100.

    It checks what a select run is (stage select, train only; cell.execute opens test only for
    stage final) and that no final run starts before the select stage is over."""

    KEYS = ("head_lr", "weight_decay", "label_smoothing")

    def __init__(self, f, params=lambda point: 100, fail=lambda point: False):
        self.f, self.params, self.fail = f, params, fail
        self.calls = []   # (stage, point, seed, phase)

    def __call__(self, c, hparams=None):
        point = {k: c.trainer[k] for k in self.KEYS if c.trainer[k] is not None}  # null: the recipe's, not searched
        stage = c.protocol.stage
        phase = ((hparams or {}).get("search") or {}).get("phase")
        if stage == "select":
            assert c.dataset.trainval is False and not any(s == "final" for s, *_ in self.calls)
        self.calls.append((stage, point, c.seed, phase))
        rid = f"r{len(self.calls)}"
        if stage == "final":
            return {"status": "ok", "run_id": rid, "stage": stage, "hparams": dict(hparams or {}),
                    "metrics": {"test_top1": 50.0}}
        if self.fail(point):
            return {"status": "failed", "run_id": rid, "stage": stage, "metrics": {}}
        val = self.f(point, c.seed)
        return {"status": "ok", "run_id": rid, "stage": stage, "layers": [], "params": {"trainable": self.params(point)},
                "metrics": {"val_top1": val, "val_loss": (100 - val) / 100, "test_top1": None}}

    def select(self):
        return [(p, seed, phase) for stage, p, seed, phase in self.calls if stage == "select"]

    def final(self):
        return [p for stage, p, *_ in self.calls if stage == "final"]


def _selection(records):
    return records[-1]["hparams"]["selected_from"]


# --- the rule's arithmetic, by hand ----------------------------------------------------------------

def test_the_next_candidate_is_one_outer_step_beyond_the_edge():
    assert extension([1e-3, 1e-2, 1e-1], "high", None) == 1.0                 # ratio 10
    assert extension([1e-3, 1e-2, 1e-1], "low", None) == 1e-4
    assert extension([0.01, 0.03, 0.1, 0.3], "high", None) == 0.9             # AP's prompt lrs: ratio 3
    assert extension([1e-3, 1e-4, 5e-4, 5e-3], "high", None) == 0.025         # full FT's, unsorted: 5e-3 x 5
    assert extension([1e-3, 1e-4, 5e-4, 5e-3], "low", None) == 2e-5           # 1e-4 / 5
    assert extension([0.0, 1e-4], "high", None) == 2e-4                       # through 0: the difference
    assert extension([4, 8, 16], "high", None) == 32 and isinstance(extension([4, 8, 16], "high", None), int)
    assert extension([2, 3], "high", None) == 4                               # 4.5, an integer key: 4
    assert extension([0.25, 0.5], "high", 0.8) == 0.8                         # 1.0 clipped to the bound
    assert extension([0.25, 0.5, 0.8], "high", 0.8) is None                   # at the bound: nothing beyond
    assert extension([1, 2], "low", 1) is None                                # a count of 1


def test_an_edge_is_an_end_that_is_not_a_natural_bound():
    cands = {"lr": [0.01, 0.1], "weight_decay": [0.0, 1e-4], "method.layers": [[0], [4]], "x": [0.5]}
    assert edges(cands, {}, {"lr": 0.1, "weight_decay": 0.0, "method.layers": [4], "x": 0.5}) == [("lr", "high")]
    assert edges(cands, {}, {"lr": 0.01, "weight_decay": 1e-4, "x": 0.5}) == [("lr", "low"), ("weight_decay", "high")]
    assert edges(cands, {"lr": (0.01, None), "weight_decay": (0.0, 1e-4)}, {"lr": 0.01, "weight_decay": 1e-4}) == []
    assert edges({"ls": [0.0, 0.1]}, {"ls": (-1.0, None)}, {"ls": 0.0}) == [("ls", "low")]   # 0 is no bound here


# --- the reserve ------------------------------------------------------------------------------------

def _peak(at, key="head_lr", width=5.0):
    """val = 90 - width x (log10(value) - log10(at))^2: one optimum, two steps of 10 beyond 0.1 for at=10."""
    return lambda p, seed: 90.0 - width * (math.log10(p[key]) - math.log10(at)) ** 2


def test_an_optimum_two_steps_outside_the_space_is_reached_within_the_reserve(tmp_path):
    obj = Objective(_peak(10.0))
    cfg = _cfg(tmp_path, "method.space.head_lr=[1e-3,1e-2,1e-1]", "method.space.weight_decay=null",
               "protocol.budget=3", "protocol.reserve=4", "protocol.retest=0")
    recs = protocol.run_protocol(cfg, run=obj)
    lrs = [(p["head_lr"], seed, phase) for p, seed, phase in obj.select()]
    # 3 drawn (the grid), then the edge rule: 1, 10 (each better, so the best moved out again), 100
    # (worse: the best, 10, is now inside); the grid is exhausted, so the last reserve run is a
    # further seed of the best point.
    assert lrs == [(1e-3, 0, "select"), (1e-2, 0, "select"), (1e-1, 0, "select"), (1.0, 0, "extension"),
                   (10.0, 0, "extension"), (100.0, 0, "extension"), (10.0, 1, "retest")]
    assert [p["head_lr"] for p in obj.final()] == [10.0]
    sel = _selection(recs)
    assert sel["chosen"]["head_lr"] == 10.0 and sel["edge_flags"] == [] and recs[-1]["hparams"]["edge_flags"] == []
    assert sel["edges"]["head_lr"] == {"candidates": [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0], "extended": [1.0, 10.0, 100.0],
                                       "chosen": 10.0, "status": "resolved"}
    # With one reserve run the best moves to 1 and stays on the edge: the table's † says so.
    obj = Objective(_peak(10.0))
    recs = protocol.run_protocol(_cfg(tmp_path / "r1", "method.space.head_lr=[1e-3,1e-2,1e-1]",
                                      "method.space.weight_decay=null", "protocol.budget=3", "protocol.reserve=1",
                                      "protocol.retest=0"), run=obj)
    assert _selection(recs)["chosen"]["head_lr"] == 1.0 and recs[-1]["hparams"]["edge_flags"] == ["head_lr=high"]
    assert _selection(recs)["edges"]["head_lr"]["status"] == "edge unresolved"


def test_an_extension_keeps_the_best_values_of_the_other_keys(tmp_path):
    space = {"head_lr": [1e-3, 1e-2, 1e-1], "weight_decay": [0.0, 1e-4, 1e-3]}
    drawn, _ = draw(space, 4, 3)   # halton(seed=3): (1e-2, 0), (1e-3, 1e-4), (1e-1, 1e-3), (1e-3, 0)
    # val peaks at head_lr 10 and weight decay 1e-4, so the drawn best is (1e-1, 1e-3): on both high edges
    f = lambda p, seed: _peak(10.0)(p, seed) - 1e4 * abs(p["weight_decay"] - 1e-4)  # noqa: E731
    best = max(drawn, key=lambda p: f(p, 0))
    assert best == {"head_lr": 0.1, "weight_decay": 1e-3} and drawn[0]["weight_decay"] != best["weight_decay"]
    obj = Objective(f)
    protocol.run_protocol(_cfg(tmp_path, "method.space.head_lr=[1e-3,1e-2,1e-1]",
                               "method.space.weight_decay=[0.0,1e-4,1e-3]", "protocol.budget=4",
                               "protocol.sampler_seed=3", "protocol.reserve=2", "protocol.retest=0"), run=obj)
    ext = [p for p, _, phase in obj.select() if phase == "extension"]
    # head_lr first (space order), at the best's weight decay; it wins (76 > 61), so the weight decay's
    # extension is tried at the new best's head_lr
    assert ext == [{"head_lr": 1.0, "weight_decay": 1e-3}, {"head_lr": 1.0, "weight_decay": 1e-2}]


def test_two_edge_keys_take_turns(tmp_path):
    """The best point sits on the high edge of both keys; the key extended less often goes first."""
    f = lambda p, seed: 50 + 10 * math.log10(p["head_lr"]) + 1e4 * p["weight_decay"]  # noqa: E731  (both rise)
    obj = Objective(f)
    protocol.run_protocol(_cfg(tmp_path, "method.space.head_lr=[0.01,0.1]", "method.space.weight_decay=[1e-4,1e-3]",
                               "protocol.budget=4", "protocol.reserve=4", "protocol.retest=0"), run=obj)
    ext = [p for p, _, phase in obj.select() if phase == "extension"]
    assert [(p["head_lr"], p["weight_decay"]) for p in ext] == [(1.0, 1e-3), (1.0, 1e-2), (10.0, 1e-2), (10.0, 0.1)]


def _select_runs(tmp_path, f, *overrides, fail=lambda p: False):
    obj = Objective(f, fail=fail)
    cfg = _cfg(tmp_path, *overrides)
    recs = protocol.run_protocol(cfg, run=obj)
    return obj, recs, protocol.runs_of(cfg)


SPACE_3X3 = ["method.space.head_lr=[1e-3,1e-2,1e-1]", "method.space.weight_decay=[0.0,1e-4,1e-3]"]


@pytest.mark.parametrize("case, space, f, phases", [
    # halton(seed=0)'s 4 of the 3 x 3 space: (1e-3, 0), (1e-2, 1e-3), (1e-2, 1e-4), (1e-1, 0).
    # Inside: the best drawn point (1e-2, 1e-4) is the optimum; the reserve takes the sampler's next 3 points.
    ("optimum inside", SPACE_3X3, lambda p, s: _peak(1e-2)(p, s) - 1e4 * abs(p["weight_decay"] - 1e-4),
     {"select": 4, "reserve": 3, "retest": 2}),
    # Outside: the best drawn (1e-1, 0) is on head_lr's high edge: 1 (better), 10 (worse, so 1 is inside);
    # weight decay 0 is a natural bound; the last reserve run is the sampler's next point.
    ("optimum outside", SPACE_3X3, _peak(1.0), {"select": 4, "extension": 2, "reserve": 1, "retest": 2}),
    # The 2 x 2 grid is drawn whole; its best (1e-2, 0) is on head_lr's high edge once (0.1 is worse),
    # then no point is left: the other 2 reserve runs are further seeds of the top 2 (2 + 2 retest runs).
    ("grid exhausted", ["method.space.head_lr=[1e-3,1e-2]", "method.space.weight_decay=[0.0,1e-3]"],
     lambda p, s: _peak(1e-2)(p, s) - 1e3 * p["weight_decay"], {"select": 4, "extension": 1, "retest": 4}),
])
def test_every_cell_spends_exactly_n_plus_r_select_runs(tmp_path, case, space, f, phases):
    rule = ["protocol.budget=4", "protocol.reserve=3", "protocol.retest=2", "protocol.retest_seeds=1"]
    obj, recs, planned = _select_runs(tmp_path, f, *space, *rule)
    got = [phase for *_, phase in obj.select()]
    assert len(got) == 4 + 3 + 2 * 1 and planned == len(got) + 1  # N + R + k x seeds, and `apbench plan` agrees
    assert len(recs) == len(got) + 1 and _selection(recs)["compute"]["runs"] == len(got)
    assert {ph: got.count(ph) for ph in dict.fromkeys(got)} == phases


def test_a_failed_extension_is_spent_and_leaves_the_edge_unresolved(tmp_path):
    obj, recs, planned = _select_runs(tmp_path, _peak(10.0), "method.space.head_lr=[1e-3,1e-2,1e-1]",
                                      "method.space.weight_decay=null", "protocol.budget=3", "protocol.reserve=2",
                                      "protocol.retest=0", fail=lambda p: p["head_lr"] > 0.1)
    assert [(p["head_lr"], s, ph) for p, s, ph in obj.select()] == [
        (1e-3, 0, "select"), (1e-2, 0, "select"), (1e-1, 0, "select"), (1.0, 0, "extension"), (0.1, 1, "retest")]
    assert planned == 5 + 1 and recs[-1]["hparams"]["edge_flags"] == ["head_lr=high"]


def test_a_natural_bound_is_never_extended(tmp_path):
    # weight decay 0 (protocol.bounds) wins: no extension below it, and it is no edge
    f = lambda p, seed: _peak(1e-2)(p, seed) - 1e3 * p["weight_decay"]  # noqa: E731
    obj, recs, _ = _select_runs(tmp_path, f, "method.space.head_lr=[1e-3,1e-2,1e-1]",
                                "method.space.weight_decay=[0.0,1e-4,1e-3]", "protocol.budget=9",
                                "protocol.reserve=2", "protocol.retest=0")
    assert [ph for *_, ph in obj.select()] == ["select"] * 9 + ["retest"] * 2   # the grid is whole: seeds
    assert _selection(recs)["edges"]["weight_decay"]["status"] == "natural bound" and recs[-1]["hparams"]["edge_flags"] == []
    # a method's own bound: label smoothing below 0.3; val rises with it, so the rule goes up to the bound, not past it
    g = lambda p, seed: 50 + 100 * p["label_smoothing"]  # noqa: E731
    obj, recs, _ = _select_runs(tmp_path / "ls", g, "method.space.head_lr=null", "method.space.weight_decay=null",
                                "+method.space.label_smoothing=[0.1,0.2]", "+method.bounds.label_smoothing=[0.0,0.3]",
                                "protocol.budget=2", "protocol.reserve=3", "protocol.retest=0")
    tried = [(p["label_smoothing"], ph) for p, _, ph in obj.select()]
    assert tried[:3] == [(0.1, "select"), (0.2, "select"), (0.3, "extension")]   # 0.4 clipped to the bound
    assert max(ls for ls, _ in tried) == 0.3 and [ph for _, ph in tried[3:]] == ["retest", "retest"]
    assert _selection(recs)["edges"]["label_smoothing"]["status"] == "natural bound"


# --- the retest -------------------------------------------------------------------------------------

VAL = {(0.01, 0): 80.5, (0.01, 1): 78.0, (0.1, 0): 80.0, (0.1, 1): 80.0}  # 200 val images: one image is 0.5


def test_a_point_that_wins_by_one_image_on_one_seed_but_loses_on_the_mean_is_not_chosen(tmp_path):
    space = ["method.space.head_lr=[0.01,0.1]", "method.space.weight_decay=null", "protocol.reserve=0"]
    obj, recs, _ = _select_runs(tmp_path, lambda p, s: VAL[(p["head_lr"], s)], *space, "protocol.retest=0")
    assert _selection(recs)["chosen"]["head_lr"] == 0.01                       # the first draw alone: 80.5 wins
    obj, recs, _ = _select_runs(tmp_path / "k2", lambda p, s: VAL[(p["head_lr"], s)], *space,
                                "protocol.retest=2", "protocol.retest_seeds=1")
    sel = _selection(recs)
    assert [(p["head_lr"], s) for p, s, _ in obj.select()] == [(0.01, 0), (0.1, 0), (0.01, 1), (0.1, 1)]
    assert sel["chosen"]["head_lr"] == 0.1 and [p["head_lr"] for p in obj.final()] == [0.1]
    assert sel["chosen_score"] == {"val_top1": 80.0, "val_loss": pytest.approx(0.2), "n": 2}
    assert [(r["head_lr"], r["val_top1"], r["n"]) for r in sel["retested"]] == [(0.01, 79.25, 2), (0.1, 80.0, 2)]


def test_retest_ties_go_to_the_lower_mean_val_loss_then_the_cheaper_point_end_to_end(tmp_path):
    """Through run_protocol, not the chooser alone: equal mean val top-1, the second point drawn has the
    lower mean loss (first case) or, at equal loss too, fewer trainable parameters (second case)."""
    space = ["method.space.head_lr=[0.01,0.1]", "method.space.weight_decay=null", "protocol.reserve=0"]
    obj = Objective(lambda p, s: 80.0)
    # the first seed ranks 0.01 first (lower loss); over both seeds 0.1's mean loss is lower
    loss = {(0.01, 0): 0.40, (0.1, 0): 0.45, (0.01, 1): 0.60, (0.1, 1): 0.45}

    def run(c, hparams=None):
        rec = obj(c, hparams)
        if rec["stage"] == "select":
            rec["metrics"]["val_loss"] = loss[(c.trainer.head_lr, c.seed)]
        return rec
    recs = protocol.run_protocol(_cfg(tmp_path, *space, "protocol.retest=2", "protocol.retest_seeds=1"), run=run)
    assert [(p["head_lr"], s) for p, s, _ in obj.select()] == [(0.01, 0), (0.1, 0), (0.01, 1), (0.1, 1)]
    assert _selection(recs)["chosen"]["head_lr"] == 0.1
    assert _selection(recs)["chosen_score"] == {"val_top1": 80.0, "val_loss": pytest.approx(0.45), "n": 2}
    cheap = Objective(lambda p, s: 80.0, params=lambda p: 10 if p["head_lr"] == 0.1 else 20)
    for retest in ("0", "2"):
        cheap.calls.clear()
        recs = protocol.run_protocol(_cfg(tmp_path / retest, *space, f"protocol.retest={retest}"), run=cheap)
        assert _selection(recs)["chosen"]["head_lr"] == 0.1, retest
    # the first seed ranks the dearer point first (80.5 vs 79.5), the second seed reverses it: equal means
    # and losses over both seeds, so only the cost can decide, against the order the retest pool is in
    swap = Objective(lambda p, s: 80.0 + (0.5 if (p["head_lr"] == 0.01) == (s == 0) else -0.5),
                     params=lambda p: 10 if p["head_lr"] == 0.1 else 20)
    recs = protocol.run_protocol(_cfg(tmp_path / "swap", *space, "protocol.retest=2", "protocol.retest_seeds=1"),
                                 run=swap)
    assert [(p["head_lr"], s) for p, s, _ in swap.select()] == [(0.01, 0), (0.1, 0), (0.01, 1), (0.1, 1)]
    assert _selection(recs)["chosen"]["head_lr"] == 0.1
    assert _selection(recs)["chosen_score"] == {"val_top1": 80.0, "val_loss": pytest.approx(0.2), "n": 2}


# --- issue 26 item 1: the protocol's other promises ---------------------------------------------------

@pytest.mark.parametrize("name, trainval, train_images", [("fgvc", False, 40), ("vtab1k", True, 40 + 20)])
def test_final_runs_train_on_what_the_protocol_says(tmp_path, name, trainval, train_images):
    """fgvc's final runs train on train only, vtab1k's on train+val: in the config and in the data the
    loader then gives (fmnist_tiny: 40 train + 20 val images)."""
    from omegaconf import OmegaConf

    from apbench import data
    from apbench.models.factory import build_model
    import torch

    finals = []

    def run(c, hparams=None):
        if c.protocol.stage == "final":
            finals.append(c)
        return Objective(lambda p, s: 50.0)(c, hparams)
    protocol.run_protocol(_cfg(tmp_path, f"protocol={name}", "method.space.head_lr=[0.1]",
                               "method.space.weight_decay=null", "protocol.reserve=0", "protocol.retest=0"), run=run)
    [c] = finals
    assert c.dataset.trainval is trainval
    pre = build_model(OmegaConf.to_container(c.model, resolve=True) | {"weights": "random"}, torch.device("cpu")).preprocessing
    splits = data.build(OmegaConf.to_container(c.dataset, resolve=True), pre, c.paths.data_root)
    assert len(splits.train) == train_images


def _first_indices(shape, n, seed):
    u = qmc.Halton(d=len(shape), scramble=True, seed=seed).random(n)
    return [tuple(min(int(x * k), k - 1) for x, k in zip(row, shape)) for row in u]


def test_the_sampler_gives_exactly_n_distinct_points_for_every_seed_and_shape():
    shapes = [(2, 2), (3, 2), (5, 4, 2), (10, 4), (2, 2, 2), (40,)]
    duplicates_seen = 0
    for shape in shapes:
        space = {f"k{i}": list(range(n)) for i, n in enumerate(shape)}
        size = math.prod(shape)
        for budget in sorted({1, 2, 3, size - 1, size}):
            for seed in range(12):
                points, rule = draw(space, budget, seed)
                assert len(points) == budget and len({tuple(p.values()) for p in points}) == budget
                if budget < size:
                    assert rule == f"halton(seed={seed})"
                    first = _first_indices(shape, budget, seed)
                    duplicates_seen += len(set(first)) < budget
    assert duplicates_seen > 10  # many first draws repeated a point, and still N distinct came back


def test_the_select_score_is_the_final_epochs_val(tiny_overrides, monkeypatch):
    """Real training (tiny data, 3 epochs), with the val evaluation scripted per epoch: the point whose
    val was best early but worst at the end is not chosen, and the record's val is the last epoch's."""
    from apbench import cell
    from apbench.run import run as real_run

    script = {0.01: [90.0, 60.0, 50.0], 0.1: [40.0, 50.0, 70.0]}
    state = {}

    def scripted_val(*a, **k):
        state["epoch"] += 1
        return {"top1": script[state["lr"]][state["epoch"] - 1], "loss": 1.0}

    def run(c, hparams=None):
        state.update(lr=c.trainer.head_lr, epoch=0)
        return real_run(c, hparams=hparams)
    monkeypatch.setattr(cell, "evaluate_with_loss", scripted_val)
    cfg = compose(*tiny_overrides, "method=linear_probe", "protocol=vtab1k", "protocol.seeds=[0]",
                  "method.space.head_lr=[0.01,0.1]", "method.space.weight_decay=null", "protocol.reserve=0",
                  "protocol.retest=0", "trainer.epochs=3", "trainer.measure_efficiency=false")
    recs = protocol.run_protocol(cfg, run=run)
    select = recs[:2]
    assert [[h["val_top1"] for h in r["history"]] for r in select] == [script[0.01], script[0.1]]
    assert [r["metrics"]["val_top1"] for r in select] == [50.0, 70.0]
    assert recs[-1]["hparams"]["head_lr"] == 0.1
