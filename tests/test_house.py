"""Issue 15 item 6: no import loops through CONF_DIR, no private helpers across modules, and the
weights registry and the small pretrained models do not import each other (checked on the source)."""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "apbench"


def imports(rel: str) -> set[str]:
    """Modules ``rel`` imports anywhere (top level or inside functions), as absolute apbench names."""
    path = SRC / rel
    package = ["apbench", *path.relative_to(SRC).parent.parts]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            out.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_commands_take_conf_dir_from_below_not_from_cli():
    for rel in ("plan.py", "measure.py", "data/verify.py"):
        assert "apbench.cli" not in imports(rel), rel
        assert "apbench.config_dir" in imports(rel), rel
    assert not {m for m in imports("config_dir.py") if m.startswith("apbench")}
    from apbench import cli, config_dir
    assert cli.CONF_DIR is config_dir.CONF_DIR and (config_dir.CONF_DIR / "config.yaml").is_file()


def test_measure_uses_plan_public_functions_only():
    tree = ast.parse((SRC / "measure.py").read_text())
    private = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
               and isinstance(n.value, ast.Name) and n.value.id == "plan" and n.attr.startswith("_")]
    assert private == []


def test_weights_and_small_pretrained_do_not_import_each_other():
    assert "apbench.models.weights" not in imports("models/small_pretrained.py")
    from apbench.models.weights import BUNDLED
    state = BUNDLED["fmnist_cnn"][1]()
    assert len(state) > 10 and all(hasattr(v, "shape") for v in state.values())
