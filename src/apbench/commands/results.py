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
    page = p.add_mutually_exclusive_group()
    page.add_argument("--html", action="store_true",
                      help="also write OUT/index.html: an offline results browser (filters, sortable table, front, comparisons)")
    page.add_argument("--html-only", action="store_true",
                      help="write only OUT/index.html from the records (tables and plots left as they are)")
    return p


def _section(title: str, body: str) -> None:
    from ..results.escape import visible  # titles name models and methods from records: no escapes reach the terminal
    print(f"\n## {visible(title)}\n\n{body}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # After the arguments: --help and a usage error need no pandas, scipy or matplotlib.
    from ..results.frame import load_records, records_frame
    from ..results.store import iter_records

    if not args.dir.is_dir():
        print(f"apbench results: {args.dir} is not a directory; give the folder the runs wrote to "
              "(paths.results_dir, by default <paths.root_dir>/runs)", file=sys.stderr)
        return EXIT_NO_RECORDS
    out = args.out or args.dir / "report"
    if out.exists() and not out.is_dir():
        print(f"apbench results: --out {out} is an existing file, not a folder; name a folder for the tables "
              "and plots (it is created when missing)", file=sys.stderr)
        return EXIT_NO_RECORDS
    bad: list[tuple[str, str]] = []
    records = list(iter_records(args.dir, bad=bad))
    df = records_frame(records)
    for path, reason in bad:
        print(f"record skipped: {reason}", file=sys.stderr)
    if args.html_only and df.empty:
        print(f"apbench results: no run records (record.json) under {args.dir}: no page to write; give the "
              "folder the runs wrote to (paths.results_dir)", file=sys.stderr)
        return EXIT_NO_RECORDS
    if args.html_only:
        print(f"{len(df)} records read from {args.dir}")
        print(f"wrote {_page(records, df, out, args.dir, len(bad))}")
        return 0
    # the page alone needs no plots (matplotlib) and no analyses
    from ..results.analysis_section import analysis_records, show_analyses
    from ..results.budget import edge_tables, write_budget
    from ..results.plots import write_plots
    from ..results.rows import UNTUNED_NOTE, final_ok, label_order, untuned
    from ..results.paper_table import paper_tables
    from ..results.stats import friedman_table, rank_table, stats_tables
    from ..results.tables import (EXPECTED_NAME, accuracy_tables, compute_summary, failures_table, load_expected,
                                  missing_runs, to_markdown, write_tables)

    if df.empty and not analysis_records(args.dir):
        print(f"apbench results: no run records (record.json) under {args.dir}; give the folder the runs "
              "wrote to (paths.results_dir), or run `apbench run` first", file=sys.stderr)
        return EXIT_NO_RECORDS
    try:
        expected = load_expected(args.dir)
    except ValueError as e:  # a broken expectation list must not hide the results themselves
        print(f"apbench results: ignoring {EXPECTED_NAME}: {e}", file=sys.stderr)
        expected = None
    labels = sorted(set(final_ok(df)["label"])) if not df.empty else []
    references = args.reference or []
    unknown = [r for r in references if r not in labels]
    if unknown and not df.empty:
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
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"apbench results: cannot create the output folder {out} ({e.strerror or e}); give --out a folder "
              "you can write", file=sys.stderr)
        return EXIT_NO_RECORDS
    if show_analyses(args.dir, out) and df.empty:  # issue 17: analysis records alone
        return 0
    notes: list[str] = []
    written = (write_tables(df, out, bad_files=bad, expected=expected, reference=references, notes=notes)
               + write_plots(df, out, baselines))
    budget_files, budget_ranks = write_budget(df, out)
    written += budget_files

    print(f"{len(df)} records read from {args.dir}")
    print(compute_summary(df))
    if untuned(df):  # said before any table, not only in the files
        print(f"\nnote: {UNTUNED_NOTE}")
    tables = accuracy_tables(df)
    for (model, protocol), table in tables.items():
        _section(f"test top-1 (%): {model}, {protocol}", to_markdown(table))
    if not tables:
        print("\nno accuracy table: no run finished ok in the final stage")
    for (model, protocol), table in paper_tables(df).items():  # two datasets or more
        _section(f"paper-style table (test top-1 %, mean over seeds): {model}, {protocol}", to_markdown(table))
        friedman = friedman_table(df, model, protocol)
        if len(friedman):
            _section(f"ranks over datasets, Friedman test: {model}, {protocol}", to_markdown(friedman, index=False))
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
        _section(f"unreadable or invalid records ({len(bad)}; in no table)", "\n".join(reason for _, reason in bad))
    if expected is not None:
        missing = missing_runs(df, expected)
        _section(f"missing runs ({len(missing)} of {len(expected)} expected)",
                 to_markdown(missing, index=False) if len(missing) else "none")
    if args.html:
        written.append(_page(records, df, out, args.dir, len(bad)))
    print(f"\nwrote {len(written)} files to {out}" + (f" (the results browser: {out / 'index.html'})" if args.html else ""))
    return 0


def _page(records, df, out, source, bad: int):
    from ..results.browser import write_page  # the page's data builder only when a page is asked for

    return write_page(records, df, out, source, bad)


if __name__ == "__main__":
    sys.exit(main())
