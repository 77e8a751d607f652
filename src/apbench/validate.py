"""Check a resolved config before any work starts: clear errors naming valid choices or ranges."""
from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .engine.loop import TrainSettings
from .engine.optim import LR_SCALINGS, OPTIMIZERS, SCHEDULERS
from .engine.prefix_cache import normalize_mode
from .errors import ConfigError
from .seed_check import SEED_MAX, check_seed  # noqa: F401  (SEED_MAX: the range, named where it is checked)
from .methods.heads import HEADS  # noqa: F401  (the head axis: linear, source, random, flm, ilm)


METHOD_RESERVED = {"name", "head", "lr_scale", "recipe", "space", "bounds"}  # recipe, space, bounds: apbench.recipes
TRAINER_EXTRA = {"measure_efficiency", "throughput_warmup", "throughput_iters",
                 "prefix_cache", "prefix_cache_max_gb", "prefix_cache_dir", "channels_last", "compile",
                 "drop_path"}  # drop_path: built into the model (apbench.recipes.resolve)


def _choice(value, choices, key):
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}")


def _positive(value, key, integer=False):
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or not value > 0 or value == float("inf"):  # `not >` catches NaN
        kind = "a positive integer" if integer else "a positive number"
        raise ConfigError(f"{key}={value!r} must be {kind}")




def _short(text, n: int = 80) -> str:
    text = str(text)
    return text if len(text) <= n else f"{text[:n - 20]}...{text[-17:]}"


def _check_path_names(path, key: str) -> None:
    """Refuse a folder whose names the file system cannot hold (else OSError 36 mid-launch)."""
    p = Path(str(path)).expanduser().absolute()
    probe = p
    while probe != probe.parent and not os.path.isdir(probe):  # isdir: False (never OSError) on a long name
        probe = probe.parent
    try:
        name_max, path_max = os.pathconf(probe, "PC_NAME_MAX"), os.pathconf(probe, "PC_PATH_MAX")
    except (OSError, ValueError):  # not every file system answers: the POSIX minimums of Linux
        name_max, path_max = 255, 4096
    for part in p.parts:
        if len(os.fsencode(part)) > name_max:
            raise ConfigError(f"{key}={_short(path)}: the folder name {_short(part, 40)!r} is "
                              f"{len(os.fsencode(part))} bytes, over this file system's limit of {name_max}; "
                              f"give {key} shorter folder names")
    if len(os.fsencode(str(p))) + 64 > path_max:  # + a run id, record.json and a temporary suffix
        raise ConfigError(f"{key}={_short(path)} is {len(os.fsencode(str(p)))} bytes long; with the run folders "
                          f"under it that passes this file system's path limit of {path_max}; give {key} a shorter path")


def _check_keys(section: dict, valid: set[str], where: str):
    unknown = sorted(set(section) - valid)
    if unknown:
        import difflib
        hints = [f"{u!r} (did you mean {difflib.get_close_matches(u, valid, 1)[0]!r}?)"
                 if difflib.get_close_matches(u, valid, 1) else repr(u) for u in unknown]
        raise ConfigError(f"unknown key(s) in {where}: {', '.join(hints)}; valid keys: {', '.join(sorted(valid))}")


def trainer_settings(cfg: DictConfig) -> TrainSettings:
    from .recipes import resolve
    cfg = resolve(cfg)  # null trainer keys = the method's recipe (idempotent)
    t: dict[str, Any] = OmegaConf.to_container(cfg.trainer, resolve=True)
    fields = {f.name for f in dataclasses.fields(TrainSettings)}
    _check_keys(t, fields | TRAINER_EXTRA, "trainer")
    _choice(t.get("optimizer"), OPTIMIZERS, "trainer.optimizer")
    _choice(t.get("scheduler"), SCHEDULERS, "trainer.scheduler")
    _choice(t.get("lr_scaling", "none"), LR_SCALINGS, "trainer.lr_scaling")
    if t.get("head_lr") is not None:
        _positive(t["head_lr"], "trainer.head_lr")
    _positive(t.get("gamma", 0.1), "trainer.gamma")
    ms = t.get("milestones") or []
    if not isinstance(ms, list) or not all(isinstance(m, (int, float)) and 0 < m < 1 for m in ms):
        raise ConfigError(f"trainer.milestones={ms!r} must be a list of fractions of the schedule in (0, 1), "
                          "e.g. [0.5, 0.72]")
    for key in ("label_smoothing", "drop_path"):
        v = t.get(key) or 0.0
        if not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise ConfigError(f"trainer.{key}={v!r} must be a number in [0, 1)")
    _choice(t.get("amp"), ("none", "bf16", "fp16"), "trainer.amp")
    try:
        normalize_mode(t.get("prefix_cache", "auto"))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    _positive(t.get("prefix_cache_max_gb", 4.0), "trainer.prefix_cache_max_gb")
    if t.get("prefix_cache_dir") is not None:
        from .engine.prefix_store import PrefixStore
        try:
            PrefixStore(str(t["prefix_cache_dir"])).check_writable()
        except OSError as e:
            raise ConfigError(f"trainer.prefix_cache_dir={t['prefix_cache_dir']!r} is not a writable folder "
                              f"({e.strerror or e}); give a folder you can write, or null to keep the "
                              "prefix cache in memory only") from None
    for key in ("channels_last", "compile"):
        _choice(t.get(key, False), (True, False), f"trainer.{key}")
    _positive(t.get("epochs"), "trainer.epochs", integer=True)
    _positive(t.get("batch_size"), "trainer.batch_size", integer=True)
    _positive(t.get("lr"), "trainer.lr")
    momentum = t.get("momentum", 0.9)  # read by sgd only: otherwise a typo would pass until someone picks sgd
    if momentum is None and t.get("optimizer") != "sgd":
        momentum = 0.9  # the recipe leaves it unset because its optimizer has none; checked as the default
    if not isinstance(momentum, (int, float)) or isinstance(momentum, bool) or not 0 <= momentum < float("inf"):
        raise ConfigError(f"trainer.momentum={momentum!r} must be a number >= 0 (e.g. 0.9; used by optimizer=sgd)")
    _positive(t.get("eval_batch_size", 1), "trainer.eval_batch_size", integer=True)
    if t.get("grad_clip") is not None:  # a string here would only fail mid-training
        _positive(t["grad_clip"], "trainer.grad_clip")
    for key, kinds in (("warmup_epochs", (int, float)), ("num_workers", int)):
        v = t.get(key, 0)
        if not isinstance(v, kinds) or isinstance(v, bool) or v < 0:
            raise ConfigError(f"trainer.{key}={v!r} must be {'an integer' if kinds is int else 'a number'} >= 0")
    if not isinstance(t.get("weight_decay"), (int, float)) or t["weight_decay"] < 0:
        raise ConfigError(f"trainer.weight_decay={t.get('weight_decay')!r} must be a number >= 0")
    method_scale = OmegaConf.to_container(cfg.method, resolve=True).get("lr_scale") or {}
    settings = TrainSettings(**{k: v for k, v in t.items() if k in fields})
    settings.lr_scale = dict(method_scale)
    return settings


PROBE_SIZES = (16, 32, 64, 96, 112, 128, 160, 192, 224, 256, 288, 320, 384, 448, 512)


def _forward_error(model, input_size) -> str | None:
    """The error of one forward of the meta-device ``model`` at ``input_size`` (no memory, no compute)."""
    import torch
    try:
        with torch.no_grad():
            model.eval()(torch.empty(2, *input_size, device="meta"))
    except Exception as e:  # noqa: BLE001  (kernel-size RuntimeErrors, timm's size AssertionErrors, ...)
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


# (architecture, input size) -> the meta forward's error: the same for every job of a sweep that
# shares the backbone, and a forward of a large model costs a second even on the meta device.
_SIZE_ERRORS: dict[tuple, str | None] = {}


def _size_error(model, input_size, arch: tuple) -> str | None:
    key = (arch, tuple(input_size))
    if key not in _SIZE_ERRORS:
        _SIZE_ERRORS[key] = _forward_error(model, input_size)
    return _SIZE_ERRORS[key]


def _check_input_size(model, input_size, name: str, kwargs: dict | None = None) -> None:
    """An image size the backbone cannot take (a kernel larger than the feature map, a ViT built for
    another size) would otherwise fail inside the layer probe or at the first training step."""
    arch = (name, repr(sorted((kwargs or {}).items())))
    model.eval()  # as the forward leaves it, whether or not it runs
    error = _size_error(model, input_size, arch)
    if error is None:
        return
    fits = [s for s in PROBE_SIZES if _size_error(model, (input_size[0], s, s), arch) is None]
    if not fits:  # no size works: the meta device cannot run this model, so this check says nothing
        return
    raise ConfigError(f"model.preprocessing.image_size={input_size[-1]} does not fit {name} ({error}); "
                      f"sizes it takes: {', '.join(map(str, fits[:4]))}{', ...' if len(fits) > 4 else ''}; set "
                      "model.preprocessing.image_size to one of them")


# (timm name, kwargs) -> the model built on the meta device. A sweep validates every job before the
# first trains, most of them with a backbone it has already built: a copy costs a fifth of a build.
_META_MODELS: dict[str, Any] = {}


def _meta_model(name: str, kwargs: dict):
    """A fresh meta-device ``timm.create_model(name, **kwargs)`` (a copy: the method adapts it in place)."""
    import copy
    import json

    import timm
    import torch
    key = json.dumps([name, kwargs], sort_keys=True, default=str)
    if key not in _META_MODELS:
        with torch.device("meta"):
            _META_MODELS[key] = timm.create_model(name, pretrained=False, **kwargs)
    return copy.deepcopy(_META_MODELS[key])


def validate(cfg: DictConfig) -> dict:
    """Validate ``cfg``; return the facts later stages need (meta model, points, settings)."""
    from .data import BUILD_KEYS, LOADERS
    from .env import resolve_device
    from .methods import METHODS, MethodError, apply, setup_head
    from .models.layers import LayerSpecError, family_of
    from .models.preprocessing import resolve_preprocessing

    _choice(cfg.get("device"), ("auto", "cuda", "cpu"), "device")
    try:
        resolve_device(cfg.device)
    except RuntimeError as e:
        raise ConfigError(str(e)) from None
    check_seed(cfg.get("seed"), "seed")
    _check_path_names(cfg.paths.results_dir, "paths.results_dir")
    settings = trainer_settings(cfg)  # resolves the recipe (idempotent: run() resolved it already)
    from .recipes import resolve
    cfg = resolve(cfg)
    stage = cfg.protocol.get("stage")
    if stage not in ("final", "select"):  # grid protocols set it per run (apbench.protocol)
        raise ConfigError(f"protocol.stage={stage!r}: one run is 'final' or 'select'; protocol "
                          f"{cfg.protocol.get('name')!r} runs through `apbench run` or apbench.protocol.run_protocol")

    m = OmegaConf.to_container(cfg.method, resolve=True)
    _choice(m.get("name"), sorted(METHODS), "method.name")
    info = METHODS[m["name"]]
    _check_keys(m, set(info.arguments()) | METHOD_RESERVED, f"method ({m['name']})")
    _choice(m.get("head", "linear"), HEADS, "method.head")

    d = OmegaConf.to_container(cfg.dataset, resolve=True)
    _choice(d.get("format"), sorted(LOADERS), "dataset.format")
    params = inspect.signature(LOADERS[d["format"]]).parameters
    valid = {p for p in params if p not in ("root", "transforms", "_")} | BUILD_KEYS
    _check_keys(d, valid, f"dataset ({d.get('name')})")
    _choice(d.get("cache") or "none", ("none", "memory", "disk"), "dataset.cache")
    _choice(d.get("augment", "none"), ("none", "crop_flip"), "dataset.augment")

    # Build the model on the meta device (no memory, no weights) to check layers and families.
    import timm
    mc = OmegaConf.to_container(cfg.model, resolve=True)
    if not timm.is_model(mc.get("name")):  # a registry lookup; list_models() sorts all ~1,200 names
        import difflib
        close = difflib.get_close_matches(str(mc.get("name")), timm.list_models(), 3)
        raise ConfigError(f"model.name={mc.get('name')!r} is not a timm model" + (f"; did you mean {close}?" if close else ""))
    _choice(mc.get("weights"), ("random", "hub", "bundled", "file"), "model.weights")
    if mc["weights"] == "file" and not mc.get("checkpoint"):
        raise ConfigError("model.weights=file needs model.checkpoint=PATH, a file saved with "
                          "torch.save(model.state_dict(), PATH); or choose model.weights=hub, bundled or random")
    size = (mc.get("preprocessing") or {}).get("image_size")
    if size is not None:
        _positive(size, "model.preprocessing.image_size", integer=True)
    try:
        model = _meta_model(mc["name"], mc.get("kwargs") or {})
        pre = resolve_preprocessing(model, mc.get("preprocessing"))
        _check_input_size(model, pre["input_size"], mc["name"], mc.get("kwargs"))
        head = setup_head(model, m.get("head", "linear"), int(d.get("num_classes") or 2), seed=cfg.seed)
        family_of(model)
        args = {k: v for k, v in m.items() if k not in METHOD_RESERVED}
        adapted = apply(model, m["name"], input_size=pre["input_size"], head_prefixes=head.prefixes, **args)
    except (LayerSpecError, MethodError, ValueError, TypeError) as e:
        raise ConfigError(str(e)) from None
    if not adapted.trainable():  # e.g. linear_probe with a frozen source head
        raise ConfigError(f"method {m['name']!r} with head={m.get('head', 'linear')!r} leaves nothing to train; "
                          "use head=linear or a method that inserts parameters")
    return {"settings": settings, "preprocessing": pre, "points": [p.key for p in adapted.points],
            "family": family_of(model)}
