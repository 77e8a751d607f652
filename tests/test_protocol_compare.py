"""A study relaunched under the edge rule, side by side with its old protocol (issue 24 item 4's
machinery): the records of both searches in one folder, the final runs of a choice that did not move
shared by run id, and the table that puts the two methods tables next to each other."""
import json
import math

from omegaconf import OmegaConf

from apbench import protocol
from apbench.recipes import resolve
from apbench.results.compare import side_by_side, split
from apbench.results.store import iter_records, write_record
from apbench.run import run_dir_of, run_id_of
from conftest import compose

BASE = ["dataset=fmnist_tiny", "model=tiny_resnet", "device=cpu", "trainer=fast", "protocol=vtab1k",
        "protocol.seeds=[0,1]", "protocol.retest=0"]
CELLS = {  # method -> its space; val peaks at 0.1 of the searched key (linear probe: past its space's edge)
    "linear_probe": (["method.space.head_lr=[0.001,0.01]", "method.space.weight_decay=null"], "head_lr"),
    "norm_tuning": (["method.space.lr=[0.01,0.1,1.0]", "method.space.head_lr=[0.001]", "method.space.weight_decay=[0.0]"], "lr"),
}


def _store_run(key, dataset="fmnist_tiny", peak=0.1):
    """A stored stand-in for a run: val peaks at ``peak`` of ``key`` (log scale), seed 1 scores 0.5 more."""
    def run(c, hparams=None):
        rid = run_id_of(c)
        path = run_dir_of(c, rid) / "record.json"
        if path.exists():
            return json.loads(path.read_text())
        val = 80.0 - 5 * (math.log10(c.trainer[key]) - math.log10(peak)) ** 2 + (0.5 if c.seed else 0.0)
        r = resolve(c)
        rec = {"schema": 1, "run_id": rid, "status": "ok", "stage": c.protocol.stage, "protocol": c.protocol.name,
               "dataset": dataset, "model": "tiny_resnet", "method": c.method.name, "head": "linear",
               "layers": [], "seed": c.seed, "config": OmegaConf.to_container(r, resolve=True),
               "hparams": {k: r.trainer[k] for k in ("lr", "head_lr", "weight_decay")} | dict(hparams or {}),
               "metrics": {"val_top1": val if c.protocol.stage == "select" else None, "val_loss": (100 - val) / 100,
                           "test_top1": val - 2 if c.protocol.stage == "final" else None},
               "params": {"trainable": 10}, "finished_at": "2026-01-01T00:00:00Z"}
        write_record(path, rec)
        return rec
    return run


def test_old_and_new_protocols_side_by_side(tmp_path):
    for method, (space, key) in CELLS.items():
        base = [f"paths.root_dir={tmp_path}", *BASE, f"method={method}", *space]
        protocol.run_protocol(compose(*base, "protocol.reserve=0"), run=_store_run(key))   # the study as it was
        protocol.run_protocol(compose(*base, "protocol.reserve=2"), run=_store_run(key))   # relaunched with the rule
    records = list(iter_records(tmp_path / "runs"))
    finals = [r for r in records if r["stage"] == "final"]
    # the linear probe's choice moved (new final runs); norm tuning's did not (its two final runs are shared)
    assert sorted((r["method"], len(r["hparams"]["selected_from"]) if isinstance(r["hparams"]["selected_from"], list) else 1)
                  for r in finals) == [("linear_probe", 1)] * 4 + [("norm_tuning", 2)] * 2
    old, new = split(records)
    assert sum(r["stage"] == "final" for r in old) == 4 and sum(r["stage"] == "final" for r in new) == 4
    [table] = side_by_side(records).values()
    lp, norm = table.loc["linear_probe"], table.loc["norm_tuning"]
    # old: head_lr 0.01, the high edge of [0.001, 0.01] (75 val, test 73 and 73.5); new: 0.1 (80), then 1 (75) is worse
    assert lp["old test top-1"] == "73.25 ± 0.35\N{DAGGER}" and lp["new test top-1"] == "78.25 ± 0.35"
    assert lp["moved"] == "head_lr 0.01 -> 0.1" and lp["edges (edge rule)"] == "head_lr resolved (tried 0.1, 1)"
    assert lp["select runs old -> new"] == "2 -> 4" and lp["val (selection) old -> new"] == "75.0 -> 80.0"
    assert "edge unresolved: head_lr=high" in lp["old: chosen on val"] and "edge" not in lp["new: chosen on val"]
    # norm tuning: lr 0.1 inside its space; the reserve found no edge and no point left (3 of 3 drawn),
    # so its 2 runs were further seeds; the same final runs, now in both cells
    assert norm["moved"] == "nothing" and norm["old test top-1"] == norm["new test top-1"] == "78.25 ± 0.35"
    assert norm["select runs old -> new"] == "3 -> 5" and norm["edges (edge rule)"] == "-"
    # the new val (selection) is the chosen point's mean over its seeds (80 and 80.5), not the best single run
    assert norm["val (selection) old -> new"] == "80.0 -> 80.25"
    # the halves as record folders: `apbench results DIR/new` then sees the new protocol only
    from apbench.results.compare import main
    assert main([str(tmp_path / "runs"), "--split-to", str(tmp_path / "split"), "--out", str(tmp_path / "cmp.md")]) == 0
    assert "head_lr 0.01 -> 0.1" in (tmp_path / "cmp.md").read_text()
    for name, side in (("old", old), ("new", new)):
        assert sorted(r["run_id"] for r in iter_records(tmp_path / "split" / name)) == sorted(r["run_id"] for r in side)
        # a copy points at its original, so a results page built from the half links to records that stay
        for r in iter_records(tmp_path / "split" / name):
            assert r["_path"] == str(tmp_path / "runs" / r["run_id"] / "record.json")


def test_a_search_recorded_before_the_rule_is_the_same_search_as_reserve_0_retest_0(tmp_path):
    """A relaunch of a search published before the edge rule (its records carry no reserve, retest or
    bounds) under ``reserve=0, retest=0`` is that very search: its final records stay byte-identical.
    Under a reserve it is another search, and the shared final runs name both."""
    space, key = CELLS["norm_tuning"]
    base = [f"paths.root_dir={tmp_path}", *BASE, "method=norm_tuning", *space]
    protocol.run_protocol(compose(*base, "protocol.reserve=0"), run=_store_run(key))
    finals = sorted((tmp_path / "runs").glob("*/record.json"))
    finals = [p for p in finals if json.loads(p.read_text())["stage"] == "final"]
    for p in finals:  # as the first protocol wrote them
        r = json.loads(p.read_text())
        for k in ("reserve", "retest", "bounds", "edges", "retested", "chosen_score"):
            r["hparams"]["selected_from"].pop(k, None)
        write_record(p, r)
    before = {p: p.read_bytes() for p in finals}
    protocol.run_protocol(compose(*base, "protocol.reserve=0"), run=_store_run(key))
    assert {p: p.read_bytes() for p in finals} == before
    protocol.run_protocol(compose(*base, "protocol.reserve=2"), run=_store_run(key))
    assert all(len(json.loads(p.read_text())["hparams"]["selected_from"]) == 2 for p in finals)


def test_a_shared_final_run_shows_each_searchs_own_edges(tmp_path):
    """The first search chose the high edge of [0.01, 0.1]; the edge rule tried 1 (worse) and kept 0.1,
    so both searches share the final runs, whose ``hparams.edge_flags`` are the first search's. The new
    cell must show no edge (no †, no 'edge unresolved'), the old cell its edge."""
    space = ["method.space.head_lr=[0.01,0.1]", "method.space.weight_decay=null"]
    base = [f"paths.root_dir={tmp_path}", *BASE, "method=linear_probe", *space]
    protocol.run_protocol(compose(*base, "protocol.reserve=0"), run=_store_run("head_lr"))
    protocol.run_protocol(compose(*base, "protocol.reserve=2"), run=_store_run("head_lr"))
    records = list(iter_records(tmp_path / "runs"))
    finals = [r for r in records if r["stage"] == "final"]
    assert len(finals) == 2 and all(len(r["hparams"]["selected_from"]) == 2 for r in finals)
    assert all(r["hparams"]["edge_flags"] == ["head_lr=high"] for r in finals)  # the first search's
    [table] = side_by_side(records).values()
    lp = table.loc["linear_probe"]
    assert lp["moved"] == "nothing" and lp["edges (edge rule)"] == "head_lr resolved (tried 1)"
    assert lp["old test top-1"].endswith("\N{DAGGER}") and "edge unresolved: head_lr=high" in lp["old: chosen on val"]
    assert "\N{DAGGER}" not in lp["new test top-1"] and "edge" not in lp["new: chosen on val"]
    # and the same through the split folders, as the study's tables and page are made
    from apbench.results.frame import records_frame
    from apbench.results.recipe_table import recipe_tables
    from apbench.results.tables import method_tables
    old, new = split(records)
    [new_methods] = method_tables(records_frame(new)).values()
    [new_recipes] = recipe_tables(records_frame(new)).values()
    assert "\N{DAGGER}" not in new_methods.to_string() and "edge unresolved" not in new_recipes.to_string()
    [old_recipes] = recipe_tables(records_frame(old)).values()
    assert "edge unresolved: head_lr=high" in old_recipes.to_string()


def test_one_method_searched_on_two_datasets_is_one_column(tmp_path):
    """The edge rule's points, chosen index, compute and edges are outcomes that differ by dataset, and
    full fine-tuning's head_lr follows its searched lr (the recipe sets none): none of it may split the
    method into one column per dataset (the pkg suite's first table had 5-7 columns per method)."""
    from apbench.results.frame import records_frame
    from apbench.results.tables import method_tables

    base = [f"paths.root_dir={tmp_path}", *BASE[1:], "method=full_ft", "method.space.lr=[0.001,0.01]",
            "method.space.weight_decay=null", "protocol.reserve=2"]
    protocol.run_protocol(compose("dataset=fmnist_tiny", *base), run=_store_run("lr", "fmnist_tiny", 0.1))  # past the edge
    protocol.run_protocol(compose("dataset=digits", *base), run=_store_run("lr", "digits", 0.003))          # inside
    records = list(iter_records(tmp_path / "runs"))
    finals = [r for r in records if r["stage"] == "final"]
    sels = {r["dataset"]: r["hparams"]["selected_from"] for r in finals}
    for outcome in ("chosen_index", "edges", "retested"):  # what the two searches found differs
        assert sels["fmnist_tiny"][outcome] != sels["digits"][outcome], outcome
    assert {r["dataset"]: r["config"]["trainer"]["head_lr"] for r in finals} == {"fmnist_tiny": 0.1, "digits": 0.001}
    df = records_frame(records)
    assert set(df.loc[df["stage"] == "final", "label"]) == {"full_ft"}
    assert [list(t.index) for t in method_tables(df).values()] == [["full_ft"], ["full_ft"]]
