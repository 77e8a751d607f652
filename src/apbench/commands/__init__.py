"""The sub-commands of ``apbench``: one module each, with ``main(argv) -> int``, listed in
:data:`apbench.cli.COMMANDS`. They share the core below them and never import one another."""
from __future__ import annotations

import argparse


class OneLineHelp(argparse.RawDescriptionHelpFormatter):
    """Each option and its help on one line, never wrapped: ``apbench CMD --help | grep WORD`` finds both."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=1000, width=1000)


HYDRA_FLAGS = (
    ("-m, --multirun", "a sweep: every comma list in an override gives one job per value"),
    ("--cfg job", "print the composed config and exit; nothing runs"),
    ("--info", "Hydra's view of the config search path and defaults"),
    ("--hydra-help", "Hydra's own flags"),
    ("-h, --help", "this help"),
)


def hydra_help(usage: str, summary: str, extra: list[tuple[str, str]] = (), footer: str = "",
               skip: tuple[str, ...] = ()) -> str:
    """Help for a Hydra-driven command, read from conf/ (no composition, no Hydra import): the flags
    and every config group with its options, one line each."""
    from ..config_dir import CONF_DIR

    groups = sorted(p.relative_to(CONF_DIR).as_posix() for p in CONF_DIR.rglob("*")
                    if p.is_dir() and any(p.glob("*.yaml")) and p.name not in skip)
    rows = [(g, ", ".join(sorted(f.stem for f in (CONF_DIR / g).glob("*.yaml")))) for g in groups]
    width = max(len(k) for k, _ in [*HYDRA_FLAGS, *extra, *rows])
    lines = [f"usage: {usage}", "", summary, "", "options:"]
    lines += [f"  {k:<{width}}  {v}" for k, v in HYDRA_FLAGS]
    if extra:
        lines += ["", "keys (KEY=VALUE; any key of the composed config, e.g. trainer.epochs=5):"]
        lines += [f"  {k:<{width}}  {v}" for k, v in extra]
    lines += ["", "config groups (GROUP=OPTION, one YAML each in conf/GROUP/):"]
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines + ([f"\n{footer}"] if footer else []))


def wants_help(argv: list[str]) -> bool:
    return any(a in ("-h", "--help") for a in argv)


def commented_keys(yaml_file) -> list[tuple[str, str]]:
    """``(key, "its comment (default VALUE)")`` for each top-level ``key: value  # comment`` line of a YAML."""
    import re

    out = []
    for line in yaml_file.read_text().splitlines():
        m = re.match(r"^(\w+):\s*(.*?)\s*(?:#\s*(.*))?$", line)
        if m and m.group(1) != "name":
            out.append((m.group(1), f"{m.group(3) or ''} (default {m.group(2) or '-'})".lstrip()))
    return out
