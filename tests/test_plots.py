"""Cost plots people can read: the Pareto front by hand, a legend no taller than its axes with 30+
cells, error bars (95 % intervals) never cut by the y range, AP one series with layer labels."""
import numpy as np
import pandas as pd
import pytest

from apbench.results import plots
from apbench.results.frame import records_frame


def test_pareto_front_by_hand():
    # (cost, acc): (1, 50) (2, 40) (3, 60) (4, 60) (0.5, 30): 30 -> 50 -> 60; (2, 40) is beaten by
    # (1, 50), (4, 60) only ties (3, 60) at a higher cost
    assert plots.pareto_front([1, 2, 3, 4, 0.5], [50, 40, 60, 60, 30]) == [4, 0, 2]


def rec(run_id, method, acc, seed, *, layers=(), params=1000, head="linear"):
    return {"run_id": run_id, "status": "ok", "stage": "final", "protocol": "fixed", "model": "m",
            "dataset": "d", "method": method, "head": head, "layers": list(layers), "seed": seed,
            "metrics": {"test_top1": acc}, "hparams": {}, "data": {"test": 500},
            "params": {"trainable": params},
            "efficiency": {"memory_bytes": params * 1000, "step_time_s": params / 1e6},
            "finished_at": "2026-01-01T00:00:00Z"}


@pytest.fixture
def many_cells():
    """20 AP layers + 14 other methods (34 cells, 2 seeds each), one of them far below the rest."""
    recs = [rec(f"ap{k}-{s}", "ap", 80 + 0.1 * k + s, s, layers=[str(k)], params=2000 + 100 * k)
            for k in range(20) for s in (0, 1)]
    recs += [rec(f"m{i}-{s}", f"method_{i:02d}", 78 + i * 0.5 + s, s, params=1500 * (i + 1))
             for i in range(13) for s in (0, 1)]
    recs += [rec(f"low-{s}", "vp", 30.0 + s, s, head="flm", params=500) for s in (0, 1)]
    return records_frame(recs)


def _capture(monkeypatch):
    figs = {}

    def save(fig, path):
        fig.canvas.draw()
        figs[path.name] = fig
        return path
    monkeypatch.setattr(plots, "_save", save)
    return figs


def _layers_named(label: str) -> list[int]:
    """'0,2-4' -> [0, 2, 3, 4]"""
    out = []
    for part in label.split(","):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


def _bars_inside(ax) -> bool:
    lo, hi = ax.get_ylim()
    ys = [seg[:, 1] for coll in ax.collections for seg in coll.get_segments()]
    return bool(ys) and all(lo <= y.min() and y.max() <= hi for y in ys)


def test_cost_plot_legend_fits_and_bars_are_whole(many_cells, tmp_path, monkeypatch):
    figs = _capture(monkeypatch)
    [path] = plots.plot_accuracy_vs_costs(many_cells, tmp_path)
    fig = figs[path.name]
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_xlabel().split(" (")[0] for ax in axes] == [
        "trainable parameters", "training memory", "train step, full model"]
    legend = axes[-1].get_legend()
    entries = [t.get_text() for t in legend.get_texts()]
    assert len(entries) == 1 + 14 + 1  # AP as one series, 14 other labels, the front
    assert entries[0] == "ap (points: layer)"
    assert "vp[flm] (30.5, below the range)" in entries  # listed with its value, not drawn
    assert legend.get_window_extent().height <= axes[-1].get_window_extent().height
    for ax in axes:
        assert _bars_inside(ax)
        assert ax.get_xscale() == "log"
        # every AP layer labelled once (crowded points share one label, "4-7,9"), no label on another,
        # and vp[flm] listed, not drawn
        texts = [t for t in ax.texts if not t.get_text().startswith("below")]
        assert sorted(_layers_named(",".join(t.get_text() for t in texts))) == list(range(20))
        boxes = [t.get_window_extent() for t in texts]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        assert ax.get_ylim()[0] > 40


def test_layer_plot_bars_are_whole(many_cells, tmp_path, monkeypatch):
    figs = _capture(monkeypatch)
    [path] = plots.plot_layer_sweeps(many_cells, tmp_path)
    ax = figs[path.name].axes[0]
    assert _bars_inside(ax)
    # 95 % intervals: 2 seeds (std 0.707) plus 500 test images, so wider than the seed std alone
    y = np.concatenate([seg[:, 1] for coll in ax.collections for seg in coll.get_segments()])
    assert y.max() - y.min() > 2 * 0.707 + 1.9


def test_written_pngs(many_cells, tmp_path):
    paths = plots.write_plots(many_cells, tmp_path)
    assert [p.name for p in paths] == ["layers-m.png", "acc_vs_cost-m-fixed.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_a_cost_no_record_has_gets_no_panel(tmp_path, monkeypatch):
    recs = [rec(f"lp-{s}", "linear_probe", 80.0 + s, s) for s in (0, 1)]
    for r in recs:
        del r["efficiency"]["memory_bytes"]  # e.g. CPU records of a model whose memory was not measured
    figs = _capture(monkeypatch)
    [path] = plots.plot_accuracy_vs_costs(records_frame(recs), tmp_path)
    axes = [ax for ax in figs[path.name].axes if ax.get_visible()]
    assert [ax.get_xlabel().split(" (")[0] for ax in axes] == ["trainable parameters", "train step, full model"]


def test_costs_within_one_decade_still_get_tick_labels(tmp_path, monkeypatch):
    # trainable parameters 2,000..8,000: no power of ten in view, so the 1-2-5 ticks are labelled instead
    recs = [rec(f"m{k}-{s}", f"method_{k}", 80.0 + k + s, s, params=2000 * (k + 1)) for k in range(4) for s in (0, 1)]
    figs = _capture(monkeypatch)
    [path] = plots.plot_accuracy_vs_costs(records_frame(recs), tmp_path)
    params_ax = figs[path.name].axes[0]
    lo, hi = params_ax.get_xlim()
    shown = [t.get_text() for t, v in zip(params_ax.get_xticklabels(), params_ax.get_xticks()) if lo <= v <= hi]
    assert shown == ["2000", "5000"]


def test_an_ap_layer_far_below_is_named_in_the_legend(tmp_path, monkeypatch):
    recs = [rec(f"ap{k}-{s}", "ap", 80.0 + s, s, layers=[str(k)], params=2000 + 100 * k) for k in range(3) for s in (0, 1)]
    recs += [rec(f"ap9-{s}", "ap", 30.0 + s, s, layers=["9"], params=5000) for s in (0, 1)]  # mean 30.5
    figs = _capture(monkeypatch)
    [path] = plots.plot_accuracy_vs_costs(records_frame(recs), tmp_path)
    fig = figs[path.name]
    entries = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert entries[0] == "ap (points: layer; ap@9 30.5 below the range)"
    assert all(ax.get_ylim()[0] > 40 for ax in fig.axes if ax.get_visible())


def test_the_front_is_drawn_through_drawn_points_only(tmp_path, monkeypatch):
    """A cheap point far below is on the front but listed, not drawn: the front's line stays on the
    drawn points and the x range is theirs (the small-model ViT plot ran its front out of the axes)."""
    recs = [rec(f"ap{k}-{s}", "ap", 80.0 + k + s, s, layers=[str(k)], params=2000 + 1000 * k)
            for k in range(3) for s in (0, 1)]
    recs += [rec(f"nt-{s}", "norm_tuning", 30.0 + s, s, params=100) for s in (0, 1)]  # cheapest, far below
    figs = _capture(monkeypatch)
    [path] = plots.plot_accuracy_vs_costs(records_frame(recs), tmp_path)
    params_ax = figs[path.name].axes[0]
    [front] = [line for line in params_ax.get_lines() if line.get_linestyle() == "--"]
    assert list(front.get_xdata()) == [2000, 3000, 4000]
    assert list(front.get_ydata()) == [80.5, 81.5, 82.5]
    assert params_ax.get_xlim()[0] > 1000


def test_layer_wise_norm_tuning_is_a_curve_beside_ap(tmp_path, monkeypatch):
    """Norm tuning at several points (a layer-wise sweep) is drawn as a curve on AP's axis, not as one
    horizontal reference line per point; norm tuning at one setting stays a reference line."""
    recs = [rec(f"ap{k}-{s}", "ap", 80 + k + s, s, layers=[str(k)]) for k in range(4) for s in (0, 1)]
    recs += [rec(f"nt{k}-{s}", "norm_tuning", 82 + k + s, s, layers=[str(k)]) for k in range(1, 4) for s in (0, 1)]
    recs += [rec(f"lp-{s}", "linear_probe", 79 + s, s) for s in (0, 1)]
    figs = _capture(monkeypatch)
    [path] = plots.plot_layer_sweeps(records_frame(recs), tmp_path)
    fig = figs[path.name]
    [ax] = [a for a in fig.axes if a.get_visible()]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "ap" in labels and "norm_tuning" in labels
    assert sum(lab.startswith("norm_tuning") for lab in labels) == 1  # one curve, not three lines
    assert any(lab.startswith("linear_probe (") for lab in labels)
    assert len(ax.containers) == 2  # two error-bar curves
    assert "norm tuning" in fig._suptitle.get_text()
    assert _bars_inside(ax)
    # one norm-tuning cell (every norm layer): a reference line, AP alone a curve
    one = [r for r in recs if r["method"] != "norm_tuning"] + [rec(f"nta-{s}", "norm_tuning", 83 + s, s)
                                                              for s in (0, 1)]
    figs = _capture(monkeypatch)
    [path] = plots.plot_layer_sweeps(records_frame(one), tmp_path)
    [ax] = [a for a in figs[path.name].axes if a.get_visible()]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(ax.containers) == 1 and any(lab.startswith("norm_tuning (") for lab in labels)


def test_a_far_point_that_fits_the_drawn_range_is_drawn():
    # best mean 85; 'low' (61, [58, 64]) ends 21 under it but fits inside the range the drawn points
    # span ([56, 88], from 'wide'), so it is drawn; 'lower' ([30, 36]) would stretch that range: listed.
    p = pd.DataFrame({"mean": [85.0, 63.0, 61.0, 33.0], "ci_lo": [82.0, 56.0, 58.0, 30.0],
                      "ci_hi": [88.0, 71.0, 64.0, 36.0]}, index=["best", "wide", "low", "lower"])
    assert plots._far_below(p).to_dict() == {"best": False, "wide": False, "low": False, "lower": True}


def test_the_layer_plot_stars_the_point_best_on_val_not_on_test(tmp_path, monkeypatch):
    """Test top-1 is highest at layer 2, but val chose layer 1 (84.0 ties layer 0, whose val loss is
    higher): the star and its legend name layer 1. Without selections (fixed protocol) nothing is starred."""
    vals = {"0": (84.0, 0.60), "1": (84.0, 0.40), "2": (83.0, 0.30)}
    recs = []
    for k, acc in (("0", 80.0), ("1", 81.0), ("2", 83.0)):
        for s in (0, 1):
            r = rec(f"ap{k}-{s}", "ap", acc + s, s, layers=[k])
            r["hparams"]["selected_from"] = {"chosen_index": 1, "val_top1": [
                {"lr": 0.1, "val_top1": 50.0, "val_loss": 2.0},
                {"lr": 0.3, "val_top1": vals[k][0], "val_loss": vals[k][1]}]}
            recs.append(r)
    figs = _capture(monkeypatch)
    [path] = plots.plot_layer_sweeps(records_frame(recs), tmp_path)
    [ax] = [a for a in figs[path.name].axes if a.get_visible()]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(labels) == ["ap", "ap: best on val @1 (val 84.0)"]
    [star] = [line for line in ax.lines if line.get_marker() == "*"]
    assert list(star.get_xdata()) == [1] and list(star.get_ydata()) == [81.5]  # x of layer 1, its mean test
    for r in recs:
        del r["hparams"]["selected_from"]
    figs = _capture(monkeypatch)
    [path] = plots.plot_layer_sweeps(records_frame(recs), tmp_path)
    [ax] = [a for a in figs[path.name].axes if a.get_visible()]
    assert not [line for line in ax.lines if line.get_marker() == "*"]


def test_baselines_from_another_folder_are_lines_in_the_layer_plot_only(tmp_path, monkeypatch):
    """A layer sweep's folder holds AP alone; its study's methods table (another folder) gives the
    reference lines. That folder's own AP cell is not drawn (AP's curve is the sweep's), and a label both
    folders hold is drawn once, from the swept folder (79.5 here, not the baselines' 70.5)."""
    sweep = [rec(f"ap{k}-{s}", "ap", 80 + k + s, s, layers=[str(k)]) for k in range(3) for s in (0, 1)]
    sweep += [rec(f"lp-{s}", "linear_probe", 79 + s, s) for s in (0, 1)]
    methods = [rec(f"m-lp-{s}", "linear_probe", 70 + s, s) for s in (0, 1)]
    methods += [rec(f"m-nt-{s}", "norm_tuning", 84 + s, s) for s in (0, 1)]
    methods += [rec(f"m-ap-{s}", "ap", 60 + s, s, layers=["8"]) for s in (0, 1)]
    figs = _capture(monkeypatch)
    [path] = plots.plot_layer_sweeps(records_frame(sweep), tmp_path, baselines=records_frame(methods))
    [ax] = [a for a in figs[path.name].axes if a.get_visible()]
    labels = sorted(t.get_text() for t in ax.get_legend().get_texts())
    assert labels == ["ap", "linear_probe (79.5)", "norm_tuning (84.5)"]
    assert len(ax.containers) == 1  # AP's one curve, from the sweep
    assert sorted(round(line.get_ydata()[0], 2) for line in ax.lines if len(set(line.get_ydata())) == 1
                  and line.get_linestyle() != "None") == [79.5, 84.5]


def test_results_refuses_a_missing_baselines_folder_before_writing_anything(tmp_path, capsys):
    from apbench.commands.results import main
    from apbench.results.store import write_record

    for r in [rec(f"ap{k}-0", "ap", 80.0, 0, layers=[str(k)]) for k in range(2)]:
        write_record(tmp_path / "runs" / r["run_id"] / "record.json", r)
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "--out", str(out), "--baselines-from", str(tmp_path / "nope")]) == 2
    assert "--baselines-from" in capsys.readouterr().err and not out.exists()
    assert main([str(tmp_path / "runs"), "--out", str(out), "--baselines-from", str(tmp_path / "runs")]) == 0
    assert (out / "layers-m.png").is_file()


def test_layer_plot_of_two_datasets_keeps_each_legend_off_the_other_panel(tmp_path, monkeypatch):
    """Each panel's legend sits beside it; in a grid of panels it covered the next one (the pkg suite's
    two-task sweep did). The suptitle clears the first panel's title."""
    recs = []
    for d in ("d1", "d2"):
        recs += [dict(rec(f"{d}-ap{k}-{s}", "ap", 80 + k + s, s, layers=[str(k)]), dataset=d)
                 for k in range(5) for s in (0, 1)]
        recs += [dict(rec(f"{d}-{m}-{s}", m, 79 + s, s), dataset=d)
                 for m in ("linear_probe", "full_ft", "norm_tuning", "vp") for s in (0, 1)]
    figs = _capture(monkeypatch)
    [path] = plots.plot_layer_sweeps(records_frame(recs), tmp_path)
    fig = figs[path.name]
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == 2
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        legend = ax.get_legend().get_window_extent(renderer)
        assert not any(legend.overlaps(other.get_window_extent(renderer)) for other in axes)
    first_title = min(axes, key=lambda a: -a.get_position().y1).title.get_window_extent(renderer)
    assert not fig._suptitle.get_window_extent(renderer).overlaps(first_title)
