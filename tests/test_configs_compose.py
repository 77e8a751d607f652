"""Every config option composes, and the tiny ones pass validation (lightning-hydra-template style)."""
from pathlib import Path

import pytest

from apbench.validate import validate
from conftest import CONF, compose

GROUPS = ["dataset", "model", "method", "trainer", "protocol", "logger", "paths"]


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes(group, option, tmp_path):
    cfg = compose(f"{group}={option}", f"paths.root_dir={tmp_path}")
    assert cfg[group] is not None


@pytest.mark.parametrize("model", options("model"))
def test_every_model_config_validates_on_meta(model, tmp_path):
    # Built on the meta device: no weights are downloaded or allocated, even for ViT-L.
    facts = validate(compose(f"model={model}", "method=linear_probe", f"paths.root_dir={tmp_path}"))
    assert facts["family"] in ("resnet", "vit", "swin", "convnext", "efficientnet")


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes(experiment, tmp_path):
    compose(f"+experiment={experiment}" if False else f"experiment={experiment}", f"paths.root_dir={tmp_path}")
