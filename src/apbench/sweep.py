"""What ``apbench run -m OVERRIDES`` would launch, and roughly how long it takes (``apbench plan``).

The jobs come from Hydra itself: the master config is composed in multirun mode, the sweeper's
``hydra.sweeper.params`` and the command-line overrides are split by ``BasicSweeper.split_arguments``
and every job is composed with ``load_sweep_config`` -- the calls ``apbench run -m`` makes, so the
count (and any composition error) is the one the real launch would meet. Nothing is trained.

The time estimate (:func:`estimate`) times cells on this machine with :mod:`apbench.cell_costs`. Each
run's figure is epochs x steps x step time + evaluated images x forward + cached images x build + the
efficiency measures (full-model steps). Data loading and the test split of datasets whose size is
unknown are not counted.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf, open_dict

from . import protocol as proto
from . import recipes
from .cell_costs import CellCost, cell_costs, rate_key

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
    select_runs: int = 0              # every select-stage run: drawn + reserve + retest
    reserve: int = 0                  # R: the edge rule's runs (else the sampler's next points)
    retest: int = 0                   # k x retest seeds
    rule: str = ""                    # the shared draw rule that gave them ("grid", "halton(seed=0)")
    space_size: int = 1
    run_cfgs: list = field(default_factory=list)  # each select run's resolved config (for per-point costs)
    composed: DictConfig | None = None            # the job's config as composed (cfg is recipe-resolved)
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


def manifest_test_size(name) -> int:
    """The test images the data manifest declares for a dataset config (0: unknown, not counted)."""
    from .data.manifest import MANIFEST
    entry = MANIFEST.get(name)
    return int((entry.sizes.get("test") or 0) if entry else 0)


def _describe(cfg: DictConfig, train_images: int | None = None) -> Job:
    p = proto.resolve(cfg)
    job = Job(0, [], recipes.resolve(cfg), protocol=p["name"], composed=cfg)  # cfg: the recipe's epochs and batch
    n_train, n_val = dataset_sizes(cfg.dataset, train_images, cfg.paths.data_root)
    both = None if n_train is None else n_train + n_val
    n_test = int(cfg.dataset.get("test_size") or manifest_test_size(cfg.dataset.get("name")))
    if p["space"] is None:
        trainval = bool(cfg.dataset.get("trainval"))
        job.train_images = [both if trainval else n_train]
        job.eval_images = [(0 if trainval else n_val or 0) + (n_test if cfg.protocol.get("stage") == "final" else 0)]
        return job
    points, job.rule = proto.draw(p["space"], p["budget"], p["sampler_seed"])
    job.space_size = proto.space_size(p["space"])
    job.run_cfgs = [recipes.resolve(proto.stage_config(cfg, p["name"], "select", pt, p["select_seed"], trainval=False))
                    for pt in points]
    job.grid_size, job.reserve, job.retest = proto.select_runs(p)
    job.select_runs = job.grid_size + job.reserve + job.retest
    job.runs = job.select_runs + len(p["seeds"])
    epochs = int(job.cfg.trainer.epochs)
    job.train_images = [n_train] * job.select_runs + [both if p["final_trainval"] else n_train] * len(p["seeds"])
    job.eval_images = [n_val or 0] * job.select_runs + [(0 if p["final_trainval"] else n_val or 0) + n_test] * len(p["seeds"])
    job.eval_passes = [epochs] * job.select_runs + [1] * len(p["seeds"])  # select runs: val after every epoch
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
        # Each drawn point is costed on its own (AP's layer points differ several-fold); the reserve,
        # retest and final runs' points are not known before the search: they cost the mean over them.
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
            if i < min(job.grid_size, len(select)) and job.run_cfgs:
                total += seconds(select[i], i, n, e)
            else:
                total += sum(seconds(c, i, n, e) for c in select) / len(select)
        job.seconds = total
    if step_time is not None:
        notes.append(f"step time {step_time:.4f} s/step, given with --step-time (training steps only)")
    elif measure == "first" and len(costs) == 1 and len({rate_key(c) for j in jobs for c in (j.run_cfgs or [j.cfg])}) > 1:
        notes.append("every cell assumed as fast as the first (methods and layers differ: --measure each)")
    return notes
