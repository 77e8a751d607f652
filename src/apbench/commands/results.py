"""``apbench results DIR [--out OUT]``: records in DIR -> tables and plots in OUT, summary on stdout."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import OneLineHelp

EXIT_NO_RECORDS = 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="apbench results", formatter_class=OneLineHelp,
                                description="Build accuracy, efficiency and failure tables and plots "
                                            "from the run records under DIR.")
    p.add_argument("dir", metavar="DIR", type=Path, help="results directory (searched recursively)")
    p.add_argument("--out", type=Path, default=None, metavar="OUT", help="output directory (default: DIR/report)")
    p.add_argument("--reference", action="append", default=None, metavar="METHOD",
                   help="compare every other method label with this one: paired tests per dataset, ranks and "
                        "Wilcoxon across datasets (repeatable: stats-*-vs-METHOD)")
    p.add_argument("--baselines-from", type=Path, default=None, metavar="DIR2",
                   help="records whose VP, norm tuning, linear probe, full FT runs are drawn as lines in the layer plot")
    return p


def _section(title: str, body: str) -> None:
    print(f"\n## {title}\n\n{body}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # After the arguments: --help and a usage error need no pandas, scipy or matplotlib.
    from ..results.analysis_section import show_analyses
    from ..results.budget import edge_tables, write_budget
    from ..results.frame import load_records
    from ..results.plots import write_plots
    from ..results.rows import final_ok, label_order
    from ..results.stats import rank_table, stats_tables
    from ..results.tables import (EXPECTED_NAME, accuracy_tables, compute_summary, failures_table, load_expected,
                                  missing_runs, to_markdown, write_tables)

    if not args.dir.is_dir():
        print(f"apbench results: {args.dir} is not a directory; give the folder the runs wrote to "
              "(paths.results_dir, by default <paths.root_dir>/runs)", file=sys.stderr)
        return EXIT_NO_RECORDS
    df, bad = load_records(args.dir)
    for path, reason in bad:
        print(f"unreadable record skipped: {path} ({reason})", file=sys.stderr)
    if show_analyses(args.dir, args.out or args.dir / "report") and df.empty:  # issue 17: analysis records
        return 0
    if df.empty:
        print(f"apbench results: no run records (record.json) under {args.dir}; give the folder the runs "
              "wrote to (paths.results_dir), or run `apbench run` first", file=sys.stderr)
        return EXIT_NO_RECORDS

    try:
        expected = load_expected(args.dir)
    except ValueError as e:  # a broken expectation list must not hide the results themselves
        print(f"apbench results: ignoring {EXPECTED_NAME}: {e}", file=sys.stderr)
        expected = None
    labels = sorted(set(final_ok(df)["label"]))
    references = args.reference or []
    unknown = [r for r in references if r not in labels]
    if unknown:
        print(f"apbench results: --reference {unknown[0]!r} is not a method label of these records; "
              f"choose one of: {', '.join(label_order(labels)) or '(no final ok runs)'}", file=sys.stderr)
        return EXIT_NO_RECORDS
    baselines = None
    if args.baselines_from is not None:
        if not args.baselines_from.is_dir():
            print(f"apbench results: --baselines-from {args.baselines_from} is not a directory; give the "
                  "folder the baseline runs wrote to", file=sys.stderr)
            return EXIT_NO_RECORDS
        baselines, _ = load_records(args.baselines_from)
    out = args.out or args.dir / "report"
    notes: list[str] = []
    written = (write_tables(df, out, bad_files=bad, expected=expected, reference=references, notes=notes)
               + write_plots(df, out, baselines))
    budget_files, budget_ranks = write_budget(df, out)
    written += budget_files

    print(f"{len(df)} records read from {args.dir}")
    print(compute_summary(df))
    tables = accuracy_tables(df)
    for (model, protocol), table in tables.items():
        _section(f"test top-1 (%): {model}, {protocol}", to_markdown(table))
    if not tables:
        print("\nno accuracy table: no run finished ok in the final stage")
    for ref in references:
        for (model, protocol), table in stats_tables(df, ref).items():
            _section(f"against {ref}: {model}, {protocol} (95% CI includes the test sample; "
                     f"p from the test named per row)", to_markdown(table, index=False))
            ranks = rank_table(df, model, protocol, ref)
            if len(ranks):
                _section(f"across datasets against {ref}: {model}, {protocol}", to_markdown(ranks))
    for (model, protocol, dataset), (ranks, note) in budget_ranks.items():
        _section(f"select budget: expected best val top-1 of n select runs (rank): {model}, {protocol}, {dataset}",
                 f"{to_markdown(ranks)}\n\n{note}")
    for (model, protocol, dataset), edges in edge_tables(df).items():
        _section(f"edges of the search spaces: {model}, {protocol}, {dataset}", to_markdown(edges, index=False))
    for note in notes:
        print(f"\nnote: {note}")
    failures = failures_table(df)
    _section(f"failures ({len(failures)})", to_markdown(failures, index=False) if len(failures) else "none")
    if bad:
        _section(f"unreadable files ({len(bad)})", "\n".join(path for path, _ in bad))
    if expected is not None:
        missing = missing_runs(df, expected)
        _section(f"missing runs ({len(missing)} of {len(expected)} expected)",
                 to_markdown(missing, index=False) if len(missing) else "none")
    print(f"\nwrote {len(written)} files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
