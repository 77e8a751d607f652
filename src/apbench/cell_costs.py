"""What one cell costs on this machine: a training step, an evaluation forward and, where the run
would use a prefix cache (the trainer's own decision), the suffix-only step and the cache build per
image -- timed on a synthetic batch with random weights (a step costs the same with any weights, and
nothing is downloaded). ``apbench plan`` estimates sweeps from it; ``apbench measure`` repeats it back
to back for every cell."""
from __future__ import annotations

import math
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf


@dataclass
class CellCost:
    """What one cell costs on this machine, measured on a synthetic batch with random weights."""
    step_s: float                     # one training step (of the suffix, when a prefix cache applies)
    eval_s_per_image: float = 0.0     # one evaluation forward (suffix when cached)
    prefix_s_per_image: float = 0.0   # building the prefix cache, per image it covers
    cache_point: str | None = None    # where the cache would start, or None when the run has none
    measure_s: float = 0.0            # the run's efficiency measures (full-model steps, fixed per run)
    full_step_s: float = 0.0          # one training step of the full model (= step_s without a cache)
    full_eval_s_per_image: float = 0.0  # one evaluation forward of the full model
    what: str = ""

    def run_seconds(self, epochs: int, train_images: int, batch_size: int, eval_images: int,
                    build: bool = True, eval_passes: int = 1) -> float:
        """``build=False``: the activations come from a shared store (``trainer.prefix_cache_dir``).
        ``eval_passes``: how often the held-out images are scored (select runs: every epoch); the
        cache is built once per image."""
        cached = train_images + eval_images if self.cache_point is not None and build else 0
        return (epochs * math.ceil(train_images / batch_size) * self.step_s
                + eval_images * eval_passes * self.eval_s_per_image + cached * self.prefix_s_per_image + self.measure_s)


def build_cell(cfg: DictConfig, device):
    """``cfg``'s cell ready to train, with random weights (costs do not depend on them, and nothing is
    downloaded): ``(model, adapted, head, preprocessing)``."""
    from .cell import adapt
    from .models.factory import build_model

    built = build_model(OmegaConf.to_container(cfg.model, resolve=True) | {"weights": "random"}, device)
    adapted, head = adapt(built.model, OmegaConf.to_container(cfg.method, resolve=True),
                          built.preprocessing["input_size"], int(cfg.dataset.get("num_classes") or 10), seed=0)
    return built.model, adapted, head, built.preprocessing


def cell_costs(cfg: DictConfig, device: str = "auto", warmup: int = 2, iters: int = 3, cell=None) -> CellCost:
    """Time ``cfg``'s cell on this machine: a training step, an evaluation forward and, where the
    run would use a prefix cache, the suffix-only step and the cache build per image.

    Random weights (a step costs the same with any weights, and nothing is downloaded), the cell's
    head, method, image size, batch size, optimizer and precision, on a synthetic batch.
    ``cell``: a ``build_cell`` result on that device, to time instead of building one.
    """
    import time

    import torch

    from .data.transforms import is_deterministic
    from .engine import prefix_cache
    from .engine.speed import inference_throughput, train_step_throughput
    from .env import resolve_device
    from .models.suffix import as_suffix, run_prefix

    dev = resolve_device(device if device != "auto" else cfg.get("device", "auto"))
    model, adapted, head, pre = cell or build_cell(cfg, dev)
    m = OmegaConf.to_container(cfg.method, resolve=True)
    t = cfg.trainer
    precision = t.amp if t.amp != "none" else "fp32"
    bs, eval_bs = int(t.batch_size), int(t.get("eval_batch_size", t.batch_size))
    images = torch.randn(eval_bs, *pre["input_size"], device=dev)
    point, _, _ = prefix_cache.decide(  # the trainer's own decision (cell.py passes the same)
        adapted, deterministic=is_deterministic(cfg.dataset.get("augment", "none")),
        mode=cfg.trainer.get("prefix_cache", "auto"), input_size=pre["input_size"])
    common = dict(device=dev, precision=precision, warmup=warmup, iters=iters)
    cost = CellCost(0.0, cache_point=None if point is None else point.key)
    # The full model's figures: the step of an uncached run, and what every run's efficiency measures
    # (trainer.throughput_warmup + _iters training and inference batches, plus ~2 steps for saved
    # memory and FLOPs) cost; those always run on the full model, cache or not.
    full_step = train_step_throughput(model, None, bs, pre["input_size"][1:], optimizer_name=t.optimizer,
                                      inputs=images[:bs] if eval_bs >= bs else None, **common)["step_time_s"]
    full_eval = inference_throughput(model, eval_bs, pre["input_size"][1:], inputs=images,
                                     **common)["step_time_s"] / eval_bs
    if t.get("measure_efficiency", True):
        n = int(t.get("throughput_warmup", 3)) + int(t.get("throughput_iters", 10))
        cost.measure_s = (n + 2) * full_step + n * bs * full_eval
    cost.full_step_s, cost.full_eval_s_per_image = full_step, full_eval
    if point is None:
        cost.step_s, cost.eval_s_per_image = full_step, full_eval
    else:
        with torch.no_grad(), torch.autocast(dev.type, enabled=False):
            adapted.eval()
            run_prefix(model, images, point)  # warm-up
            start = time.perf_counter()
            acts = run_prefix(model, images, point)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            cost.prefix_s_per_image = (time.perf_counter() - start) / eval_bs
        acts = acts.repeat((math.ceil(bs / eval_bs),) + (1,) * (acts.dim() - 1)) if bs > eval_bs else acts
        with as_suffix(model, point):
            cost.step_s = train_step_throughput(model, None, bs, pre["input_size"][1:], optimizer_name=t.optimizer,
                                                inputs=acts[:bs].clone(), **common)["step_time_s"]
            cost.eval_s_per_image = inference_throughput(model, eval_bs, pre["input_size"][1:],
                                                         inputs=acts[:eval_bs], **common)["step_time_s"] / eval_bs
    where = "full model" if point is None else f"suffix from point {point.key} (prefix cache)"
    cost.what = (f"{m['name']} on {cfg.model.get('id', cfg.model.name)}, {pre['input_size'][-1]} px, batch {bs}, "
                 f"{precision}, {dev.type}, {where}; {iters} timed steps after {warmup} warm-up")
    del model, adapted
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return cost


def rate_key(cfg: DictConfig) -> str:
    """Cells that share this key train at the same speed (dataset and lr do not matter)."""
    keep = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("model", "method")}
    t = cfg.trainer
    return repr((keep, t.batch_size, t.amp, t.optimizer, t.get("prefix_cache"), cfg.dataset.get("augment")))
