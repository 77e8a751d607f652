"""``apbench plan [OVERRIDES...]``: what a ``-m`` sweep would launch, and roughly how long it takes.

The jobs come from Hydra itself: the master config is composed in multirun mode, the sweeper's
``hydra.sweeper.params`` and the command-line overrides are split by ``BasicSweeper.split_arguments``
and every job is composed with ``load_sweep_config`` -- the calls ``apbench run -m`` makes, so the
count (and any composition error) is the one the real launch would meet. Nothing is trained.

The time estimate times one cell on this machine (random weights, synthetic batch; nothing is
downloaded): a few training steps, an evaluation forward and, where the run would use a prefix cache
(same checks as the trainer), the suffix-only step plus the one-off cache build per image. Each run's
figure is epochs x steps x step time + evaluated images x forward + cached images x build + the
efficiency measures (full-model steps). Data loading and the test split of datasets whose size is
unknown are not counted.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf, open_dict

from . import protocol as proto
from . import recipes

# Train / val images of datasets whose config does not state them (from their published splits,
# as the dataset configs' header comments give them); only used for time estimates.
KNOWN_SIZES = {
    "fgvc_cub": (5394, 600), "fgvc_nabirds": (21536, 2393), "fgvc_flowers": (1020, 1020),
    "fgvc_dogs": (10800, 1200), "fgvc_cars": (7329, 815),
    "cifar10": (45000, 5000), "cifar100": (45000, 5000), "svhn": (65932, 7325),
    "gtsrb": (23976, 2664), "food101": (50500, 20200),
}
FORMAT_SIZES = {"vtab1k": (800, 200)}


@dataclass
class Job:
    num: int
    overrides: list[str]
    cfg: DictConfig
    protocol: str = "fixed"
    grid_size: int = 1                # select runs drawn (N, or the whole space when it is smaller)
    runs: int = 1
    select_runs: int = 0
    rule: str = ""                    # the shared draw rule that gave them ("grid", "halton(seed=0)")
    space_size: int = 1
    run_cfgs: list = field(default_factory=list)  # each select run's resolved config (for per-point costs)
    train_images: list[int | None] = field(default_factory=list)  # per run
    eval_images: list[int] = field(default_factory=list)          # per run: val (held out) + test (final runs)
    eval_passes: list[int] = field(default_factory=list)          # per run: select runs score val every epoch
    seconds: float | None = None


def dataset_sizes(d: DictConfig, unknown: int | None = None,
                  data_root: str | None = None) -> tuple[int | None, int | None]:
    """(train, val) images: from the config, the tables above, a user's image folder (its files are
    listed, not read), or ``unknown`` (train only) when none knows."""
    if d.get("train_size") is not None:
        return int(d.train_size), int(d.get("val_size") or 0)
    if d.get("name") in KNOWN_SIZES:
        return KNOWN_SIZES[d.name]
    if d.get("format") == "image_folder":
        from .data import DataError, LOADERS, loader_kwargs
        _, kwargs = loader_kwargs(OmegaConf.to_container(d, resolve=True))
        try:
            splits = LOADERS["image_folder"](d.get("root") or data_root, {"train": None, "eval": None}, **kwargs)
            sizes = splits.info["sizes"]
            return sizes["train"], sizes["val"]  # _describe adds val to train for trainval runs
        except DataError as e:  # not there (yet): unknown, as for any other dataset plan cannot size
            print(f"apbench plan: cannot size {d.get('name')}: {e}", file=sys.stderr)
    return FORMAT_SIZES.get(d.get("format"), (unknown, 0 if unknown else None))


def _describe(cfg: DictConfig, train_images: int | None = None) -> Job:
    p = proto.resolve(cfg)
    job = Job(0, [], recipes.resolve(cfg), protocol=p["name"])  # the recipe's epochs and batch size
    n_train, n_val = dataset_sizes(cfg.dataset, train_images, cfg.paths.data_root)
    both = None if n_train is None else n_train + n_val
    n_test = int(cfg.dataset.get("test_size") or 0)  # unknown test sizes are not counted
    if p["space"] is None:
        trainval = bool(cfg.dataset.get("trainval"))
        job.train_images = [both if trainval else n_train]
        job.eval_images = [(0 if trainval else n_val or 0) + (n_test if cfg.protocol.get("stage") == "final" else 0)]
        return job
    points, job.rule = proto.draw(p["space"], p["budget"], p["sampler_seed"])
    job.space_size = proto.space_size(p["space"])
    job.run_cfgs = [recipes.resolve(proto.stage_config(cfg, p["name"], "select", pt, p["select_seed"], trainval=False))
                    for pt in points]
    job.grid_size = job.select_runs = len(points)
    job.runs = job.grid_size + len(p["seeds"])
    epochs = int(job.cfg.trainer.epochs)
    job.train_images = [n_train] * job.grid_size + [both if p["final_trainval"] else n_train] * len(p["seeds"])
    job.eval_images = [n_val or 0] * job.grid_size + [(0 if p["final_trainval"] else n_val or 0) + n_test] * len(p["seeds"])
    job.eval_passes = [epochs] * job.grid_size + [1] * len(p["seeds"])  # select runs: val after every epoch
    return job


def sweep_jobs(overrides: list[str], config_dir: str, train_images: int | None = None) -> list[Job]:
    """Every job of ``apbench run -m OVERRIDES``, composed as Hydra's basic sweeper composes it."""
    from hydra import initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from hydra.types import RunMode

    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        gh = GlobalHydra.instance()
        try:
            master = gh.hydra.compose_config("config", overrides, run_mode=RunMode.MULTIRUN, from_shell=True)
        except HydraException as e:
            raise SystemExit(f"apbench plan: the sweep does not compose: {e}") from None
        sweeper = master.hydra.sweeper
        if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
            raise SystemExit(f"apbench plan: only Hydra's basic sweeper is supported, not {sweeper._target_}")
        params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
        parsed = OverridesParser.create(config_loader=gh.config_loader()).parse_overrides(
            params + list(master.hydra.overrides.task))
        batches = BasicSweeper.split_arguments(parsed, sweeper.get("max_batch_size"))
        jobs = []
        for num, ov in enumerate(o for batch in batches for o in batch):
            try:
                cfg = gh.config_loader().load_sweep_config(master, list(ov))
            except HydraException as e:  # Hydra would refuse the whole sweep for this job too
                raise SystemExit(f"apbench plan: job #{num} ({' '.join(ov)}) does not compose: {e}") from None
            with open_dict(cfg):
                del cfg["hydra"]  # the task function never sees it
            job = _describe(cfg, train_images)
            job.num, job.overrides = num, list(ov)
            jobs.append(job)
        return jobs


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


def estimate(jobs: list[Job], measure: str = "first", device: str = "auto", steps: int = 3,
             step_time: float | None = None) -> list[str]:
    """Fill ``job.seconds`` (None where a dataset size is unknown); return notes on what was timed."""
    costs: dict[str, CellCost] = {}
    notes = []
    def cost_of(cfg):
        key = rate_key(cfg)
        if step_time is not None:
            costs.setdefault(key, CellCost(step_time))
        elif key not in costs and (measure == "each" or not costs):
            c = costs[key] = cell_costs(cfg, device, iters=steps)
            extra = "" if c.cache_point is None else f", cache build {c.prefix_s_per_image * 1e3:.2f} ms/image"
            notes.append(f"step time {c.step_s:.4f} s/step, eval {c.eval_s_per_image * 1e3:.2f} ms/image{extra}, "
                         f"efficiency measures {c.measure_s:.1f} s/run: {c.what}")
        return costs.get(key, next(iter(costs.values())) if costs else None)

    for job in jobs:
        # Each select point is costed on its own (AP's layer points differ several-fold); the final
        # runs' point is not known before the search, so they cost the mean over the select points.
        select = [cost_of(c) for c in job.run_cfgs] or [cost_of(job.cfg)]
        if any(c is None for c in select) or any(n is None for n in job.train_images):
            continue
        t = job.cfg.trainer
        shared = bool(t.get("prefix_cache_dir"))  # only the first select and the first final run build

        passes = job.eval_passes or [1] * len(job.train_images)

        def seconds(cost, i, n, e):
            return cost.run_seconds(int(t.epochs), n, int(t.batch_size), e, build=not shared or i in (0, job.select_runs),
                                    eval_passes=passes[i])
        total = 0.0
        for i, (n, e) in enumerate(zip(job.train_images, job.eval_images)):
            if i < job.select_runs:
                total += seconds(select[i], i, n, e)
            else:
                total += sum(seconds(c, i, n, e) for c in select) / len(select)
        job.seconds = total
    if step_time is not None:
        notes.append(f"step time {step_time:.4f} s/step, given with --step-time (training steps only)")
    elif measure == "first" and len(costs) == 1 and len({rate_key(c) for j in jobs for c in (j.run_cfgs or [j.cfg])}) > 1:
        notes.append("every cell assumed as fast as the first (methods and layers differ: --measure each)")
    return notes


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def main(argv: list[str]) -> int:
    from .config_dir import CONF_DIR

    ap = argparse.ArgumentParser(prog="apbench plan", description=__doc__.split("\n\n")[0],
                                 epilog="OVERRIDES are those of `apbench run -m`, e.g. experiment=layer_sweep_cnn")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--dry-run", action="store_true", help="list every job with its overrides and runs")
    ap.add_argument("--measure", choices=("first", "each", "none"), default="first",
                    help="time the first cell (default), every distinct model/method/batch, or nothing")
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per measurement")
    ap.add_argument("--step-time", type=float, default=None, help="seconds per step, instead of measuring")
    ap.add_argument("--device", default="auto", help="auto | cuda | cpu (default: the config's device)")
    ap.add_argument("--train-images", type=int, default=None,
                    help="train images per run for datasets whose size plan does not know")
    a = ap.parse_args([x for x in argv if x not in ("-m", "--multirun")])
    jobs = sweep_jobs(a.overrides, str(CONF_DIR), a.train_images)
    notes = [] if a.measure == "none" and a.step_time is None else \
        estimate(jobs, a.measure, a.device, a.steps, a.step_time)

    runs = sum(j.runs for j in jobs)
    select = sum(j.select_runs for j in jobs)
    print(f"apbench plan: {len(jobs)} jobs, {runs} runs ({select} select + {runs - select} final)")
    by_protocol: dict[str, set[int]] = {}
    for j in jobs:
        by_protocol.setdefault(j.protocol, set()).add(j.grid_size)
    for name, sizes in sorted(by_protocol.items()):
        mine = [j for j in jobs if j.protocol == name]
        if sizes == {1} and name == "fixed":
            print(f"  protocol fixed: {len(mine)} jobs, one run each")
            continue
        rules = ", ".join(f"{r} x {sum(1 for j in mine if j.rule == r)}" for r in sorted({j.rule for j in mine}))
        if len(sizes) == 1:
            print(f"  protocol {name}: {len(mine)} jobs, {sizes.pop()} select runs for every job (equal budget; {rules})")
        else:
            small = sorted({f"{j.cfg.method.name} ({j.space_size} points)" for j in mine if j.grid_size < max(sizes)})
            print(f"  protocol {name}: {len(mine)} jobs, UNEQUAL select runs {sorted(sizes)}: budgets differ "
                  f"(spaces smaller than the budget: {', '.join(small)}; {rules})")
    for note in notes:
        print(f"  {note}")
    if a.dry_run:
        for j in jobs:
            t = "-" if j.seconds is None else _hours(j.seconds)
            print(f"  #{j.num:<4} runs={j.runs:<3} est={t:<9} {' '.join(j.overrides)}")
    known = [j.seconds for j in jobs if j.seconds is not None]
    if known:
        total = sum(known)
        print(f"  estimated training time: {_hours(total)} on one device of this kind, all runs in sequence "
              f"(an estimate: training steps, evaluation, prefix-cache builds and efficiency measures, not data "
              f"loading; divide by the devices used in parallel)")
        print(f"  longest job: {_hours(max(known))} (set the launcher's timeout_min above it, or rely on requeue)")
    unknown = len(jobs) - len(known)
    if unknown and notes:
        print(f"  not estimated: {unknown} jobs whose dataset size plan does not know (--train-images N)")
    return 0
