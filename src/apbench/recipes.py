"""Each method's training recipe, and the one place where it meets the trainer section.

A method YAML (conf/method/*.yaml) carries ``recipe:`` -- the values of its reference implementation
(cited per value in docs/recipes.md) -- and ``space:``, its declared search space (read by
:mod:`apbench.protocol`). The trainer keys in conf/trainer/default.yaml that a recipe covers default to
``null``, meaning "the method's recipe"; a value set on the command line or by a preset wins.

:func:`resolve` fills those nulls once, before the run id is computed, so the run id and the record
name what was actually trained. It is idempotent (a resolved config has no nulls left to fill).
"""
from __future__ import annotations

import copy

from omegaconf import DictConfig, OmegaConf, open_dict

from .errors import ConfigError

# Recipe key -> trainer key filled from it when the trainer leaves it null.
TRAINER_KEYS = ("optimizer", "lr", "head_lr", "weight_decay", "momentum", "lr_scaling", "scheduler",
                "milestones", "gamma", "epochs", "batch_size", "label_smoothing", "drop_path")
# Every recipe key: the trainer keys, plus warm-up as a fraction of the epochs (kept as a fraction of
# the reference schedule when fewer epochs are used), the augmentation the reference used (applied by
# the dataset's own protocol, so only recorded) and the prompt/adapter initialisation (a method key).
RECIPE_KEYS = set(TRAINER_KEYS) | {"warmup", "augment", "init", "reference"}


def recipe_of(cfg: DictConfig) -> dict:
    """The method's recipe as plain data (empty when the method declares none)."""
    r = cfg.method.get("recipe")
    r = OmegaConf.to_container(r, resolve=True) if r is not None else {}
    unknown = sorted(set(r) - RECIPE_KEYS)
    if unknown:
        raise ConfigError(f"method.recipe has unknown key(s) {unknown}; valid keys: {', '.join(sorted(RECIPE_KEYS))}")
    return r


def resolve(cfg: DictConfig) -> DictConfig:
    """A copy of ``cfg`` with every null trainer key taken from ``method.recipe`` and ``method.space``
    and ``method.bounds`` removed (the space and its natural bounds are what the protocol searched,
    recorded in ``hparams.selected_from``, not what this run computed; leaving them out keeps run ids
    stable when a space is widened)."""
    r = recipe_of(cfg)
    c = copy.deepcopy(cfg)
    with open_dict(c):
        t = c.trainer
        for key in TRAINER_KEYS:
            if t.get(key) is None and r.get(key) is not None:
                t[key] = r[key]
        if t.get("head_lr") is None:
            t.head_lr = t.get("lr")  # one lr for every group unless the recipe or the user says otherwise
        if t.get("warmup_epochs") is None:
            if t.get("epochs") is not None:
                t.warmup_epochs = round(float(r.get("warmup") or 0.0) * int(t.epochs), 6)
        if t.get("milestones") is None:
            t.milestones = []
        for key in ("gamma", "label_smoothing", "drop_path"):
            if t.get(key) is None:
                t[key] = {"gamma": 0.1}.get(key, 0.0)
        if t.get("lr_scaling") is None:
            t.lr_scaling = "none"
        missing = [k for k in ("optimizer", "lr", "weight_decay", "epochs", "batch_size", "scheduler")
                   if t.get(k) is None]
        if missing:
            name = c.method.get("name")
            raise ConfigError(f"trainer.{missing[0]} is null (= the method's recipe) but method {name!r} has no "
                              f"recipe.{missing[0]}; set trainer.{missing[0]}=... or add it to the recipe in "
                              f"conf/method/{name}.yaml")
        if float(t.drop_path) > 0:  # timm builds stochastic depth into the model
            if c.model.get("kwargs") is None:
                c.model.kwargs = {}
            c.model.kwargs.drop_path_rate = float(t.drop_path)
        for key in ("space", "bounds"):  # what the protocol searches, not what this run computes
            if key in c.method:
                del c.method[key]
    return c


def epochs_info(cfg: DictConfig) -> dict:
    """``epochs_reference`` (the recipe's, i.e. its reference implementation's) and ``epochs_used``."""
    r = recipe_of(cfg)
    return {"epochs_reference": r.get("epochs"), "epochs_used": int(cfg.trainer.epochs)}
