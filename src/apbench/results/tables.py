"""Paper-style tables from the records frame (see ``frame.load_records``).

Accuracy: one table per (model, protocol); rows are datasets, columns method labels (which carry the
head, so e.g. AP with a linear head and VP with a label mapping sit side by side but never share a
column); cells are mean ± std of final-epoch test top-1 over seeds, their number n, and the 95 %
interval of ``results.stats.cell_interval`` (test sample included). A cell holds only runs that differ
in the seed alone (``results.cells``); the labels say what else tells two cells apart. Protocols are
never averaged together. Intervals and significance: ``results.stats``.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pandas as pd

from . import escape
from .cells import chosen_point
from .chosen_depth import depth_tables
from .groups import MISSING_CELL, dataset_order, group_summary, table_groups
from .paper_table import paper_tables
from .recipe_table import recipe_tables
from .rows import ACC, UNTUNED_NOTE, final_ok, label_order, untuned
from .stats import cd_diagram, cell_stats, friedman_table, rank_table, stats_tables

EDGE = "\N{DAGGER}"  # edge unresolved: a chosen value on an edge of its space that the edge rule did not move
SHARED = "\N{DOUBLE DAGGER}"  # some runs of the cell are also counted in another cell
EXPECTED_NAME = "expected_runs.json"
EXPECTED_KEYS = ("dataset", "model", "method", "layers", "seed", "head")

EFFICIENCY_COLUMNS = {  # record column -> (table column, scale)
    "params.trainable": ("trainable params", 1),
    "params.trainable_no_head": ("trainable w/o head", 1),
    "efficiency.epoch_time_s": ("train time/epoch (s)", 1),
    "efficiency.train_time_s": ("train time (s)", 1),  # all epochs + building a prefix cache
    "efficiency.memory_bytes": ("memory (MB)", 1e-6),
    "efficiency.train_throughput": ("train throughput (img/s)", 1),
    "efficiency.infer_throughput": ("infer throughput (img/s)", 1),
    "efficiency.flops_infer": ("GFLOPs (infer)", 1e-9),
}


def _on_edge(flags: pd.Series) -> bool:
    return any(isinstance(f, (list, tuple)) and len(f) > 0 for f in flags)


def _cell(mean: float, std: float, edge: bool, shared: bool = False) -> str:
    text = f"{mean:.2f}" if pd.isna(std) else f"{mean:.2f} ± {std:.2f}"  # std needs >= 2 seeds
    return text + (EDGE if edge else "") + (SHARED if shared else "")


def _cell_with_interval(mean: float, std: float, edge: bool, shared: bool, n: int, lo: float, hi: float) -> str:
    """'72.00 ± 2.00 (n=3) [69.08, 74.92]': the interval is left out where no test count is known."""
    text = f"{_cell(mean, std, edge, shared)} (n={n})"
    return text if pd.isna(lo) else f"{text} [{lo:.2f}, {hi:.2f}]"


def accuracy_stats(df: pd.DataFrame) -> pd.DataFrame:
    """Long form, numbers kept: one row per (model, protocol, dataset, label) with mean/std/n."""
    keys = ["model", "protocol", "dataset", "label"]
    return (final_ok(df).groupby(keys, dropna=False)
            .agg(group=("dataset_group", "first"), mean=(ACC, "mean"), std=(ACC, "std"),
                 n=(ACC, "count"), edge=("hparams.edge_flags", _on_edge),
                 shared=("reached_by", lambda r: bool((r > 1).any())))
            .reset_index())


def accuracy_tables(df: pd.DataFrame, interval: bool = True) -> dict[tuple[str, str], pd.DataFrame]:
    """{(model, protocol): table of formatted cells}, rows = datasets (+ group summary rows for a
    suite's tasks under the VTAB-1k protocol, ``results.groups``).
    ``interval=False`` leaves n and the 95 % interval out of the cells (mean ± std only)."""
    stats = accuracy_stats(df)
    if interval:
        keys = ["model", "protocol", "dataset", "label"]
        stats = stats.merge(cell_stats(df)[keys + ["ci_lo", "ci_hi"]], on=keys, how="left", validate="one_to_one")
    columns = [stats["mean"], stats["std"], stats["edge"], stats["shared"]]
    stats["cell"] = ([_cell_with_interval(*v) for v in zip(*columns, stats["n"], stats["ci_lo"], stats["ci_hi"])]
                     if interval else [_cell(*v) for v in zip(*columns)])
    tables = {}
    for (model, protocol), part in stats.groupby(["model", "protocol"], dropna=False):
        groups = part.groupby("dataset")["group"].first()
        order = table_groups(groups)
        cols = label_order(part["label"])
        table = part.pivot(index="dataset", columns="label", values="cell").reindex(
            index=dataset_order(groups, order), columns=cols)
        if protocol == "vtab1k" and order:  # not for a dataset of one's own alone
            means = part.pivot(index="dataset", columns="label", values="mean").reindex_like(table)
            table = pd.concat([table, group_summary(means, groups, order)])
        table = table.fillna(MISSING_CELL)
        table.index.name, table.columns.name = "dataset", None
        tables[(str(model), str(protocol))] = table
    return tables


def _selection_val(points, index=None) -> float:
    """The validation score of the point the selection chose (``chosen_index``), which a tie-break or a
    retest need not make the highest; the best score for records that do not say which was chosen."""
    chosen = chosen_point(points, index)
    if chosen is not None:
        return float("nan") if chosen.get("val_top1") is None else float(chosen["val_top1"])
    scores = [p.get("val_top1") for p in points or [] if isinstance(p, dict)]
    scores = [v for v in scores if v is not None]
    return max(scores) if scores else float("nan")


# The selection's summed compute, as the protocol writes it into each final record.
SELECTION_COMPUTE = {"hparams.selected_from.compute.runs": "select_runs",
                     "hparams.selected_from.compute.train_steps": "select_steps",
                     "hparams.selected_from.compute.wall_time_s": "select_wall"}


CONVERGED = {True: "yes", False: "no"}  # results.convergence's verdict; '-' when it cannot tell


def _chosen_run_converged(finals: pd.DataFrame, df: pd.DataFrame) -> list:
    """Per final row, the convergence verdict of the select run its selection chose (True, False, or
    None: no val history, or that select run is not among the records)."""
    select = df[df["stage"] == "select"]
    verdict = dict(zip(select["run_id"], select["converged"])) if "converged" in select else {}
    scores = finals.get("hparams.selected_from.val_top1", pd.Series([None] * len(finals), index=finals.index))
    index = finals.get("hparams.selected_from.chosen_index", pd.Series([None] * len(finals), index=finals.index))
    chosen = (chosen_point(points, i) for points, i in zip(scores, index))
    return [verdict.get(point.get("run_id")) if point else None for point in chosen]


def method_tables(df: pd.DataFrame) -> dict[tuple[str, str, str], pd.DataFrame]:
    """{(model, protocol, dataset): table}, one row per method label: test top-1 mean ± std over the
    final seeds (``accuracy_stats``), their number, the lr, head lr and weight decay the protocol chose
    (an lr no optimizer group used is '-'), the validation score that chose it, and trainable
    parameters; the selection's budget and what it cost (``N select``: select runs; ``select steps``:
    their optimizer steps; ``select wall``: their summed wall-clock, which depends on the machine's load),
    and whether the chosen select run converged (``results.convergence``; a cell that did not needs more
    epochs or leaves the headline comparison).
    The single-dataset view of a study;
    † = edge unresolved (``protocol.reserve``: the edge rule). ``val (selection)``: the chosen point's
    mean val over its retest seeds where it was retested. ``95% CI``: see ``results.stats.cell_interval`` (test sample included)."""
    ok = final_ok(df).copy()
    if ok.empty:
        return {}
    sel = ok.get("hparams.selected_from.val_top1", pd.Series([None] * len(ok), index=ok.index))
    index = ok.get("hparams.selected_from.chosen_index", pd.Series([None] * len(ok), index=ok.index))
    ok["val_selected"] = [_selection_val(v, i) if isinstance(v, list) else float("nan") for v, i in zip(sel, index)]
    if "hparams.selected_from.chosen_score.val_top1" in ok:  # the edge rule's records: the chosen point's mean
        mean = pd.to_numeric(ok["hparams.selected_from.chosen_score.val_top1"], errors="coerce")
        ok["val_selected"] = mean.where(mean.notna(), ok["val_selected"])
    for col in ("hparams.lr", "hparams.head_lr", "hparams.weight_decay", *SELECTION_COMPUTE):
        ok[col] = (pd.to_numeric(ok[col], errors="coerce").replace([math.inf, -math.inf], math.nan)
                   if col in ok else math.nan)
    # A method whose optimizer holds the head alone (the linear probe) carries an `lr` nothing used; one
    # without a head group (VP behind FLM/ILM: the frozen source head) a `head_lr` nothing used.
    if "optimizer_groups" in ok:
        names = ok["optimizer_groups"].str.split(",")  # NaN (a record without groups) stays NaN
        ok.loc[ok["optimizer_groups"] == "head", "hparams.lr"] = float("nan")
        ok.loc[names.apply(lambda g: isinstance(g, list) and "head" not in g), "hparams.head_lr"] = float("nan")
    ok["converged"] = _chosen_run_converged(ok, df)
    keys = ["model", "protocol", "dataset", "label"]
    chosen = lambda v: "/".join(f"{x:g}" for x in sorted(v.dropna().unique())) or "-"  # noqa: E731
    extra = ok.groupby(keys, dropna=False).agg(
        lr=("hparams.lr", chosen), head_lr=("hparams.head_lr", chosen), wd=("hparams.weight_decay", chosen),
        val=("val_selected", "first"), converged=("converged", "first"), params=("params.trainable", "mean"),
        **{name: (col, "first") for col, name in SELECTION_COMPUTE.items()})
    ci = cell_stats(df).set_index(keys)[["ci_lo", "ci_hi", "ci"]]
    stats = accuracy_stats(df).set_index(keys).join(extra).join(ci)
    tables = {}
    for (model, protocol, dataset), part in stats.groupby(level=["model", "protocol", "dataset"], dropna=False):
        part = part.droplevel(["model", "protocol", "dataset"])
        table = pd.DataFrame({
            "test top-1": [_cell(*v) for v in zip(part["mean"], part["std"], part["edge"], part["shared"])],
            "seeds": part["n"],
            "95% CI": [f"[{lo:.2f}, {hi:.2f}]" if not pd.isna(lo) else "-" for lo, hi in zip(part["ci_lo"], part["ci_hi"])],
            "lr": part["lr"], "head lr": part["head_lr"], "wd": part["wd"],
            "val (selection)": part["val"].round(2),
            "converged": [CONVERGED.get(v, MISSING_CELL) for v in part["converged"]],
            "N select": part["select_runs"].round().astype("Int64"),
            "select steps": part["select_steps"].round().astype("Int64"),
            "select wall": [f"{v / 60:.1f} min" if not pd.isna(v) else "-" for v in part["select_wall"]],
            "trainable params": part["params"].round().astype("Int64"),
        }, index=part.index)
        tables[(str(model), str(protocol), str(dataset))] = table.reindex(label_order(table.index)).rename_axis("method")
    return tables


def efficiency_tables(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{model: table}; rows = method label, columns = mean over final ok runs of each measure."""
    ok = final_ok(df)
    cols = list(EFFICIENCY_COLUMNS)
    means = ok.groupby(["model", "label"])[cols].mean()
    means = means * [scale for _, scale in EFFICIENCY_COLUMNS.values()]
    means = means.rename(columns={c: name for c, (name, _) in EFFICIENCY_COLUMNS.items()})
    means = means.round(3)
    counts = ["trainable params", "trainable w/o head"]
    means[counts] = means[counts].round().astype("Int64")  # parameter counts are integers
    means["runs"] = ok.groupby(["model", "label"]).size()
    tables = {}
    for model, part in means.groupby(level="model"):
        table = part.droplevel("model")
        tables[str(model)] = table.reindex(label_order(table.index)).rename_axis("method")
    return tables


def failures_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every run whose status is not ok, with the first line of its error message."""
    failed = df[df["status"] != "ok"]
    error = failed["error_message"].fillna("").astype(str).str.strip().str.split("\n").str[0].str[:300]
    return (pd.DataFrame({"run_id": failed["run_id"], "model": failed["model"],
                          "dataset": failed["dataset"], "method": failed["method"],
                          "layers": failed["layers_str"], "seed": failed["seed"],
                          "status": failed["status"], "error": error})
            .sort_values(["model", "dataset", "method", "layers", "seed"], na_position="last")
            .reset_index(drop=True))


def load_expected(root: str | os.PathLike) -> list[dict] | None:
    """The sweep's list of expected runs (``expected_runs.json`` in ``root``), if there is one."""
    path = Path(root) / EXPECTED_NAME
    if not path.is_file():
        return None
    expected = json.loads(path.read_text())
    if not isinstance(expected, list) or not all(isinstance(e, dict) for e in expected):
        raise ValueError(f"{path}: expected a JSON list of objects")
    return expected


def _cell_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns that identify one cell, normalised so JSON lists/ints and records compare equal."""
    out = frame.reindex(columns=[*EXPECTED_KEYS, "stage"]).astype(object)  # absent keys come as float NaN
    out["layers"] = out["layers"].map(
        lambda v: "+".join(map(str, v)) if isinstance(v, (list, tuple)) else ("" if pd.isna(v) else str(v)))
    out["head"] = out["head"].fillna("linear")
    out["stage"] = out["stage"].fillna("final")  # an expected entry may name a stage; final by default
    out["seed"] = pd.to_numeric(out["seed"], errors="coerce").astype("Int64")
    return out.astype({k: str for k in ("dataset", "model", "method", "layers", "head", "stage")})


def missing_runs(df: pd.DataFrame, expected: list[dict]) -> pd.DataFrame:
    """Expected cells (dataset/model/method/layers/seed/head[/stage]) with no ok record."""
    wanted = _cell_keys(pd.DataFrame(expected))
    done = _cell_keys(df[df["status"] == "ok"]).drop_duplicates()
    merged = wanted.merge(done, how="left", indicator=True)
    return merged[merged["_merge"] == "left_only"].drop(columns="_merge").reset_index(drop=True)


def compute_summary(df: pd.DataFrame) -> str:
    """One line: how many runs by status and the wall-clock they took together (records' wall_time_s)."""
    counts = df["status"].fillna("unknown").value_counts()
    by_status = ", ".join(f"{n} {s}" for s, n in counts.items())
    seconds = float(df["wall_time_s"].sum())
    timed = int(df["wall_time_s"].notna().sum())
    hours = f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"
    return (f"compute: {len(df)} runs ({by_status}), {hours} of wall-clock in total "
            f"(sum of wall_time_s over the {timed} runs that report it)")


def safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)


def to_markdown(table: pd.DataFrame, index: bool = True) -> str:
    # No number parsing: tabulate would turn the cell "75.00" into 75 and drop the precision.
    # Missing values become None so that tabulate prints them as missing, not as "nan".
    table = escape.strings(table, escape.markdown)  # strings from records are data, never markup
    shown = table.astype(object).where(table.notna(), None)
    return shown.to_markdown(index=index, missingval=MISSING_CELL, disable_numparse=True)


def _tex(table: pd.DataFrame, index: bool) -> str:
    if index and table.index.name:  # its name in the header row, not on a row of its own under it
        table, index = table.reset_index(), False
    # 86.0 as in the .md, not 86.000000; a missing value as the .md's "-", not NaN
    tex = escape.strings(table, escape.latex).to_latex(index=index, escape=True, float_format=str, na_rep=MISSING_CELL)
    return tex.replace("±", r"$\pm$").replace(EDGE, r"$^{\dagger}$")


def untuned_note(df: pd.DataFrame, **where) -> str | None:
    """``rows.UNTUNED_NOTE`` when the table of ``df``'s rows matching ``where`` compares untuned points."""
    return UNTUNED_NOTE if untuned(df, **where) else None


def write_table(table: pd.DataFrame, out_dir: Path, stem: str, index: bool = True,
                note: str | None = None) -> list[Path]:
    """``stem``.md / .csv / .tex in ``out_dir``; ``note`` is printed under the .md and .tex tables (the
    .csv stays plain data for other tools)."""
    base = out_dir / safe_name(stem)
    paths = [base.with_suffix(".md"), base.with_suffix(".csv"), base.with_suffix(".tex")]
    paths[0].write_text(to_markdown(table, index) + "\n" + (f"\n**Note:** {note}\n" if note else ""))
    escape.strings(table, escape.csv).to_csv(paths[1], index=index)
    paths[2].write_text(_tex(table, index) + (f"\\par\\smallskip\\noindent\\textit{{Note: {escape.tex_text(note)}}}\n"
                                              if note else ""))
    return paths


def _references(reference) -> list[str | None]:
    """``--reference`` given once, several times, or not at all, as a list (``[None]``: no comparison)."""
    if reference is None or isinstance(reference, str):
        return [reference]
    return list(reference) or [None]


def write_stats(df: pd.DataFrame, out: Path, reference=None) -> tuple[list[Path], list[str]]:
    """``stats-*`` (per cell: n, mean ± std, 95 % interval, and the paired comparison with
    ``reference``), ``ranks-*`` (across datasets) and ``cd-*.png``; returns (paths, notes). ``reference``
    may be a list: the first keeps the plain file names, each further one writes ``stats-*-vs-<label>``
    and ``ranks-*-vs-<label>`` (AP against VP and against BN tuning, from one records folder)."""

    written, notes = [], []
    for n, ref in enumerate(_references(reference)):
        suffix = f"-vs-{ref}" if n else ""
        for (model, protocol), table in stats_tables(df, ref).items():
            stem = f"{model}-{protocol}"
            note = untuned_note(df, model=model, protocol=protocol)
            written += write_table(table, out, f"stats-{stem}{suffix}", index=False, note=note)
            ranks = rank_table(df, model, protocol, ref)
            if len(ranks):
                written += write_table(ranks, out, f"ranks-{stem}{suffix}", note=note)
            if n:
                continue  # the diagram does not depend on the reference
            friedman = friedman_table(df, model, protocol)
            if len(friedman):
                written += write_table(friedman, out, f"friedman-{stem}", index=False)
            png = out / f"cd-{safe_name(stem)}.png"
            why = cd_diagram(df, model, protocol, png)
            if why:
                notes.append(f"{model}, {protocol}: {why}")
            else:
                written.append(png)
    return written, notes


def write_tables(df: pd.DataFrame, out_dir: str | os.PathLike, *, bad_files=(),
                 expected: list[dict] | None = None, reference=None,
                 notes: list | None = None) -> list[Path]:
    """Write every table (and the unreadable-file list) into ``out_dir``; returns the paths written.
    ``notes`` receives what could not be computed (e.g. no critical-difference diagram, and why)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, stat_notes = write_stats(df, out, reference)
    if notes is not None:
        notes += stat_notes
    for (model, protocol), table in accuracy_tables(df).items():
        written += write_table(table, out, f"accuracy-{model}-{protocol}",
                               note=untuned_note(df, model=model, protocol=protocol))
    for (model, protocol), table in paper_tables(df).items():
        written += write_table(table, out, f"paper-{model}-{protocol}",
                               note=untuned_note(df, model=model, protocol=protocol))
    for (model, protocol), table in depth_tables(df).items():
        written += write_table(table, out, f"depth-{model}-{protocol}")
    for (model, protocol, dataset), table in method_tables(df).items():
        written += write_table(table, out, f"methods-{model}-{protocol}-{dataset}",
                               note=untuned_note(df, model=model, protocol=protocol, dataset=dataset))
    for (model, protocol, dataset), table in recipe_tables(df).items():
        written += write_table(table, out, f"recipes-{model}-{protocol}-{dataset}",
                               note=untuned_note(df, model=model, protocol=protocol, dataset=dataset))
    stats_csv = out / "accuracy_long.csv"  # numbers unformatted, for re-plotting elsewhere
    escape.strings(accuracy_stats(df), escape.csv).to_csv(stats_csv, index=False)
    written.append(stats_csv)
    for model, table in efficiency_tables(df).items():
        written += write_table(table, out, f"efficiency-{model}", note=untuned_note(df, model=model))
    written += write_table(failures_table(df), out, "failures", index=False)
    if expected is not None:
        written += write_table(missing_runs(df, expected), out, "missing", index=False)
    bad_path = out / "bad_files.txt"
    bad_path.write_text("".join(f"{path}\t{reason}\n" for path, reason in bad_files))
    written.append(bad_path)
    return written
