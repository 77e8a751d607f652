"""Equal budgets (issue 14): one draw rule for every method, ties by val loss then the cheaper point,
and AP's default point that is never a provable linear probe."""
import pytest
import torch

from apbench import protocol
from apbench.methods import apply, setup_head
from apbench.models.layers import LayerSpecError, resolve_layers
from conftest import compose


def _indices(space, points):
    return [tuple(space[k].index(p[k]) for k in space) for p in points]


def test_a_space_within_the_budget_runs_whole_in_grid_order():
    space = {"lr": [0.1, 1.0], "weight_decay": [0.0, 1e-4, 1e-2]}
    points, rule = protocol.draw(space, budget=8, seed=0)
    assert rule == "grid" and len(points) == 6
    assert points[:3] == [{"lr": 0.1, "weight_decay": 0.0}, {"lr": 0.1, "weight_decay": 1e-4},
                          {"lr": 0.1, "weight_decay": 1e-2}]
    assert protocol.draw(space, budget=6, seed=0) == (points, "grid")        # exactly N points: still the grid


def test_a_larger_space_gets_n_distinct_points_the_same_for_every_method_of_its_shape():
    ap = {"method.layers": [[0], ["25%"], ["50%"], ["75%"], [-1]], "lr": [0.01, 0.03, 0.1, 0.3], "head_lr": [1e-3, 1e-2]}
    other = {"lr": list(range(5)), "head_lr": list("abcd"), "weight_decay": [0.0, 1.0]}   # another method, 5x4x2
    points, rule = protocol.draw(ap, budget=8, seed=0)
    assert rule == "halton(seed=0)" and len(points) == 8
    assert len(set(_indices(ap, points))) == 8                                # distinct
    assert protocol.draw(ap, budget=8, seed=0) == (points, rule)              # reproducible
    # Same seed and the same space shape: the same candidate indices, whatever the values are.
    same_shape = {"a": list("vwxyz"), "b": [1, 2, 3, 4], "c": [5, 6]}
    assert _indices(same_shape, protocol.draw(same_shape, 8, 0)[0]) == _indices(ap, points)
    assert _indices(other, protocol.draw(other, 8, 0)[0]) != _indices(other, protocol.draw(other, 8, 1)[0])
    # The first points of a larger budget are the smaller budget's points (the sequence only extends).
    assert protocol.draw(ap, budget=12, seed=0)[0][:8] == points


def test_ties_go_to_lower_val_loss_then_the_cheaper_point():
    deep = {"layers": ["12"], "params": {"trainable": 100}}
    shallow = {"layers": ["2"], "params": {"trainable": 100}}
    small = {"layers": [], "params": {"trainable": 10}}
    big = {"layers": [], "params": {"trainable": 50}}
    s = [{"val_top1": 80.0, "val_loss": 0.50}, {"val_top1": 80.0, "val_loss": 0.40}, {"val_top1": 79.0, "val_loss": 0.1}]
    assert protocol.choose(s) == 1                                            # same top-1: lower val loss wins
    tie = [{"val_top1": 80.0, "val_loss": 0.4}] * 2
    costs = [protocol.cost_of(shallow), protocol.cost_of(deep)]
    assert protocol.choose(tie, costs) == 1                                   # then the deeper AP point
    assert protocol.choose(tie, [protocol.cost_of(big), protocol.cost_of(small)]) == 1   # then fewer parameters
    assert protocol.choose(tie) == 0                                          # then the first drawn
    assert protocol.choose([None, {"val_top1": None}, {"val_top1": 1.0, "val_loss": None}]) == 2


def test_depth_fractions_address_the_same_relative_point_on_every_backbone(make_tiny):
    model = make_tiny("resnet")                          # 4 blocks: points 0 (stem) .. 4
    keys = [p.key for p in resolve_layers(model, ["0%", "25%", "50%", "75%", "100%"])]
    assert keys == ["0", "1", "2", "3", "4"]
    vit = make_tiny("vit")
    n = len(resolve_layers(vit, "all"))
    assert resolve_layers(vit, "50%")[0].key == str(int(n / 2 + 0.5))
    with pytest.raises(LayerSpecError, match="between 0% and 100%"):
        resolve_layers(model, "120%")


def _logit_shift(model_name_layers, make_tiny, seed=0):
    """logits(x; prompt) - logits(x; 0) for two different inputs, with a random non-zero prompt."""
    model = make_tiny("resnet")
    head = setup_head(model, "linear", 10, seed=0)
    adapted = apply(model, "ap", input_size=(3, 32, 32), head_prefixes=head.prefixes, layers=model_name_layers)
    head.attach(adapted)
    adapted.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    [prompt] = adapted.param_groups["prompt"]
    with torch.no_grad():
        base = adapted.logits(x)
        prompt.copy_(torch.randn(prompt.shape, generator=torch.Generator().manual_seed(1)))
        return adapted.logits(x) - base


def test_the_default_ap_point_is_not_a_linear_probe_on_a_resnet(make_tiny):
    default = list(compose("method=ap").method.layers)
    assert default != [-1]
    shift = _logit_shift(default, make_tiny)
    assert (shift[0] - shift[1]).abs().max().item() > 1e-3     # the prompt acts differently per input
    last = _logit_shift([-1], make_tiny)                       # last block: pooling + head only
    assert (last[0] - last[1]).abs().max().item() < 1e-5       # a bias shift, equal for every input


def test_ap_trained_with_its_default_recipe_moves_a_prompt_that_is_not_a_bias(tiny_overrides):
    """Issue 14 item 7: through fit(), the default recipe moves the prompt, and the trained prompt changes
    the logits differently per input (a prompt that only shifted a bias would give std 0 here)."""
    from omegaconf import OmegaConf

    from apbench import data
    from apbench.cell import adapt
    from apbench.engine.loop import fit
    from apbench.engine.seeding import seed_everything
    from apbench.models.factory import build_model
    from apbench.recipes import resolve
    from apbench.validate import validate

    cfg = resolve(compose(*tiny_overrides, "method=ap", "trainer.epochs=2"))
    settings = validate(cfg)["settings"]
    assert (settings.optimizer, settings.lr, settings.head_lr) == ("adamw", 3e-2, 1e-3)   # ap.yaml's recipe
    seed_everything(0)
    built = build_model(OmegaConf.to_container(cfg.model, resolve=True), torch.device("cpu"))
    splits = data.build(OmegaConf.to_container(cfg.dataset, resolve=True), built.preprocessing, cfg.paths.data_root)
    adapted, _ = adapt(built.model, OmegaConf.to_container(cfg.method, resolve=True),
                       built.preprocessing["input_size"], splits.num_classes, seed=0)
    settings.progress = False
    fit(adapted, splits.train, torch.device("cpu"), settings, seed=0)
    [prompt] = adapted.param_groups["prompt"]
    assert prompt.abs().max().item() > 0                                  # it moved from its zero init
    x = torch.stack([splits.val[i][0] for i in range(16)])
    adapted.eval()
    with torch.no_grad():
        trained = adapted.logits(x)
        saved = prompt.detach().clone()
        prompt.zero_()
        zero = adapted.logits(x)
        prompt.copy_(saved)
    diff = trained - zero
    assert diff.std(dim=0).max().item() > 1e-3 * trained.std().item()
