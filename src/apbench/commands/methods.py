"""``apbench methods``: the registered methods, the model families each applies to, and a summary."""
from __future__ import annotations

import argparse

from . import OneLineHelp


def parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="apbench methods", description=__doc__, formatter_class=OneLineHelp)


def main(argv: list[str]) -> int:
    parser().parse_args(argv)
    from ..methods.catalog import CATALOG  # names, families and summaries, without importing any method

    for info in sorted(CATALOG.values(), key=lambda i: i.name):
        print(f"{info.name:<16} {', '.join(info.families):<40} {info.summary}")
    return 0
