"""The results browser's page without a browser: what ``browser_data`` embeds, how ``browser`` embeds
it, and the ``--html`` / ``--html-only`` options of ``apbench results``."""
import base64
import hashlib
import json
import re

import numpy as np
import pytest

import synthetic_records as sr
from apbench.commands.results import main
from apbench.results.browser import embed_json, render_page
from apbench.results.browser_data import page_data, table_cell
from apbench.results.frame import records_frame


@pytest.mark.parametrize("value, cell", [
    ("85.51 ± 0.43†", ["85.51 ± 0.43†", 85.51]), ("[84.77, 86.25]", ["[84.77, 86.25]", 84.77]),
    ("23.5 min", ["23.5 min", 23.5]), ("3e-4/0.01", ["3e-4/0.01", 3e-4]), ("-", ["-", None]), ("yes", ["yes", None]),
    ("nan ± nan", ["", None]), ("inf", ["", None]), (float("nan"), ["", None]), (float("-inf"), ["", None]),
    (np.int64(247066), ["247066", 247066.0]), (85.0, ["85.0", 85.0]), (0.0001, ["0.0001", 0.0001]), (None, ["", None]),
])
def test_a_table_cell_keeps_its_text_and_gets_a_sort_number(value, cell):
    assert table_cell(value) == cell


def test_no_string_can_close_the_data_script():
    data = {"name": "</script><script>alert(1)</script>", "amp": "a & b", "sep": "x\u2028y"}
    text = embed_json(data)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == data


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    records = sr.study()
    bad = sr.cell_records("d_nat", "natural", "m_small", "bitfit", [], "linear", 0.7, float("inf"), 1e7, float("nan"),
                          0.1, seeds=(0,), predictions=False)  # a second bitfit cell: another head
    for r in bad:
        r["head"] = "random"
    records += bad
    root = tmp_path_factory.mktemp("page")
    sr.write(root / "runs", records)
    return root, records


def test_page_data_has_one_row_per_cell_and_every_pair_of_a_dataset(study):
    root, records = study
    df = records_frame(records)
    data = page_data(records, df, root, root / "runs")
    json.dumps(data, allow_nan=False)  # plain JSON: no NaN, no infinity anywhere
    labels = sorted((r["dataset"], r["label"]) for r in data["rows"])
    assert len(labels) == 15 and ("d_nat", "bitfit[random]") in labels
    per_dataset = {d: sum(1 for r in data["rows"] if r["dataset"] == d) for d in ("d_nat", "d_str")}
    assert per_dataset == {"d_nat": 8, "d_str": 7}
    assert len(data["pairs"]) == 8 * 7 + 7 * 6 and data["pair_fields"] == ["diff", "ci", "p", "significant", "test"]
    assert sorted(data["pair_tests"]) == ["paired bootstrap (images and seeds paired, B=2000)",  # bitfit: none
                                          "unpaired z (no predictions): seed + binomial sampling"]
    odd = next(r for r in data["rows"] if r["label"] == "bitfit[random]")
    assert odd["cost"] == {"params": None, "memory": 10.0, "step": None}  # inf and NaN are missing
    cells = dict(zip(data["columns"], odd["cells"]))
    assert cells["trainable params"] == ["", None] and cells["memory (MB)"] == ["10.0", 10.0]
    assert cells["step time (ms)"] == ["", None] and cells["edge flags"] == ["lr=high", None]
    assert data["meta"]["records"] == len({r["run_id"] for r in records}) and data["meta"]["source"] == "runs"
    assert len({r["id"] for r in data["rows"]}) == 15


def test_the_csp_admits_exactly_the_pages_own_script_and_style(study):
    root, records = study
    page = render_page(page_data(records, records_frame(records), root, root / "runs"))
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    script = re.findall(r"<script>(.*?)</script>", page, re.S)
    style = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert len(script) == 1 and len(style) == 1

    def sha(text):
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
    assert f"script-src {sha(script[0])};" in csp and f"style-src {sha(style[0])};" in csp
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "unsafe" not in csp
    packed = re.findall(r'<script type="application/octet-stream" id="apbench-(\w+)">(.*?)</script>', page, re.S)
    assert [name for name, _ in packed] == ["details", "pairs"]
    assert all(re.fullmatch(r"[A-Za-z0-9+/=]+", text) for _, text in packed)  # base64: nothing can end the element


def test_html_only_writes_the_page_and_nothing_else(study, tmp_path, capsys):
    root, _ = study
    out = tmp_path / "out"
    assert main([str(root / "runs"), "--out", str(out), "--html-only"]) == 0
    assert [p.name for p in out.iterdir()] == ["index.html"]
    assert main([str(tmp_path / "out"), "--html-only"]) == 2  # a folder without records: no page
    assert "no run records (record.json)" in capsys.readouterr().err


def test_html_writes_the_tables_and_the_page(tmp_path, capsys):
    sr.write(tmp_path / "runs", sr.study(datasets=(("d1", "natural"),), methods=sr.METHODS[:2], seeds=(0,)))
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "--out", str(out), "--html"]) == 0
    assert (out / "index.html").is_file() and (out / "methods-m_small-vtab1k-d1.md").is_file()
    assert f"(the results browser: {out / 'index.html'})" in capsys.readouterr().out
    text = (out / "index.html").read_text()
    assert "methods-m_small-vtab1k-d1.md" in text and "acc_vs_cost-m_small-vtab1k.png" in text  # tables, figures
    with pytest.raises(SystemExit):
        main([str(tmp_path / "runs"), "--html", "--html-only"])  # one or the other
