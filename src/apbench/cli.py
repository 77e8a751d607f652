"""The ``apbench`` command: a table of sub-commands, each a module of :mod:`apbench.commands`.

Only the chosen sub-command's module is imported, so ``apbench --help`` and the listing commands answer
at once, and torch, timm, pandas or matplotlib load only for a command that uses them.
"""
from __future__ import annotations

import importlib
import signal
import sys

# name -> (module under apbench.commands, one line of help). Each module has ``main(argv) -> int``.
COMMANDS = {
    "run": ("run", "train and evaluate one cell; -m: a multirun sweep (Hydra overrides)"),
    "plan": ("plan", "jobs, runs and estimated time of `apbench run -m OVERRIDES`, nothing trained"),
    "measure": ("measure", "efficiency of every cell of a sweep (or of records), measured back to back"),
    "layers": ("layers", "a backbone's addressable points with their activation shapes"),
    "methods": ("methods", "the registered methods and the model families they apply to"),
    "analyze": ("analyze", "CKA, attention distance, per-point probes, ERF of a frozen backbone"),
    "results": ("results", "tables and plots from the records under DIR"),
    "data": ("data", "verify a data root, prepare a dataset or suite, list datasets"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return ("usage: apbench COMMAND [ARGS...]   (python -m apbench ... is the same)\n\ncommands:\n"
            + "\n".join(lines) + "\n\n`apbench COMMAND --help` lists a command's options.")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] != "run" and hasattr(signal, "SIGPIPE"):
        # `apbench layers MODEL | head` ends quietly, as a Unix tool should. Not for runs: training
        # must not die with its reader, it reports write errors instead.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"apbench: unknown command {cmd!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"apbench.commands.{COMMANDS[cmd][0]}")
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
