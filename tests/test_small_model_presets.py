"""Small-model presets (issue 17): ResNet-18 and ViT-Tiny configs, checked on the meta device."""
import pytest

from apbench.validate import ConfigError, validate

from conftest import compose


@pytest.mark.parametrize("model,blocks,tag", [("resnet18", 8, "tv_in1k"), ("vit_tiny_in21k", 12, "augreg_in21k")])
def test_small_model_presets_have_their_points_and_hub_tags(model, blocks, tag, tmp_path):
    cfg = compose(f"model={model}", "method=ap", f"method.layers=[{blocks}]", f"paths.root_dir={tmp_path}")
    assert cfg.model.weights == "hub" and cfg.model.pretrained_tag == tag
    assert validate(cfg)["points"] == [str(blocks)]
    with pytest.raises(ConfigError, match=f"with {blocks} blocks"):
        validate(compose(f"model={model}", "method=ap", f"method.layers=[{blocks + 1}]", f"paths.root_dir={tmp_path}"))


def test_the_small_model_presets_sweep_methods_that_exist():
    from hydra import compose as hcompose, initialize_config_dir

    from apbench.methods import METHODS
    from conftest import CONF
    for name in ("small_models", "small_models_vit_prompts"):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = hcompose(config_name="config", overrides=[f"experiment={name}"], return_hydra_config=True)
        params = cfg.hydra.sweeper.params
        assert set(str(params["method"]).split(",")) <= set(METHODS)
        for m in str(params.get("model", cfg.model.id)).split(","):
            assert (CONF / "model" / f"{m}.yaml").is_file()
