"""Every command example in the docs runs or composes (issue 14 item 4).

Read from README.md, docs/*.md, benchmarks/README.md and results/*/README.md (the last two hold the
commands that reproduce their figures). A command is a line of a fenced shell block, or an inline
code span, that starts with `apbench`, `python`, `PYTHONPATH=...`, `make` or `bash` (after any
`VAR=value` prefixes); a fenced ```python block is a snippet. How each is checked:

- `apbench run [-m] OVERRIDES`: composed by Hydra with the same overrides, as `apbench run` composes
  them (a multirun with the sweeper's params through BasicSweeper: every job when there are at most
  FULL_SWEEP; of a larger sweep the first and last job here, and in the slow test enough jobs that
  every swept value is composed at least once), then each job's runs validated
  (`apbench.validate.validate`, on the meta device: nothing trained, downloaded or read from data;
  refusals a documented sweep makes by design are in EXPECTED_REFUSALS).
- `apbench layers / methods / results / data ...`, `python -m apbench ...`: run in-process.
- `apbench plan ...`: its own argument parser, then its sweep composed as above (the step timing,
  seconds to minutes per cell, is not run).
- `make TARGET`: the target exists in the Makefile.
- scripts (`python scripts/x.py`, `bash scripts/x.sh`, benchmarks): listed in NOT_RUN with the reason;
  the file exists, compiles (`bash -n`), and takes the options and environment variables given.
- python snippets: executed, with the substitutions in PY_SUBSTITUTIONS and the names in
  py_namespace() that the docs leave to the reader.

Synopses with placeholders (`apbench layers MODEL`) run as the concrete command in SYNOPSES. A
command known to fail today is in KNOWN_FAILING with the branch that fixes it; the test then insists
that it still fails, so the entry is removed when the fix is merged. Every list entry must match a
command in the docs (no stale entries). A new command needs no entry unless it cannot run here.
"""
from __future__ import annotations

import importlib
import json
import re
import runpy
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from conftest import CONF

ROOT = CONF.parent
DOC_FILES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
             "benchmarks/README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "results").glob("*/README.md"))]
COMMAND_WORDS = ("apbench", "python", "python3", "make", "bash")
SHELL_CONTROL = re.compile(r"^(for|while|if|do|done|fi|then|else)\b")
FULL_SWEEP = 12  # sweeps with at most this many jobs are composed job by job; larger ones value by value

# Placeholders in usage lines, and the concrete command each is checked as.
SYNOPSES = {
    "apbench layers MODEL": "apbench layers tiny_resnet",
    "apbench results DIR": "apbench results runs/",
    "apbench results DIR [--out OUT] [--reference METHOD ...] [--baselines-from DIR2] [--html | --html-only]":
        "apbench results runs/ --out report/ --reference linear_probe --reference full_ft --baselines-from runs/ --html",
    "apbench measure OVERRIDES...":  # batch 32: the recipe's 1,024 makes every timed step a second
        "apbench measure model=tiny_resnet dataset=fmnist_tiny method=linear_probe trainer.batch_size=32 --out report/",
    "apbench plan -m experiment=NAME": "apbench plan -m experiment=efficiency_table",
    "apbench measure --records DIR --out OUT": "apbench measure --records runs/ --out report/",
    "apbench data verify SUITE|DATASET [--root DIR]": "apbench data verify digits",
    "apbench data prepare DATASET": "apbench data prepare vtab1k_dtd",
    "apbench plan [OVERRIDES...] [--dry-run] [--measure first|each|none] [--step-time S] [--train-images N]":
        "apbench plan -m experiment=demo method=ap,linear_probe --dry-run --measure none --step-time 0.1 --train-images 100",
    "python -m apbench ...": "python -m apbench methods",
    "apbench results --html-only": "apbench results runs/ --html-only --out report/",
    "apbench measure --records DIR": "apbench measure --records runs/ --out report/",
    "apbench run -m experiment=cpu_lite0_fmnist1k method=...":  # `...`: each cell group of the study script
        "apbench run -m experiment=cpu_lite0_fmnist1k method=linear_probe,full_ft",
    "apbench run -m experiment=pkg_suite_lite0 +suite=pkg method=...":  # one cell group over the 8 tasks
        "apbench run -m experiment=pkg_suite_lite0 +suite=pkg method=ap",
}

# `python -m apbench.<module>` commands the docs give on a committed folder: run in-process from the
# repository root (they read records and print; none writes without --out).
IN_REPO_MODULES = {"apbench.results.compare"}

# Commands not checked at all: they need what these machines lack. The reason, reviewed.
SKIPPED = {
    "apbench analyze model=fmnist_cnn dataset=digits analysis.prompt_run=runs/7cc0ad0df7af":
        "needs a finished AP run folder with its prompt.pt; tests/test_analyze_command.py runs this command on one",
    "apbench data prepare pkg": "writes the 8 pkg tasks at their declared sizes (about a minute); "
        "tests/test_pkg_suite.py writes pkg_xpos so and verifies it, and every task in a small copy",
    "apbench data verify +suite=pkg": "needs the 8 pkg tasks written first (`apbench data prepare pkg`); "
        "tests/test_pkg_suite.py verifies a written task through the same command",
    "apbench analyze analysis.prompt_run=DIR":
        "a prompt run folder as a placeholder; tests/test_analyze_command.py runs analyze on a finished AP run's folder",
    "python -m apbench run -m ... method=ap method.layers=1,-1 device=cuda":
        "needs a CUDA GPU (device=cuda is refused without one); `...` is gpu_check.sh's own model and data",
}

# Commands checked without being run: the reason, reviewed. Scripts get the static check above.
NOT_RUN = {
    "make demo": "installs a venv and runs the demo study (~3 min); the target is checked to exist",
    "make test": "runs the whole suite; the target is checked to exist",
    "bash .ci/run": "CI itself: installs everything and runs the whole suite (~25 min)",
    "bash scripts/study_cpu_lite0_fmnist1k.sh": "the CPU study: hours of training",
    "PLAN_ONLY=1 bash scripts/study_cpu_lite0_fmnist1k.sh": "times 34 cells with `apbench plan --measure each` (minutes)",
    "REDO_COUNT=1 bash scripts/study_cpu_lite0_fmnist1k.sh": "walks 29 cells' protocols against 247 records (minutes)",
    "PYTHONPATH=src python scripts/study_retest_analysis.py": "rewrites nothing without --out; 4,000 resamples per cell (seconds)",
    "PYTHONPATH=src python scripts/study_cnn_vs_vit.py --jobs 2": "the digits study: ~30 min of training",
    "bash scripts/study_small_models_digits.sh": "the small-model study on digits: 427 runs, about an hour on 2 cores",
    "PLAN_ONLY=1 bash scripts/study_small_models_digits.sh": "composes its 8 sweeps with `apbench plan` (minutes)",
    "PYTHONPATH=src python scripts/study_cnn_vs_vit.py --report": "rewrites the committed tables and plots in results/",
    "PYTHONPATH=src python benchmarks/loader_throughput.py": "a timing benchmark (about 1 min)",
    "PYTHONPATH=src python benchmarks/bench_loop_overhead.py": "a timing benchmark (minutes)",
    "PYTHONPATH=src python benchmarks/bench_ap_vs_vp.py": "a timing benchmark (minutes, ResNet-50)",
    "PYTHONPATH=src python benchmarks/bench_prefix_cache.py": "a timing benchmark (minutes)",
    "PYTHONPATH=src python benchmarks/bench_prefix_cache.py --model resnet50 --size 64 --points 15 16":
        "a timing benchmark (minutes, ResNet-50)",
    "PYTHONPATH=src python benchmarks/bench_throughput_vs_timm.py": "a timing benchmark (minutes)",
    "PYTHONPATH=src python benchmarks/bench_cli_latency.py": "a timing benchmark (about 2.5 min: 5 rounds of 12 commands and baselines)",
    "PYTHONPATH=src python benchmarks/bench_results_browser.py":
        "writes 10,000 records and loads their page in chromium (minutes)",
    "bash scripts/gpu_check.sh": "needs a CUDA GPU (exits 2 without one)",
    "PYTHONPATH=src python scripts/pkg_suite_cues.py --root data": "needs the 8 pkg tasks written (a minute); "
        "its functions are tested in tests/test_pkg_suite.py",
    "PYTHONPATH=src python scripts/rebind_data_identity.py RUNS_DIR": "rewrites records in place; "
        "tests/test_rebind_data_identity.py runs it on records of a small written task",
    "bash scripts/pkg_suite_study.sh": "the pkg suite study: hours of training",
    "PLAN_ONLY=1 bash scripts/pkg_suite_study.sh": "times every cell with `apbench plan --measure each` (minutes)",
    "PARTS=report bash scripts/pkg_suite_study.sh": "rewrites the committed pkg suite report from its 1,158 records (minutes)",
    "PYTHONPATH=src python scripts/study_analyses.py": "the analyses study: ~15 min (retrains six AP runs for their prompts)",
    "PYTHONPATH=src python scripts/study_analyses.py --report": "rewrites the committed analyses figures in results/",
}

# Commands that fail today, with the branch that fixes them. Remove an entry when the fix is merged
# (the test fails while a listed command passes, to say so).
KNOWN_FAILING: dict[str, str] = {}

# Cells a documented sweep refuses by design ("invalid configuration", the sweep goes on: docs/sweeps.md).
EXPECTED_REFUSALS = {
    ("method=vpt", "model=resnet101"): "VPT is ViT-only (efficiency_table: 22 jobs, 21 records)",
}

# The python snippets: what runs instead of a download, and the names the docs leave to the reader.
PY_SUBSTITUTIONS = {"pretrained=True": "pretrained=False"}  # hub weights need the internet


def py_namespace() -> dict:
    import timm
    import torch
    torch.manual_seed(0)
    return {"x": torch.randn(2, 3, 224, 224),  # "a batch of images" at the model's input size
            "model": timm.create_model("resnet18", pretrained=False)}  # "a timm model" (1000-class head)


# ---------------------------------------------------------------- extraction

@dataclass(frozen=True)
class Cmd:
    file: str
    line: int
    text: str          # as written in the doc
    kind: str          # "shell" or "python"
    inline: bool = False

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def _split_env(text: str) -> tuple[dict, str]:
    env, rest = {}, text.strip()
    while True:
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(\S*)\s+", rest)
        if not m:
            return env, rest
        env[m.group(1)] = m.group(2)
        rest = rest[m.end():]


def _is_command(text: str) -> bool:
    _, rest = _split_env(text)
    return rest.split(" ", 1)[0] in COMMAND_WORDS


def _strip_comment(line: str) -> str:
    """Drop a trailing `# comment` (outside quotes)."""
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            break
        out.append(ch)
    return "".join(out).rstrip()


def extract(file: str, text: str | None = None) -> tuple[list[Cmd], list[str]]:
    """(commands, problems) of one doc. A problem is a line in a command block that is neither a
    command, a comment, shell control nor output after a `$ ` prompt: add it to the docs as a command
    this test knows, or put it in its own output block."""
    lines = (text if text is not None else (ROOT / file).read_text()).splitlines()
    cmds, problems = [], []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if not fence:
            if not line.startswith("    "):  # an indented code block is output, never a command here
                for m in re.finditer(r"`([^`]+)`", line):
                    span = m.group(1).strip()
                    if _is_command(span):
                        cmds.append(Cmd(file, i + 1, span, "shell", inline=True))
            i += 1
            continue
        lang, start = fence.group(1), i + 1
        body = []
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            body.append((i + 1, lines[i]))
            i += 1
        i += 1  # the closing fence
        if lang == "python":
            cmds.append(Cmd(file, start + 1, "\n".join(b for _, b in body), "python"))
            continue
        first = next((b.strip() for _, b in body if b.strip()), "")
        is_cmd_block = lang in ("bash", "sh", "shell", "console") or _is_command(first) or \
            first.startswith("$ ") or bool(SHELL_CONTROL.match(first))
        if not is_cmd_block:
            for n, b in body:  # output: a command-looking line at column 0 would be ambiguous
                if _is_command(b) and not b.startswith(" "):
                    problems.append(f"{file}:{n}: command {b.strip()!r} inside an output block (starts {first!r})")
            continue
        after_prompt = False
        pending, pending_line = "", 0
        for n, b in body:
            raw = b.rstrip()
            if pending:
                raw, n = pending + " " + raw.strip(), pending_line
                pending = ""
            if raw.endswith("\\"):
                pending, pending_line = raw[:-1].rstrip(), n
                continue
            s = _strip_comment(raw).strip()
            if not s:
                continue
            if s.startswith("$ "):
                after_prompt, s = True, s[2:].strip()
            elif after_prompt:
                continue  # output of the prompted command
            if _is_command(s):
                cmds.append(Cmd(file, n, s, "shell"))
            elif SHELL_CONTROL.match(s):
                continue
            else:
                problems.append(f"{file}:{n}: {s!r} in a command block is not a command this test knows "
                                f"(starts with one of {COMMAND_WORDS} after VAR=value prefixes)")
    return cmds, problems


def all_commands():
    cmds, problems = [], []
    for f in DOC_FILES:
        c, p = extract(f)
        cmds += c
        problems += p
    return cmds, problems


COMMANDS, PROBLEMS = all_commands()


def _words(text: str) -> list[str]:
    """shlex words of one shell command, up to a redirection, pipe, `;` or `&`."""
    words = []
    for w in shlex.split(text):
        if w in ("|", ";", "&", "&&", ">", ">>") or re.match(r"^\d?>", w) or w.endswith(";"):
            break
        words.append(w)
    return words


# ---------------------------------------------------------------- Hydra composition (no training)

_composed: dict = {}
_validated: dict = {}


def _compose_jobs(overrides: list[str], multirun: bool, every_value: bool) -> list[tuple[list[str], object]]:
    """[(job overrides, config)] as `apbench run [-m] OVERRIDES` composes them: every job of a sweep
    of at most FULL_SWEEP; of a larger one, with ``every_value`` enough jobs to compose every swept
    value, else its first and last job (at ~0.15 s a job, the slow test does the rest)."""
    key = (tuple(overrides), multirun, every_value)
    for k in (key, key[:2] + (True,)):
        if k in _composed:
            return _composed[k]
    task = [o for o in overrides if not o.startswith(("hydra/", "hydra.", "+hydra"))]
    if task != overrides:  # launcher settings: compose them with the sweep once; jobs as without them
        _compose_jobs_master(overrides, multirun)
        _composed[key] = _compose_jobs(task, multirun, every_value)
        return _composed[key]
    from hydra import initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        gh = GlobalHydra.instance()
        mode = RunMode.MULTIRUN if multirun else RunMode.RUN
        master = gh.hydra.compose_config("config", overrides, run_mode=mode, from_shell=True)
        if not multirun:
            jobs = [(list(overrides), master)]
        else:
            sweeper = master.hydra.sweeper
            params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
            parsed = OverridesParser.create(config_loader=gh.config_loader()).parse_overrides(
                params + list(master.hydra.overrides.task))
            every = [list(j) for batch in BasicSweeper.split_arguments(parsed, None) for j in batch]
            picked = _covering(every) if every_value or len(every) <= FULL_SWEEP else [every[0], every[-1]]
            jobs = [(ov, gh.config_loader().load_sweep_config(master, ov)) for ov in picked]
    for _, cfg in jobs:
        with open_dict(cfg):
            del cfg["hydra"]
    _composed[key] = jobs
    return jobs


def _compose_jobs_master(overrides: list[str], multirun: bool):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        GlobalHydra.instance().hydra.compose_config(
            "config", overrides, run_mode=RunMode.MULTIRUN if multirun else RunMode.RUN, from_shell=True)


def _covering(every: list[list[str]]) -> list[list[str]]:
    """All jobs of a small sweep; of a large one, max(n values) jobs that between them hold every
    value of every swept key (job i takes value i mod n of each key, from Hydra's own product)."""
    if len(every) <= FULL_SWEEP:
        return every
    columns = [list(dict.fromkeys(job[k] for job in every)) for k in range(len(every[0]))]
    index = {tuple(job): job for job in every}
    picked = []
    for i in range(max(len(c) for c in columns)):
        job = index.get(tuple(c[i % len(c)] for c in columns))
        assert job is not None, f"the sweep is not a full product of {columns}"
        picked.append(job)
    return picked


def _runs_of_job(cfg) -> tuple[list, list]:
    """The configs `run_protocol` would run for this job, as (validated in full, trainer checks only):
    fixed: the config itself; a selection protocol: the first select run and a final run in full,
    the other drawn points' trainer settings (they differ from the first only in the values drawn)."""
    from apbench import protocol as proto

    p = proto.resolve(cfg)
    if p["space"] is None:
        return ([cfg] if p["name"] == cfg.protocol.name else
                [proto.stage_config(cfg, p["name"], "final", {}, cfg.seed, trainval=None)]), []
    points, _ = proto.draw(p["space"], p["budget"], p["sampler_seed"])
    select = [proto.stage_config(cfg, p["name"], "select", pt, p["select_seed"], trainval=False) for pt in points[:1]]
    final = proto.stage_config(cfg, p["name"], "final", points[-1], p["seeds"][0], trainval=p["final_trainval"])
    return [select[0], final], [_PointRun(cfg, p["name"], pt, p["select_seed"]) for pt in points[1:]]


@dataclass(frozen=True)
class _PointRun:
    """A drawn point's select run, staged only when its trainer check is not known yet."""
    cfg: object
    protocol: str
    point: dict
    seed: int

    def staged(self):
        from apbench import protocol as proto
        return proto.stage_config(self.cfg, self.protocol, "select", self.point, self.seed, trainval=False)


_trainer_checked: dict = {}


def _trainer_check(run: _PointRun) -> str | None:
    """None when the point's run passes `trainer_settings`, else the refusal. That check reads only the
    trainer and method nodes (recipes.resolve fills the trainer from the method), with the point's values
    set in them: the jobs of a preset that share a method (one per dataset) share its drawn points, so
    each (point, trainer, method) is staged and checked once per process."""
    from apbench.validate import ConfigError, trainer_settings

    plain = lambda node: json.dumps(OmegaConf.to_container(node, resolve=True), sort_keys=True, default=str)
    key = (json.dumps(run.point, sort_keys=True, default=str), plain(run.cfg.trainer), plain(run.cfg.method))
    if key not in _trainer_checked:
        try:
            trainer_settings(run.staged())
            _trainer_checked[key] = None
        except ConfigError as e:
            _trainer_checked[key] = str(e)
    return _trainer_checked[key]


_CHEAP_CELL = None


def _validate(cfg) -> str | None:
    """None when the run validates, else the refusal message. Cached: the meta-device model build
    (0.1-0.5 s) runs once per (model, method) pair; a later run with the same pair (another dataset,
    grid point or stage) is validated with a tiny model and the linear probe in their place, which
    checks everything else (device, seed, trainer, protocol stage, dataset keys) as fully."""
    from apbench.validate import ConfigError, validate

    global _CHEAP_CELL
    plain = lambda node: json.dumps(OmegaConf.to_container(node, resolve=True), sort_keys=True, default=str)
    key = plain(cfg)
    if key in _validated:
        return _validated[key]
    pair = plain(cfg.model) + plain(cfg.method)
    try:
        if pair in _validated:
            if _validated[pair] is not None:
                raise ConfigError(_validated[pair])
            if _CHEAP_CELL is None:
                from conftest import compose
                c = compose("model=tiny_resnet", "method=linear_probe")
                _CHEAP_CELL = (c.model, c.method)
            cfg = cfg.copy()
            with open_dict(cfg):
                cfg.model, cfg.method = _CHEAP_CELL
            cheap = plain(cfg)
            if cheap not in _validated:  # the same dataset, trainer and stage seen with another pair
                try:
                    validate(cfg)
                    _validated[cheap] = None
                except ConfigError as e:
                    _validated[cheap] = str(e)
            if _validated[cheap] is not None:
                raise ConfigError(_validated[cheap])
        else:
            validate(cfg)
        _validated[key] = None
    except ConfigError as e:
        _validated[key] = str(e)
    _validated.setdefault(pair, _validated[key])
    return _validated[key]


EVERY_VALUE = False  # set by the slow test: compose every swept value of the large sweeps


def check_run(words: list[str], cmd: Cmd):
    multirun = any(w in ("-m", "--multirun") for w in words)
    overrides = [w for w in words if w not in ("-m", "--multirun")]
    try:
        jobs = _compose_jobs(overrides, multirun, EVERY_VALUE)
    except Exception as e:  # noqa: BLE001 -- Hydra's composition errors are what this test reports
        raise AssertionError(f"does not compose: {type(e).__name__}: {e}") from None
    assert jobs, "the sweep has no jobs"
    for ov, cfg in jobs:
        full, trainer_only = _runs_of_job(cfg)
        for run_cfg in trainer_only:
            err = _trainer_check(run_cfg)
            if err is not None:
                raise AssertionError(f"job {' '.join(ov)}: a grid point is refused: {err}")
        for run_cfg in full:
            err = _validate(run_cfg)
            if err is None:
                continue
            if not any(set(cells) <= set(ov) for cells in EXPECTED_REFUSALS):
                raise AssertionError(f"job {' '.join(ov)} is refused: {err}")


# ---------------------------------------------------------------- the other command kinds

def check_plan(args: list[str], monkeypatch, capsys):
    """plan's own parser on the arguments, its sweep composed and validated; then, when nothing needs
    timing (`--measure none` or `--step-time`) and the sweep is small, plan itself for real."""
    from apbench.commands import plan
    from apbench.cli import main

    seen = []
    real = plan.sweep_jobs
    with monkeypatch.context() as m:
        m.setattr(plan, "sweep_jobs", lambda ov, conf_dir, train_images=None: seen.append(list(ov)) or [])
        assert main(["plan", *args]) == 0
    check_run(["-m", *seen[0]], None)
    untimed = "--step-time" in args or any(a == "none" and b == "--measure" for b, a in zip(args, args[1:]))
    jobs = _compose_jobs(seen[0], True, False)
    if untimed and len(jobs) <= FULL_SWEEP:
        assert plan.sweep_jobs is real
        capsys.readouterr()
        assert main(["plan", *args]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"apbench plan: {len(jobs)} jobs, "), out


def _sample_records(dest: Path):
    """`runs/` for the commands that read records: a final ok record of the committed digits study
    (fmnist_cnn linear probe, 32 px: cheap to measure), and the same record again as full fine-tuning (that
    study has none; `apbench measure`'s default baseline is full_ft)."""
    from conftest import compose

    want = {("linear_probe", ())}
    for rec_file in sorted((ROOT / "results" / "cnn-vs-vit-digits" / "runs").glob("*/record.json")):
        rec = json.loads(rec_file.read_text())
        cell = (rec["method"], tuple(rec.get("layers") or ()))
        if rec["model"] == "fmnist_cnn" and rec.get("stage") == "final" and rec["status"] == "ok" and cell in want:
            want.discard(cell)
            (dest / rec["run_id"]).mkdir(parents=True)
            (dest / rec["run_id"] / "record.json").write_text(rec_file.read_text())
            if rec["method"] == "linear_probe":
                rec["method"], rec["run_id"] = "full_ft", "f" + rec["run_id"][1:]
                rec["config"]["method"] = OmegaConf.to_container(compose("method=full_ft").method)
                (dest / rec["run_id"]).mkdir()
                (dest / rec["run_id"] / "record.json").write_text(json.dumps(rec))
    assert not want, f"sample records missing from results/cnn-vs-vit-digits/runs: {want}"


def check_apbench(words: list[str], env: dict, cmd: Cmd, tmp_path, monkeypatch, capsys):
    from apbench.cli import main

    sub, args = (words[1], words[2:]) if len(words) > 1 else ("run", [])
    if sub == "run":
        return check_run(args, cmd)
    if sub == "plan":
        return check_plan(args, monkeypatch, capsys)
    if cmd.inline and not args:  # a mention in prose: the subcommand exists
        assert main(["no-such-command"]) == 2
        known = capsys.readouterr().err.split("commands: ", 1)[1].strip().split(", ")
        assert sub in known, f"`apbench {sub}` is not a command; commands: {', '.join(known)}"
        return
    monkeypatch.chdir(tmp_path)  # relative paths (runs/, report/) land in a scratch folder
    _sample_records(tmp_path / "runs")
    code = main([sub, *args])
    out = capsys.readouterr()
    assert code == 0, f"exit {code}; stderr: {out.err[-2000:]}"


def check_script(words: list[str], env: dict, cmd: Cmd):
    """Static: the script exists, compiles, takes the options and environment variables given."""
    path = next((w for w in words[1:] if w.endswith((".py", ".sh")) or (words[0] == "bash" and "/" in w)),
                None)  # `bash .ci/run`: a bash script without the suffix
    assert path and (ROOT / path).is_file(), f"no script {path!r} in the repository"
    source = (ROOT / path).read_text()
    if path.endswith(".py"):
        compile(source, path, "exec")
        for opt in (w for w in words if w.startswith("--")):
            assert f'"{opt}"' in source or f"'{opt}'" in source, f"{path} has no option {opt}"
    else:
        r = subprocess.run(["bash", "-n", str(ROOT / path)], capture_output=True, text=True)
        assert r.returncode == 0, f"bash -n {path}: {r.stderr}"
    for var in env:
        if var != "PYTHONPATH":
            assert var in source, f"{path} does not read {var}"


def check_make(words: list[str]):
    """Every target exists; every VAR=value names a variable the Makefile sets with `?=`."""
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:", makefile, re.M))
    variables = set(re.findall(r"^([A-Z_][A-Z0-9_]*)\s*\?=", makefile, re.M))
    for t in words[1:]:
        if "=" in t:
            var = t.split("=", 1)[0]
            assert var in variables, f"Makefile has no variable {var!r} (settable: {', '.join(sorted(variables))})"
            continue
        assert t in targets, f"Makefile has no target {t!r} (targets: {', '.join(sorted(targets))})"


def check_python_module(words: list[str], monkeypatch, capsys):
    if words[2].startswith("apbench.") and words[2] in IN_REPO_MODULES:
        # a module's own command on a committed records folder: runs from the repository root, prints only
        monkeypatch.chdir(ROOT)
        code = importlib.import_module(words[2]).main(words[3:])
        out = capsys.readouterr()
        assert code == 0 and out.out.strip(), f"exit {code}: {out.err[-2000:]}"
        return
    assert words[1:3] == ["-m", "apbench"], f"only `python -m apbench` runs in-process, not {' '.join(words)}"
    monkeypatch.setattr(sys, "argv", ["apbench", *words[3:]])
    with pytest.raises(SystemExit) as e:
        runpy.run_module("apbench", run_name="__main__")
    assert e.value.code in (0, None), f"exit {e.value.code}: {capsys.readouterr().err[-2000:]}"


def check_snippet(code: str):
    for old, new in PY_SUBSTITUTIONS.items():
        code = code.replace(old, new)
    exec(compile(code, "<doc snippet>", "exec"), py_namespace())


def check(cmd: Cmd, tmp_path, monkeypatch, capsys):
    if cmd.kind == "python":
        return check_snippet(cmd.text)
    text = SYNOPSES.get(cmd.text, cmd.text)
    env, rest = _split_env(text)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    words = _words(rest)
    if cmd.text in SKIPPED:
        pytest.skip(f"{cmd.where}: {SKIPPED[cmd.text]}")
    if cmd.text in NOT_RUN:
        return check_make(words) if words[0] == "make" else check_script(words, env, cmd)
    if words[0] == "apbench":
        import signal
        if hasattr(signal, "SIGPIPE"):  # the CLI resets SIGPIPE for `| head`; not in the test process
            monkeypatch.setattr(signal, "signal", lambda *a: None)
        return check_apbench(words, env, cmd, tmp_path, monkeypatch, capsys)
    if words[0] == "make":
        return check_make(words)
    if words[0] in ("python", "python3") and words[1:2] == ["-m"]:
        return check_python_module(words, monkeypatch, capsys)
    raise AssertionError("a script or other command this test does not run: run it here, or add it to "
                         "NOT_RUN with the reason (and it gets the static check)")


# ---------------------------------------------------------------- the tests

def _id(cmd: Cmd) -> str:
    return f"{cmd.where} {cmd.text.splitlines()[0][:70]}"


PASSED: set[tuple[str, str]] = set()  # (kind, text) already checked in this session


@pytest.mark.parametrize("cmd", COMMANDS, ids=_id)
def test_doc_command(cmd, tmp_path, monkeypatch, capsys):
    known = KNOWN_FAILING.get(cmd.text)
    if (cmd.kind, cmd.text) in PASSED:  # the same text in two docs: the same check, already passed
        return
    try:
        check(cmd, tmp_path, monkeypatch, capsys)
    except Exception as e:  # noqa: BLE001 -- every failure is reported with where the command is
        if known:
            pytest.xfail(f"known failing, {known}: {type(e).__name__}: {str(e)[:300]}")
        raise AssertionError(f"{cmd.where}: the documented command\n    {cmd.text}\nfails: "
                             f"{type(e).__name__}: {e}") from None
    assert not known, (f"{cmd.where}: {cmd.text!r} passes now: remove it from KNOWN_FAILING ({known})")
    PASSED.add((cmd.kind, cmd.text))


SWEEPS = [c for c in COMMANDS if c.kind == "shell" and c.text not in (*SKIPPED, *NOT_RUN, *KNOWN_FAILING)
          and re.search(r"(^|\s)(-m|--multirun)(\s|$)", SYNOPSES.get(c.text, c.text))]


@pytest.mark.slow
@pytest.mark.parametrize("cmd", SWEEPS, ids=_id)
def test_doc_sweep_composes_every_swept_value(cmd, tmp_path, monkeypatch, capsys):
    """The large sweeps (presets, suites) value by value: max(n values) jobs each (~20 s for all)."""
    monkeypatch.setattr(sys.modules[__name__], "EVERY_VALUE", True)
    try:
        check(cmd, tmp_path, monkeypatch, capsys)
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"{cmd.where}: the documented sweep\n    {cmd.text}\nfails: {type(e).__name__}: {e}") from None


def test_every_command_block_line_is_understood():
    assert not PROBLEMS, "\n".join(PROBLEMS)


def test_every_list_entry_names_a_documented_command():
    texts = {c.text for c in COMMANDS}
    stale = [t for t in (*SYNOPSES, *NOT_RUN, *SKIPPED, *KNOWN_FAILING) if t not in texts]
    assert not stale, f"entries that match no command in {', '.join(DOC_FILES)} (remove them): {stale}"
    assert set(SYNOPSES) & set(NOT_RUN) == set()


def test_a_new_failing_command_in_a_doc_fails(tmp_path, monkeypatch, capsys):
    """A bogus command added to a copy of the README is found, and its check fails naming it."""
    doc = (ROOT / "README.md").read_text().replace(
        "apbench methods                                         # registered methods and their families",
        "apbench methods\napbench run method=ap method.bogus_key=3")
    cmds, problems = extract("README.md", doc)
    bogus = [c for c in cmds if "bogus_key" in c.text]
    assert len(bogus) == 1 and not problems
    with pytest.raises(AssertionError, match="does not compose: .*bogus_key"):
        check(bogus[0], tmp_path, monkeypatch, capsys)
    cmds, problems = extract("README.md", doc.replace("apbench methods\n", "apbench methods\npip install foo\n"))
    assert [p.split(": ", 1)[1] for p in problems] == [
        "'pip install foo' in a command block is not a command this test knows "
        "(starts with one of ('apbench', 'python', 'python3', 'make', 'bash') after VAR=value prefixes)"]


def test_the_quick_starts_comparison_is_a_tuned_one():
    """Issue 26 item 7: the first comparison a newcomer copies from the README searches each method's
    space on val (a selection protocol with a budget), for more than one method -- not `protocol=fixed`,
    whose tables say they are untuned points."""
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    runs = [c for c in COMMANDS if c.file == "README.md" and c.text.startswith("apbench run -m")
            and c.text in quick]
    assert runs, "the README's quick start shows no `apbench run -m` comparison"
    for cmd in runs:
        jobs = _compose_jobs([w for w in _words(cmd.text)[2:] if w != "-m"], True, EVERY_VALUE)
        methods = {cfg.method.name for _, cfg in jobs}
        protocols = {cfg.protocol.name for _, cfg in jobs}
        assert len(methods) > 1 and "fixed" not in protocols, (cmd.text, methods, protocols)
        assert all(int(cfg.protocol.budget) > 1 for _, cfg in jobs), cmd.text
