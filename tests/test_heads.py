"""Heads as an axis: new linear head, frozen source head, and label maps (random, FLM, ILM)."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from apbench import methods
from apbench.engine.loop import TrainSettings, evaluate, fit
from apbench.methods import heads
from apbench.methods.heads import frequency_mapping, greedy_one_to_one, setup_head

from conftest import TINY, compose, tiny_model


# --- FLM by hand ---------------------------------------------------------------------------------

def test_flm_matches_a_hand_worked_example_and_is_one_to_one():
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    preds = torch.tensor([0, 0, 3, 0, 2, 2, 0, 0, 0])  # source-class argmax of each sample
    # counts[target][source]:  t0: s0=2 s3=1 | t1: s0=1 s2=2 | t2: s0=3
    # greedy: (t2,s0)=3 first; then (t1,s2)=2; t0 is left with s3=1  ->  [3, 2, 0]
    # (per-row argmax would give [0, 2, 0]: not one-to-one)
    mapping = frequency_mapping(preds, labels, num_classes=3, source_classes=4)
    assert mapping.tolist() == [3, 2, 0]


def test_greedy_breaks_ties_by_lower_target_then_lower_source():
    counts = torch.tensor([[0, 1, 0], [0, 1, 0]])  # both targets want s1; t0 gets it, t1 the first free s0
    assert greedy_one_to_one(counts).tolist() == [1, 0]


@pytest.mark.parametrize("seed", range(5))
def test_flm_is_one_to_one_on_random_predictions(seed):
    g = torch.Generator().manual_seed(seed)
    labels, preds = torch.randint(0, 7, (200,), generator=g), torch.randint(0, 9, (200,), generator=g)
    mapping = frequency_mapping(preds, labels, 7, 9)
    assert len(set(mapping.tolist())) == 7 and all(0 <= s < 9 for s in mapping.tolist())


# --- heads on a model ----------------------------------------------------------------------------

SOURCE = 20  # classes of the tiny "pretrained" head


def _blobs(n_per_class=8, classes=4, seed=0):
    """Images whose mean depends on the class, so a prompt can learn to separate them."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = torch.randn(len(y), 3, 32, 32, generator=g) + 0.5 * y.view(-1, 1, 1, 1).float()
    return TensorDataset(x, y)


def _mapped(kind, family="vit", classes=4, seed=0):
    model = tiny_model(family, num_classes=SOURCE)
    head = setup_head(model, kind, classes, seed=seed)
    adapted = methods.apply(model, "ap", input_size=(3, 32, 32), head_prefixes=head.prefixes, layers=["input"])
    return head, head.attach(adapted)


def test_source_head_is_the_frozen_pretrained_classifier_read_as_is():
    model = tiny_model("resnet", num_classes=SOURCE).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    head = setup_head(model, "source", SOURCE)
    adapted = head.attach(methods.apply(model, "ap", input_size=(3, 32, 32), head_prefixes=head.prefixes,
                                        layers=[2]))
    assert not any(p.requires_grad for p in model.fc.parameters())
    with torch.no_grad():
        assert torch.equal(adapted.eval().logits(x), ref)
    with pytest.raises(heads.HeadError, match="head=random|flm|ilm"):
        setup_head(tiny_model("resnet", num_classes=SOURCE), "source", 10)


def test_random_map_is_fixed_one_to_one_and_selects_source_columns():
    head, adapted = _mapped("random")
    m = adapted.info["label_map"]
    assert len(set(m)) == 4 and all(0 <= s < SOURCE for s in m)
    assert m == _mapped("random")[1].info["label_map"]          # same seed, same map
    assert m != _mapped("random", seed=1)[1].info["label_map"]  # the seed picks it
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(adapted.eval().logits(x), adapted.model(x)[:, m])
    assert not hasattr(adapted, "on_epoch_start")  # nothing to recompute
    with pytest.raises(heads.HeadError, match="too few"):
        setup_head(tiny_model("vit", num_classes=3), "flm", 4)


def _train(adapted, epochs=3, lr=0.5, train_set=None):
    s = TrainSettings(epochs=epochs, batch_size=8, lr=lr, weight_decay=0.0, scheduler="constant", progress=False)
    return fit(adapted, train_set if train_set is not None else _blobs(), torch.device("cpu"), s, seed=0)


def test_ilm_remaps_every_epoch_while_flm_maps_once():
    flm_head, flm = _mapped("flm")
    ilm_head, ilm = _mapped("ilm")
    _train(flm)
    _train(ilm)
    assert len(flm.info["label_map_history"]) == 1  # computed once, before the first step
    assert flm.info["label_map"] == flm.info["label_map_history"][0] == flm_head.mapping.tolist()
    hist = ilm.info["label_map_history"]
    assert len(hist) == 3  # recomputed at the start of every epoch
    assert len({tuple(h) for h in hist}) > 1, f"ILM map never changed: {hist}"
    assert hist[0] == flm.info["label_map_history"][0]  # same model and data before training
    for h in hist:
        assert len(set(h)) == 4


class Spy(Dataset):
    """Wraps a split and logs its name on every read."""

    def __init__(self, base, name, log):
        self.base, self.name, self.log = base, name, log

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        self.log.append(self.name)
        return self.base[i]


@pytest.mark.parametrize("kind", ["flm", "ilm"])
def test_maps_read_only_the_training_split_and_stay_frozen_at_eval(kind):
    log = []
    train, val = Spy(_blobs(), "train", log), Spy(_blobs(seed=1), "val", log)
    head, adapted = _mapped(kind)
    seen = []
    real = heads.source_predictions

    def spying(model, dataset, batch_size=128):
        seen.append(dataset.name)
        return real(model, dataset, batch_size)
    heads.source_predictions = spying
    try:
        _train(adapted, epochs=2, train_set=train)
        assert set(log) == {"train"}
        frozen = list(adapted.info["label_map"])
        evaluate(adapted, val, torch.device("cpu"))
        evaluate(adapted, val, torch.device("cpu"))
    finally:
        heads.source_predictions = real
    assert seen == ["train"] * (1 if kind == "flm" else 2)
    assert adapted.info["label_map"] == frozen == head.mapping.tolist()
    assert "val" in log  # evaluation did read val, but never to map labels


def test_run_records_head_and_label_map_and_maps_from_train_only(tiny_overrides, monkeypatch):
    from apbench import data
    from apbench.run import run

    real_build, real_pred, seen = data.build, heads.source_predictions, []

    def spy_build(*a, **k):
        splits = real_build(*a, **k)
        log = []
        splits.train, splits.val = Spy(splits.train, "train", log), Spy(splits.val, "val", log)
        test = splits._test
        splits._test = lambda: Spy(test(), "test", log)
        return splits
    monkeypatch.setattr(data, "build", spy_build)
    monkeypatch.setattr(heads, "source_predictions", lambda m, d, b=128: (seen.append(d.name), real_pred(m, d, b))[1])
    rec = run(compose(*tiny_overrides, "method=ap", "method.layers=[input]", "method.head=ilm",
                      "trainer.epochs=2", "protocol.stage=final"))
    assert rec["status"] == "ok", rec["error"]
    assert rec["head"] == "ilm"
    assert seen == ["train", "train"]
    assert len(rec["label_map"]) == 10 and len(set(rec["label_map"])) == 10
    assert len(rec["label_map_history"]) == 2
    assert rec["params"]["trainable"] == 3 * 32 * 32  # only the prompt: the source head is frozen


@pytest.mark.parametrize("family", list(TINY))
def test_new_linear_head_gives_a_zero_init_prompt_a_gradient_at_the_first_step(family):
    model = tiny_model(family, num_classes=SOURCE)
    head = setup_head(model, "linear", 5)
    adapted = head.attach(methods.apply(model, "ap", input_size=(3, 32, 32), head_prefixes=head.prefixes, layers=[1]))
    (prompt,) = model.apbench_prompts.parameters()
    assert not prompt.any()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    torch.nn.functional.cross_entropy(adapted.train().logits(x), y).backward()
    assert prompt.grad is not None and prompt.grad.abs().sum() > 0
    # Why the head's init matters: through a zero head no gradient reaches the prompt.
    prompt.grad = None
    with torch.no_grad():
        model.get_classifier().weight.zero_()
    torch.nn.functional.cross_entropy(adapted.logits(x), y).backward()
    assert prompt.grad.abs().sum() == 0


def test_validate_knows_the_heads_and_refuses_an_empty_trainable_set(tiny_overrides):
    from apbench.validate import ConfigError, validate

    validate(compose(*tiny_overrides, "method=ap", "method.head=flm"))
    with pytest.raises(ConfigError, match="method.head"):
        validate(compose(*tiny_overrides, "method=ap", "method.head=nearest"))
    with pytest.raises(ConfigError, match="nothing to train"):
        validate(compose(*tiny_overrides, "method=linear_probe", "method.head=flm"))
    with pytest.raises(ConfigError, match="head=source"):  # 10 Fashion-MNIST classes vs 1000 source classes
        validate(compose(*tiny_overrides, "method=ap", "method.head=source"))
