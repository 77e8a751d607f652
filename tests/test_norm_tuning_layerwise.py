"""Layer-wise norm tuning (issue 17): the one norm right after a point, and the sweep presets."""
import pytest
import torch

from apbench import methods
from apbench.protocol import stage_config
from apbench.validate import validate

from conftest import compose, tiny_model

# (family, point, the norm module that runs first after it, its channels)
AFTER = [
    ("vit", 0, "blocks.0.norm1", 32),      # tiny_vit width 32: the LN that reads point 0
    ("vit", 1, "blocks.1.norm1", 32),
    ("vit", 2, "norm", 32),                # after the last block: the final norm
    ("resnet", 0, "layer1.0.bn1", 64),     # after the stem: block 1's first BN
    ("resnet", 1, "layer2.0.bn1", 128),    # layer2.0: conv1 -> bn1 runs before the downsample BN
]


@pytest.mark.parametrize("family,point,module,channels", AFTER)
def test_where_after_tunes_exactly_the_first_norm_after_the_point(family, point, module, channels):
    model = tiny_model(family)
    adapted = methods.apply(model, "norm_tuning", layers=[point], where="after", input_size=(3, 32, 32))
    assert adapted.info["norm_modules"] == [module]
    norm = model.get_submodule(module)
    head = sum(p.numel() for p in model.get_classifier().parameters())
    assert sum(p.numel() for p in adapted.param_groups["norm"]) == 2 * channels
    assert {id(p) for p in adapted.param_groups["norm"]} == {id(norm.weight), id(norm.bias)}
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 2 * channels + head


def test_a_point_with_no_norm_after_it_is_refused():
    with pytest.raises(methods.MethodError, match="no norm layer runs after point 4"):
        methods.apply(tiny_model("resnet"), "norm_tuning", layers=[4], where="after", input_size=(3, 32, 32))
    with pytest.raises(methods.MethodError, match="choose one of"):
        methods.apply(tiny_model("vit"), "norm_tuning", layers=[1], where="inside", input_size=(3, 32, 32))


def test_one_training_step_moves_only_that_norm():
    model = tiny_model("vit")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    adapted = methods.apply(model, "norm_tuning", layers=[0], where="after", input_size=(3, 32, 32))
    opt = torch.optim.SGD(adapted.trainable(), lr=0.5)
    adapted.train()
    x, y = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 3])
    torch.nn.functional.cross_entropy(adapted.logits(x), y).backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"blocks.0.norm1.weight", "blocks.0.norm1.bias", "head.weight", "head.bias"}


@pytest.mark.parametrize("experiment,points", [("norm_layer_sweep_cnn", 34), ("norm_layer_sweep_vit", 13)])
def test_the_sweep_presets_put_a_norm_at_every_point_they_sweep(experiment, points, tmp_path):
    # Composed as the preset's sweep would, one swept value at a time; validated on the meta device.
    from omegaconf import OmegaConf
    from hydra import compose as hcompose, initialize_config_dir
    from conftest import CONF
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hcompose(config_name="config", overrides=[f"experiment={experiment}", f"paths.root_dir={tmp_path}"],
                       return_hydra_config=True)
    swept = str(cfg.hydra.sweeper.params["method.layers"]).split(",")
    assert len(swept) == points
    for value in (swept[0], swept[len(swept) // 2], swept[-1]):
        c = compose(f"experiment={experiment}", f"paths.root_dir={tmp_path}", f"method.layers={value}")
        facts = validate(stage_config(c, "vtab1k", "select", {}, 0, trainval=False))  # one select run
        assert facts["points"] == [value]
    assert OmegaConf.select(cfg, "method.name") == "norm_tuning"
