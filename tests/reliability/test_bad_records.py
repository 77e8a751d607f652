"""`apbench results` on hostile records: a value of the wrong type, out of range, NaN, infinite or huge,
predictions that cannot be decoded, a file that is not a regular file: each is listed under "unreadable
or invalid records" with its reason and enters no table (the tables equal those of the good records
alone). Strings from records are inert in every table format. ``--out`` naming a file exits 2."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from apbench.commands import results as results_command
from apbench.results.predictions import encode
from apbench.results.store import write_record

PRED = encode([0, 1, 2, 3] * 5, [0, 1, 2, 3] * 5)  # 20 test images, all right


def _record(run_id: str, method: str, seed: int, acc: float) -> dict:
    return {"schema": 1, "run_id": run_id, "status": "ok", "dataset": "fmnist1k", "protocol": "fixed",
            "stage": "final", "model": "effnet", "method": method, "head": "linear", "layers": ["8"], "seed": seed,
            "hparams": {"lr": 0.01, "edge_flags": []}, "metrics": {"val_top1": acc, "test_top1": acc},
            "params": {"total": 100, "trainable": 10, "trainable_no_head": 0},
            "efficiency": {"train_time_s": 3.0, "memory_bytes": 1000}, "data": {"test": 20},
            "wall_time_s": 4.0, "error": None, "finished_at": "2025-01-01T00:00:00Z"}


GOOD = [_record("ap-0", "ap", 0, 70.0), _record("ap-1", "ap", 1, 72.0), _record("ap-2", "ap", 2, 74.0),
        # strings no table may pass on raw: HTML, a Markdown cell break, a spreadsheet formula, an ANSI escape
        _record("xss-0", "<script>alert(1)</script>", 0, 50.0) | {"model": "effnet"},
        _record("pipe-0", "lp|x", 0, 55.0), _record("tex-0", r"\input{/etc/passwd}", 0, 58.0), _record("formula-0", "=HYPERLINK(\"http://x\")", 0, 60.0),
        # a failure whose message clears the terminal: shown, escaped, in the failures table
        _record("fail-0", "ap", 3, None) | {"status": "failed", "error": {"type": "E", "message": "\x1b[2Jboom|<b>"}}]


def _bad(path: str, value):
    """GOOD[0] with the dotted ``path`` set to ``value``, under its own run id."""
    rec = copy.deepcopy(GOOD[0])
    rec["run_id"] = "bad-" + path.replace(".", "-")
    *parents, leaf = path.split(".")
    node = rec
    for p in parents:
        node = node[p]
    node[leaf] = value
    return rec


# case -> (record or raw JSON text, what the listing must say)
BAD = {
    "accuracy_as_text": (_bad("metrics.test_top1", "85.3"), "metrics.test_top1 is str '85.3', not a number"),
    "accuracy_negative": (_bad("metrics.test_top1", -5.0), "metrics.test_top1 = -5.0 is outside [0, 100]"),
    "accuracy_above_100": (_bad("metrics.test_top1", 150.0), "metrics.test_top1 = 150.0 is outside [0, 100]"),
    "val_bool": (_bad("metrics.val_top1", True), "metrics.val_top1 is bool True, not a number"),
    "count_negative": (_bad("params.trainable", -10), "params.trainable = -10 is outside [0, 1e+15]"),
    "count_huge": (_bad("params.trainable", 10 ** 30), "params.trainable = 1000000000000000000000000000000 is outside"),
    "count_fraction": (_bad("params.total", 1.5), "params.total is float 1.5, not an integer"),
    "memory_negative": (_bad("efficiency.memory_bytes", -1), "efficiency.memory_bytes = -1 is outside"),
    "time_as_text": (_bad("wall_time_s", "fast"), "wall_time_s is str 'fast', not a number"),
    "seed_as_text": (_bad("seed", "0"), "seed is str '0', not an integer"),
    "method_number": (_bad("method", 123), "method is int 123, not a string"),
    "method_ansi": (_bad("method", "\x1b[31mred\nline"), r"method '\x1b[31mred\nline' contains control characters"),
    "method_enormous": (_bad("method", "m" * 5_000_000), "method is 5000000 characters long (at most 300)"),
    "layers_not_a_list": (_bad("layers", "8"), "layers is str '8', not a list"),
    "metrics_not_an_object": (_bad("metrics", [70.0]), "metrics is list, not an object"),
    "predictions_garbled": (_bad("predictions", PRED | {"pred": "!!not base64!!"}), "predictions cannot be decoded"),
    "predictions_short": (_bad("predictions", PRED | {"n": 21}), "predictions cannot be decoded (ValueError: "
                                                                   "'predictions hold 20 values, the record says n=21')"),
    "status_unknown": (_bad("status", "great"), "status 'great' is not one of ok, failed, oom, skipped"),
    # JSON text Python's json reads as NaN / inf: written raw, as a foreign tool might
    "accuracy_nan": (json.dumps(GOOD[0] | {"run_id": "nan"}).replace('"test_top1": 70.0', '"test_top1": NaN'),
                     "metrics.test_top1 is nan"),
    "accuracy_infinite": (json.dumps(GOOD[0] | {"run_id": "inf"}).replace('"test_top1": 70.0', '"test_top1": 1e999'),
                          "metrics.test_top1 is inf"),
    "deeply_nested": ('{"run_id": "deep", "status": "ok", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
                      "not a readable JSON record"),
}
NOT_FILES = {  # a record.json that is no regular file: reading it would hang (FIFO, /dev/zero) or exhaust memory
    "fifo": (lambda p: os.mkfifo(p), "not a regular file"),
    "device": (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
    "sparse_huge": (lambda p: os.truncate(p.open("w").name, 300 << 20), "too large for a record"),
}


def _write_good(root: Path) -> None:
    for r in GOOD:
        write_record(root / r["run_id"] / "record.json", r)


def _report(root: Path, out: Path, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = results_command.main([str(root), "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _tables(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix in (".md", ".csv", ".tex")}


@pytest.fixture(scope="module")
def clean_tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    _write_good(root)
    assert results_command.main([str(root), "--out", str(root / "report")]) == 0
    return _tables(root / "report")


def test_hostile_records_are_listed_with_their_reason_and_enter_no_table(tmp_path, capsys, clean_tables, tally):
    root = tmp_path / "runs"
    _write_good(root)
    for case, (rec, _) in BAD.items():
        path = root / case / "record.json"
        path.parent.mkdir(parents=True)
        path.write_text(rec if isinstance(rec, str) else json.dumps(rec))
    for case, (make, _) in NOT_FILES.items():
        (root / case).mkdir()
        make(root / case / "record.json")
    tally.bad_inputs += len(BAD) + len(NOT_FILES)
    code, out, err = _report(root, tmp_path / "report", capsys)
    assert code == 0, err[-3000:]
    assert f"unreadable or invalid records ({len(BAD) + len(NOT_FILES)}; in no table)" in out
    listing = out + err
    for case, (_, reason) in {**BAD, **NOT_FILES}.items():
        line = next((ln for ln in err.splitlines() if f"/{case}/record.json" in ln), "")
        assert line.startswith("record skipped: ") and reason in line, (case, line[:500])
        tally.clear_errors += 1
    assert "m" * 1000 not in listing  # the enormous name is described, not printed
    bad_files = (tmp_path / "report" / "bad_files.txt").read_text()
    assert sorted(ln.split("\t")[0].split("/")[-2] for ln in bad_files.splitlines()) == sorted({**BAD, **NOT_FILES})
    assert _tables(tmp_path / "report") == clean_tables  # every table (failures too) as without the bad records


def test_strings_from_records_are_inert_in_every_table_format(clean_tables):
    md = b"".join(v for k, v in clean_tables.items() if k.endswith(".md")).decode()
    csv = b"".join(v for k, v in clean_tables.items() if k.endswith(".csv")).decode()
    tex = b"".join(v for k, v in clean_tables.items() if k.endswith(".tex")).decode()
    assert "<script" not in md and "&lt;script>alert(1)&lt;/script>" in md
    assert r"lp\|x" in md and "lp|x" not in md.replace(r"lp\|x", "")
    assert "'=HYPERLINK" in csv and not any(cell.startswith("=") for ln in csv.splitlines() for cell in ln.split(","))
    assert r"\textbackslash input\{/etc/passwd\}" in tex and r"\input{" not in tex
    failures = {k: v.decode() for k, v in clean_tables.items() if k.startswith("failures")}
    assert r"| \x1b[2Jboom\|&lt;b> |" in failures["failures.md"] and "\x1b" not in "".join(failures.values())


def test_out_naming_an_existing_file_exits_2_and_writes_nothing(tmp_path, capsys, tally):
    root = tmp_path / "runs"
    _write_good(root)
    (tmp_path / "report.md").write_text("mine")
    tally.bad_inputs += 1
    code, out, err = _report(root, tmp_path / "report.md", capsys)
    assert code == 2 and "--out " + str(tmp_path / "report.md") + " is an existing file, not a folder" in err
    assert (tmp_path / "report.md").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == [
        "report.md", "runs"]
    tally.clear_errors += 1
