"""The messages `apbench run` gives where Hydra's would mislead (issue 16, item 12)."""
from __future__ import annotations

from omegaconf import OmegaConf

from apbench.hydra_guard import misspelt_key_message

CFG = OmegaConf.create({"trainer": {"epochs": 1, "lr": 0.1}, "method": {"name": "linear_probe", "head": "linear",
                                                                     "lr_scale": {}}})


def test_a_misspelt_key_gets_the_close_valid_one():
    assert misspelt_key_message("trainer.epoch", "trainer.epoch=3", CFG) == (
        "could not override trainer.epoch: there is no key 'epoch' in trainer; "
        "did you mean trainer.epochs? e.g. trainer.epochs=3")
    assert misspelt_key_message("traine.epochs", "traine.epochs=3", CFG).endswith(
        "no key 'traine' in the config's top level; did you mean trainer.epochs? e.g. trainer.epochs=3")


def test_a_key_without_a_close_match_lists_the_keys_there_are():
    assert misspelt_key_message("method.layers", "method.layers=[8]", CFG) == (
        "could not override method.layers: there is no key 'layers' in method; "
        "the keys of method are: head, lr_scale, name")


def test_a_key_that_exists_is_left_to_hydra():
    assert misspelt_key_message("method.lr_scale", "method.lr_scale={bogus: 2}", CFG) is None
