"""The shape of src/apbench, read from the source (issue 23 item 4): no import circle, the commands side
by side under cli.py (none imports another), no module using another's private names; and the
listing commands answer without torch (item 3). Imports are read anywhere in a file, function bodies
included, so a circle hidden in a function still counts."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "apbench"


def module_name(path: Path) -> str:
    parts = ["apbench", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def imported(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, names taken from it) for every import in ``path``."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names = [a.name for a in node.names]
            # `from . import x` imports the module x when it is one
            subs = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in MODULES]
            out += [(s, []) for s in subs]
            out.append((mod, [n for n in names if f"{mod}.{n}" not in MODULES]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return [(m, n) for m, n in out if m == "apbench" or m.startswith("apbench.")]


def graph() -> dict[str, set[str]]:
    edges = {}
    for name, path in MODULES.items():
        targets = set()
        for mod, _ in imported(path):
            while mod not in MODULES and "." in mod:  # `from apbench.x import y` where y is a name
                mod = mod.rsplit(".", 1)[0]
            if mod != name:
                targets.add(mod)
        edges[name] = targets
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    assert circles(graph()) == []


def test_the_circle_finder_sees_a_circle_inside_a_function():
    edges = graph()
    edges["apbench.errors"] = edges["apbench.errors"] | {"apbench.validate"}  # errors is below validate
    assert any({"apbench.errors", "apbench.validate"} <= set(c) for c in circles(edges))


def test_commands_stand_side_by_side():
    from apbench.cli import COMMANDS

    commands = {f"apbench.commands.{m}" for m, _ in COMMANDS.values()}
    assert commands == {m for m in MODULES if m.startswith("apbench.commands.")}
    edges = graph()
    for cmd in commands:
        assert not (edges[cmd] & commands), f"{cmd} imports another command: {edges[cmd] & commands}"
        assert "apbench.cli" not in edges[cmd]
    below = {m for m in MODULES if not m.startswith("apbench.commands") and m not in ("apbench.cli", "apbench.__main__")}
    for mod in below:  # the core never reaches up into a command or the dispatcher
        assert not (edges[mod] & (commands | {"apbench.cli"})), mod
    assert edges["apbench.cli"] == set()  # it imports the chosen command by name, at call time


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_uses_another_modules_private_names():
    offences = []
    for name, path in MODULES.items():
        for mod, names in imported(path):
            if any(private(p) for p in mod.split(".")):
                offences.append(f"{name} imports private module {mod}")
            offences += [f"{name} takes {mod}.{n}" for n in names if private(n)]
        tree = ast.parse(path.read_text())
        aliases = set()  # local names bound to apbench modules: `from . import plan`, `import apbench.x as y`
        for node in ast.walk(tree):
            if isinstance(node, (ast.ImportFrom, ast.Import)):
                for a in node.names:
                    if isinstance(node, ast.Import) or a.name in {m.rsplit(".", 1)[-1] for m in MODULES}:
                        aliases.add(a.asname or a.name.split(".")[0])
        offences += [f"{name} uses {n.value.id}.{n.attr}" for n in ast.walk(tree)
                     if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in aliases
                     and private(n.attr) and n.value.id not in ("self", "cls")]
    assert offences == []


def test_weights_and_small_pretrained_do_not_import_each_other():
    assert "apbench.models.weights" not in graph()["apbench.models.small_pretrained"]
    from apbench.models.weights import BUNDLED
    state = BUNDLED["fmnist_cnn"][1]()
    assert len(state) > 10 and all(hasattr(v, "shape") for v in state.values())


def test_every_method_module_registers_its_catalog_entry():
    from apbench import methods

    assert set(methods.METHODS) == set(methods.CATALOG)
    for name, entry in methods.CATALOG.items():
        assert methods.METHODS[name].fn.__module__ == f"apbench.methods.{entry.module}"
        assert methods.METHODS[name].families == entry.families


LISTING = [["--help"], ["methods"], *([c, "--help"] for c in
           ("run", "plan", "measure", "results", "analyze", "layers", "methods", "data"))]
HEAVY = ("torch", "timm", "peft", "pandas", "scipy", "matplotlib", "sklearn")


def test_listing_commands_import_no_heavy_library():
    """Each listing command in one fresh interpreter: what it imported is read from sys.modules."""
    script = (
        "import contextlib, io, json, sys\n"
        "from apbench.cli import main\n"
        f"out = {{}}\nfor argv in {LISTING!r}:\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf):\n"
        "        try:\n            rc = main(argv)\n"
        "        except SystemExit as e:\n            rc = e.code\n"
        f"    out[' '.join(argv)] = [rc, sorted(m for m in {HEAVY!r} if m in sys.modules), len(buf.getvalue())]\n"
        "print(json.dumps(out))\n")
    import json
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    seen = json.loads(res.stdout.strip().splitlines()[-1])
    for argv, (rc, heavy, printed) in seen.items():
        assert rc in (0, None) and heavy == [] and printed > 0, (argv, rc, heavy)


def argparse_commands():
    """Every argparse parser of the commands, sub-parsers included: (name, parser)."""
    import argparse
    import importlib

    from apbench.cli import COMMANDS

    out = []
    for name, (module, _) in COMMANDS.items():
        mod = importlib.import_module(f"apbench.commands.{module}")
        if not hasattr(mod, "parser"):
            continue  # run and analyze: Hydra's overrides, help from conf/ (test_hydra_commands_help...)
        todo = [(name, mod.parser())]
        while todo:
            label, parser = todo.pop()
            out.append((label, parser))
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction):
                    todo += [(f"{label} {k}", v) for k, v in action.choices.items()]
    return out


def test_every_option_of_every_command_is_listed_with_its_help_on_one_line():
    checked = 0
    for label, parser in argparse_commands():
        lines = parser.format_help().splitlines()
        for action in parser._actions:
            if action.help in (None, "==SUPPRESS==") or not (action.option_strings or action.metavar or action.dest):
                continue
            assert action.help, (label, action.dest)  # every option says what it does
            names = action.option_strings or [action.metavar or action.dest]
            first = [line for line in lines if line.startswith("  ") and line.split()[0].rstrip(",") == names[0]]
            text = action.help % {"default": action.default, "prog": parser.prog} if "%" in action.help else action.help
            assert len(first) == 1 and text in first[0], (label, names[0], first)
            checked += 1
    assert checked > 20


def test_hydra_commands_help_lists_every_config_group_on_one_line(capsys):
    from apbench.cli import main
    from apbench.config_dir import CONF_DIR

    for cmd in ("run", "analyze"):
        assert main([cmd, "--help"]) == 0
        out = capsys.readouterr().out
        for group in ("dataset", "model", "method", "protocol", "trainer", "hydra/launcher"):
            options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
            assert f"  {group} " in out and ", ".join(options) in out, (cmd, group)
        assert "-m, --multirun" in out and "--cfg job" in out
