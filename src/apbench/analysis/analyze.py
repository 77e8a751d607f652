"""``apbench analyze [HYDRA OVERRIDES]``: the analyses of one frozen backbone on one dataset split.

Composes ``conf/analyze.yaml`` (the run config's groups plus ``analysis``), e.g.

    apbench analyze model=fmnist_vit dataset=digits
    apbench analyze analysis.prompt_run=runs/<run_id>          # + CKA prompted vs unprompted

and writes, under ``analysis.out_dir/<analysis_id>/``: ``analysis.json`` (the record), ``points.csv``,
``cka.csv``, ``cka_biased.csv``, ``attention_distance.csv`` (ViTs), ``cka.png`` and ``curves.png``.
A finished analysis with the same id is skipped unless ``force=true``. The test split is never read.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
import time
import traceback
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError, InputError

ANALYSIS_NAME = "analysis.json"
SPLITS = ("train", "val")
NOT_IDENTITY = ("out_dir", "batch_size", "max_gb")  # where and how fast, not what is computed


def analysis_id_of(model: dict, dataset: dict, analysis: dict, seed: int, prompt_run_id: str | None) -> str:
    a = {k: v for k, v in analysis.items() if k not in NOT_IDENTITY and k != "prompt_run"}
    key = {"model": model, "dataset": dataset, "analysis": a, "seed": seed, "prompt_run": prompt_run_id}
    return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _check(a: dict) -> None:
    valid = {"name", "split", "points", "images", "cka_pool", "probe", "probe_C", "erf_images", "attention",
             "prompt_run", "max_gb", "batch_size", "out_dir"}
    unknown = sorted(set(a) - valid)
    if unknown:
        raise ConfigError(f"unknown key(s) in analysis: {unknown}; valid keys: {', '.join(sorted(valid))}")
    if a["split"] not in SPLITS:
        raise ConfigError(f"analysis.split={a['split']!r} is not valid; choose one of: {', '.join(SPLITS)} "
                          "(the test split is read only by final runs)")
    for key, least in (("images", 4), ("erf_images", 0), ("batch_size", 1)):  # debiased CKA needs 4 images
        v = a[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise ConfigError(f"analysis.{key}={v!r} must be an integer >= {least}")
    for key in ("cka_pool", "probe", "attention"):
        if not isinstance(a[key], bool):
            raise ConfigError(f"analysis.{key}={a[key]!r} must be true or false")


def _prompt_run(path: str | None, model_cfg: dict, pre: dict):
    """(record, prompt state) of an AP run folder, checked against the analysed model."""
    if path is None:
        return None, None
    from ..results.record_check import problems
    from ..results.store import BadRecord, read_record
    from ..engine.trained_prompt import PROMPT_NAME
    folder = Path(path)
    try:
        rec = read_record(folder / "record.json")
        if why := problems(rec):
            raise BadRecord(f"{folder / 'record.json'}: invalid record: {'; '.join(why)}")
    except BadRecord as e:
        raise InputError(f"analysis.prompt_run={path}: {e}; give the folder of a finished AP run "
                         "(paths.results_dir/<run_id>)") from None
    if rec.get("method") != "ap" or rec.get("status") != "ok":
        raise InputError(f"analysis.prompt_run={path} is a {rec.get('status')} {rec.get('method')!r} run; "
                         "give the folder of a finished method=ap run")
    if not (folder / PROMPT_NAME).is_file():
        raise InputError(f"analysis.prompt_run={path} holds no {PROMPT_NAME} (runs finished before prompts were "
                         "saved have none); rerun that cell with force=true to save its prompt")
    run_model = (rec.get("config") or {}).get("model")
    if run_model != model_cfg:
        raise InputError(f"analysis.prompt_run={path} was trained on model {rec.get('model')!r} with another "
                         f"model config; analyse the same model: model={rec.get('model')} and the run's "
                         "model.* overrides (e.g. model.preprocessing.image_size)")
    prompt = folder / PROMPT_NAME
    not_one = f"analysis.prompt_run={path}: {prompt} is not a saved prompt"
    redo = "it is written by a finished method=ap run: rerun that cell with force=true to save it again"
    try:
        state = torch.load(prompt, map_location="cpu", weights_only=True)  # data only: no pickled code runs
    except Exception as e:  # noqa: BLE001  (pickle, zip and unsafe-global errors alike: not a prompt)
        raise InputError(f"{not_one} ({_load_failure(e)}); {redo}") from None
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise InputError(f"{not_one} (a prompt is a dict of named tensors; this holds {type(state).__name__}); {redo}")
    return rec, state


def _load_failure(e: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, without torch's advice to retry with
    ``weights_only=False`` (that would run the file's code)."""
    lines = [ln.strip() for ln in str(e).splitlines()]
    detail = [ln for ln in lines[1:] if ln and "weights_only" not in ln and not ln.startswith("Check the documentation")]
    detail = [ln.removeprefix("WeightsUnpickler error:").strip() for ln in detail] or lines[:1]
    text = "; ".join(d for d in detail if d)[:200]
    glob = re.search(r"unsupported GLOBAL (\S+)", text)
    if glob:
        return f"it holds {glob.group(1)}, which would run code if loaded: refused, not loaded"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _check_prompt_fits(model, pre: dict, rec: dict, state: dict, path: str) -> None:
    """The saved prompt's tensors are those AP with the run's method config puts on ``model``."""
    from .. import methods
    try:
        m = rec["config"]["method"]
        with torch.random.fork_rng(devices=[]):  # a prompt's init must not move the analysis' random draws
            adapted = methods.apply(model, "ap", input_size=pre["input_size"], layers=m["layers"],
                                    shape=m.get("shape", "full"), init=m.get("init", "zeros"))
        want = {k: tuple(v.shape) for k, v in model.apbench_prompts.state_dict().items()}
        adapted.remove()
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise InputError(f"analysis.prompt_run={path}: its record's method config cannot place the prompt on "
                         f"this model ({type(e).__name__}: {e}); give the folder of a finished method=ap run") from None
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != want:
        raise InputError(f"analysis.prompt_run={path}: its prompt.pt holds {got}, but AP as that run was configured "
                         f"gives {want} on this model; the file is not this run's prompt (rerun the cell with "
                         "force=true to save it again)")


def _write_csvs(rec: dict, out: Path) -> list[Path]:
    keys = rec["cka"]["points"]
    files = []
    for name, m in (("cka.csv", rec["cka"]["debiased"]), ("cka_biased.csv", rec["cka"]["biased"])):
        with open(out / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["point", *keys])
            for k, row in zip(keys, m):
                w.writerow([k, *[f"{v:.6f}" for v in row]])
        files.append(out / name)
    with open(out / "points.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["point", "features", "probe_val_top1", "erf_rms_px", "erf_rms_rel", "cka_vs_last",
                    "cka_prompted_vs_unprompted"])
        pr = (rec.get("cka_prompted") or {}).get("values", {})
        for i, k in enumerate(keys):
            e = (rec.get("erf") or {}).get(k, {})
            w.writerow([k, rec["cka"]["features"][k], (rec.get("probe") or {}).get("val_top1", {}).get(k),
                        e.get("rms_px"), e.get("rms_rel"), rec["cka"]["debiased"][i][-1], pr.get(k)])
    files.append(out / "points.csv")
    if rec.get("attention_distance"):
        with open(out / "attention_distance.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["block", "head", "mean_attention_distance_px"])
            for b, heads in enumerate(rec["attention_distance"]["per_head_px"], start=1):
                for h, v in enumerate(heads):
                    w.writerow([b, h, f"{v:.4f}"])
        files.append(out / "attention_distance.csv")
    return files


def analyze(cfg: DictConfig) -> dict:
    """Run the analyses of ``cfg``; returns the record (also written as ``analysis.json``)."""
    from .. import data, methods
    from ..engine.seeding import seed_everything
    from ..env import environment, resolve_device
    from ..models.factory import build_model
    from ..models.layers import LayerSpecError, family_of, probe_shapes, resolve_layers
    from ..models.weights import WeightsError
    from ..results.store import finished_ok, read_record, write_record
    from . import cka as C
    from .attention_distance import attention_weights, grid_of, mean_attention_distance, patch_distances
    from .erf import erf
    from .features import collect, first, images_of
    from .plots import cka_heatmap, curves
    from .probes import SETTINGS, probe_top1

    a = OmegaConf.to_container(cfg.analysis, resolve=True)
    _check(a)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    data_cfg = OmegaConf.to_container(cfg.dataset, resolve=True)
    try:
        device = resolve_device(cfg.device)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(str(e)) from None
    seed_everything(cfg.seed)
    try:
        built = build_model(model_cfg, device)
        model, pre = built.model, built.preprocessing
        for p in model.parameters():  # frozen: the ERF takes input gradients only, nothing else needs a graph
            p.requires_grad_(False)
        splits = data.build(data_cfg, pre, cfg.paths.data_root)
    except (WeightsError, data.DataError, ValueError) as e:
        raise InputError(str(e)) from e
    prompt_rec, prompt_state = _prompt_run(a.get("prompt_run"), model_cfg, pre)
    if prompt_rec is not None:
        _check_prompt_fits(model, pre, prompt_rec, prompt_state, a["prompt_run"])
    aid = analysis_id_of(model_cfg, data_cfg, a, cfg.seed, prompt_rec and prompt_rec["run_id"])
    out = Path(a["out_dir"]) / aid
    if finished_ok(out / ANALYSIS_NAME) and not cfg.get("force", False):
        print(f"[apbench] analysis {aid}: a finished record exists ({out / ANALYSIS_NAME}); skipped")
        return read_record(out / ANALYSIS_NAME)
    try:
        points = [p for p in resolve_layers(model, a["points"]) if p.kind != "module"]
        family = family_of(model)
    except LayerSpecError as e:
        raise ConfigError(f"analysis.points: {e}") from None
    if len(points) < 2:
        raise ConfigError(f"analysis.points={a['points']!r} gives {len(points)} point(s); give at least two, "
                          "e.g. all_with_stem")
    probe_shapes(model, points, pre["input_size"])
    sizes = {p.key: (int(torch.tensor(p.shape).prod()) if not a["cka_pool"] else None) for p in points}
    n_cka = min(a["images"], len(splits.train if a["split"] == "train" else splits.val))
    if not a["cka_pool"]:
        gb = n_cka * sum(sizes.values()) * 4 / 1e9
        if gb > a["max_gb"]:
            raise ConfigError(f"flattened activations of {n_cka} images at {len(points)} points need {gb:.1f} GB "
                              f"(> analysis.max_gb={a['max_gb']}); set analysis.cka_pool=true, fewer "
                              "analysis.images, fewer analysis.points, or a larger analysis.max_gb")

    t0 = time.perf_counter()
    rec = {"schema": 1, "kind": "analysis", "run_id": aid, "analysis_id": aid, "status": "failed",
           "model": model_cfg.get("id", model_cfg["name"]), "arch": model_cfg["name"], "family": family,
           "weights": built.weights, "dataset": data_cfg.get("name"), "split": a["split"], "seed": cfg.seed,
           "image_size": pre["input_size"][-1], "n_images": n_cka, "config": OmegaConf.to_container(cfg, resolve=True),
           "env": environment(device), "error": None}
    out.mkdir(parents=True, exist_ok=True)
    try:
        bs = a["batch_size"]
        timings = {}
        t = time.perf_counter()
        cka_split = splits.train if a["split"] == "train" else splits.val
        train = collect(model, points, splits.train, device, bs,
                        flat_images=n_cka if a["split"] == "train" else 0, flat_pooled=a["cka_pool"])
        val = collect(model, points, splits.val, device, bs,
                      flat_images=n_cka if a["split"] == "val" else 0, flat_pooled=a["cka_pool"])
        feats = (train if a["split"] == "train" else val)["flat"]
        grams = [C.gram(feats[p.key]) for p in points]
        dims = {p.key: int(feats[p.key].shape[1]) for p in points}
        del feats
        rec["cka"] = {"estimator": "linear CKA; debiased = unbiased HSIC (Song et al. 2012) via ckatorch "
                                   "center_gram_matrix(unbiased=True)",
                      "points": [p.key for p in points], "n": n_cka, "pooled": a["cka_pool"],
                      "features": dims, "debiased": C.cka_matrix(grams, True), "biased": C.cka_matrix(grams, False)}
        timings["features_and_cka_s"] = time.perf_counter() - t

        if a["probe"]:
            t = time.perf_counter()
            res = {p.key: probe_top1(train["pooled"][p.key], train["labels"], val["pooled"][p.key], val["labels"],
                                     C=a["probe_C"]) for p in points}
            rec["probe"] = {**SETTINGS, "C": a["probe_C"], "features": "pooled (spatial mean; ViT: mean of patch tokens)",
                            "train_n": len(train["labels"]), "val_n": len(val["labels"]),
                            "val_top1": {k: r["val_top1"] for k, r in res.items()},
                            "train_top1": {k: r["train_top1"] for k, r in res.items()},
                            "not_converged": [k for k, r in res.items() if not r["converged"]]}
            timings["probe_s"] = time.perf_counter() - t
        del train, val

        if a["erf_images"]:
            t = time.perf_counter()
            imgs = images_of(cka_split, a["erf_images"]).to(device)
            rec["erf"] = erf(model, points, imgs)
            rec["erf_info"] = {"images": int(imgs.shape[0]), "measure": "gradient-weighted RMS distance (px) of input "
                               "pixels from the centroid of |d centre unit / d input| (Luo et al. 2016)"}
            timings["erf_s"] = time.perf_counter() - t

        if a["attention"] and family == "vit":
            t = time.perf_counter()
            grid, patch = grid_of(model)
            npf = getattr(model, "num_prefix_tokens", 0)
            sums, count = None, 0
            with attention_weights(model) as store, torch.no_grad():
                for x, _ in torch.utils.data.DataLoader(first(cka_split, n_cka), batch_size=bs, collate_fn=data.collate):
                    store.clear()
                    model(x.to(device))
                    per = torch.stack([mean_attention_distance(store[k][0], grid, patch, npf)
                                       for k in range(len(model.blocks))])
                    sums = per if sums is None else sums + per
                    count += x.shape[0]
            d = patch_distances(grid, patch)
            rec["attention_distance"] = {
                "unit": "input pixels", "grid": list(grid), "patch": list(patch), "num_prefix_tokens": npf,
                "images": count, "per_head_px": (sums / count).tolist(),
                "uniform_px": float(d.mean()),  # what uniform attention over the patches gives
                "note": "prefix tokens dropped, weights renormalized over patch keys; block k's output is point k"}
            timings["attention_s"] = time.perf_counter() - t

        if prompt_rec is not None:
            t = time.perf_counter()
            m = prompt_rec["config"]["method"]
            adapted = methods.apply(model, "ap", input_size=pre["input_size"], layers=m["layers"],
                                    shape=m.get("shape", "full"), init=m.get("init", "zeros"))
            model.apbench_prompts.load_state_dict(prompt_state)
            prompted = collect(model, points, cka_split, device, bs, flat_images=n_cka,
                               flat_pooled=a["cka_pool"])["flat"]
            adapted.remove()
            values = {}
            for p, g in zip(points, grams):
                values[p.key] = C.cka_from_centered(C.center(g), C.center(C.gram(prompted.pop(p.key))))
            rec["cka_prompted"] = {"run": str(a["prompt_run"]), "run_id": prompt_rec["run_id"],
                                   "prompt_points": [pp.key for pp in adapted.points],
                                   "prompt_shape": m.get("shape", "full"), "values": values,
                                   "run_test_top1": (prompt_rec.get("metrics") or {}).get("test_top1"),
                                   "run_val_top1": (prompt_rec.get("metrics") or {}).get("val_top1")}
            timings["prompted_s"] = time.perf_counter() - t
        rec["timings"] = timings
        rec["files"] = [p.name for p in _write_csvs(rec, out)]
        rec["files"] += [cka_heatmap(rec, out / "cka.png").name, curves(rec, out / "curves.png").name]
        rec["status"] = "ok"
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # recorded like a failed run, so a batch of analyses goes on
        rec["error"] = {"type": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()}
        print(f"[apbench] analysis {aid}: failed: {type(e).__name__}: {e}", file=sys.stderr)
    rec["wall_time_s"] = time.perf_counter() - t0
    write_record(out / ANALYSIS_NAME, rec)
    return rec


def summary(rec: dict) -> str:
    probe = (rec.get("probe") or {}).get("val_top1", {})
    best = max(probe, key=probe.get) if probe else None
    what = [f"best probe point {best} ({probe[best]:.1f}%)"] if best else []
    if rec.get("cka_prompted"):
        what.append(f"prompted (AP at {','.join(rec['cka_prompted']['prompt_points'])}) vs unprompted CKA")
    return (f"[apbench] analysis {rec['analysis_id']} {rec['status']}: {rec['model']} on {rec['dataset']} "
            f"({rec['split']}, n={rec['n_images']}); {'; '.join(what) or 'CKA'}; "
            f"files in {Path(rec['config']['analysis']['out_dir']) / rec['analysis_id']}")
