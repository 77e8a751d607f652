"""Every config option composes, and the tiny ones pass validation (lightning-hydra-template style)."""
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from apbench.validate import validate
from conftest import CONF, compose

GROUPS = ["dataset", "model", "method", "trainer", "protocol", "logger", "paths"]


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def own_values(path: Path) -> dict:
    """The values a YAML file sets itself (its ``defaults`` list is composition, not a value)."""
    raw = yaml.safe_load(path.read_text()) or {}
    raw.pop("defaults", None)
    return raw


def assert_carries(composed: dict, own: dict, where: str):
    """Every value the file sets is in the composed config unchanged: the chosen file was read and,
    being ``_self_`` last in its own defaults list, wins over what it inherits."""
    for key, value in own.items():
        assert key in composed, f"{where}.{key} missing from the composed config"
        if isinstance(value, dict) and isinstance(composed[key], dict):
            assert_carries(composed[key], value, f"{where}.{key}")
        else:
            assert composed[key] == value, f"{where}.{key}: composed {composed[key]!r}, the file sets {value!r}"


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes(group, option, tmp_path):
    cfg = compose(f"{group}={option}", f"paths.root_dir={tmp_path}")
    composed = OmegaConf.to_container(cfg[group], resolve=False)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves (a typo raises here)
    own = own_values(CONF / group / f"{option}.yaml")
    if group == "paths":
        own.pop("root_dir")  # overridden on the command line above
        assert composed["root_dir"] == str(tmp_path)
    assert_carries(composed, own, group)
    key = {"model": "id", "dataset": "name", "method": "name", "protocol": "name", "logger": "name"}.get(group)
    if key:  # the option's name is the one a record reports (conf/<group>/<name>.yaml)
        # a preset built on a sibling that does not rename itself keeps the sibling's name (adaptformer)
        assert composed[key] == (option if key in own else (_parent(group, option) or option))


def _parent(group: str, option: str) -> str | None:
    """A method preset built on another method's YAML (``defaults: [adapter, _self_]``, e.g. adaptformer)
    is that method with other values: its name is the parent's, its preset shows in the record's config."""
    raw = yaml.safe_load((CONF / group / f"{option}.yaml").read_text()) or {}
    parents = [d for d in raw.get("defaults", []) if isinstance(d, str) and d != "_self_"]
    return (_parent(group, parents[0]) or parents[0]) if parents else None


@pytest.mark.parametrize("model", options("model"))
def test_every_model_config_validates_on_meta(model, tmp_path):
    # Built on the meta device: no weights are downloaded or allocated, even for ViT-L.
    facts = validate(compose(f"model={model}", "method=linear_probe", f"paths.root_dir={tmp_path}"))
    assert facts["family"] in ("resnet", "vit", "swin", "convnext", "efficientnet")


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes(experiment, tmp_path):
    """A preset is `# @package _global_`: its values land at the top level, its `override /group: x`
    defaults select those options, and its sweep list reaches Hydra's sweeper unchanged."""
    from hydra import compose as hydra_compose, initialize_config_dir

    path = CONF / "experiment" / f"{experiment}.yaml"
    raw = yaml.safe_load(path.read_text())
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=[f"experiment={experiment}", f"paths.root_dir={tmp_path}"],
                            return_hydra_config=True)
    assert "experiment" not in cfg  # nothing landed under an `experiment:` key
    sweep = ((raw.pop("hydra", None) or {}).get("sweeper") or {}).get("params")
    params = cfg.hydra.sweeper.params
    assert (None if params is None else OmegaConf.to_container(params)) == sweep
    for entry in raw.pop("defaults", []):
        if isinstance(entry, dict) and next(iter(entry)).startswith("override /"):
            (group, option), = ((k.removeprefix("override /"), v) for k, v in entry.items())
            assert cfg.hydra.runtime.choices[group] == option
    assert_carries(OmegaConf.to_container(cfg, resolve=False), raw, "")
    # every interpolation of the task config resolves (a typo'd `${paths.root_di}` raises here)
    OmegaConf.to_container(compose(f"experiment={experiment}", f"paths.root_dir={tmp_path}"), resolve=True)
