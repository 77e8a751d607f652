"""The results browser (``apbench results DIR --html``) in a real browser: Debian's chromium driven by
playwright (``executable_path``; never ``playwright install``). Every expectation is computed in Python
from the same records, by the functions the tables use. Skips with a message when chromium or
playwright is missing (``.ci/run`` installs both)."""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest

import synthetic_records as sr
from apbench.commands.results import main as results_main
from apbench.methods.catalog import method_kind
from apbench.results.frame import load_records
from apbench.results.plots import pareto_front
from apbench.results.rows import ACC, final_ok
from apbench.results.stats import stats_tables

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()),
                shutil.which("chromium"))
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not CHROMIUM:
        pytest.skip("no chromium here: apt-get install chromium chromium-driver (as .ci/run does)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


# The smallest PNG (1x1): the page shows every figure of its folder, not what is in them.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")


def _build(root: Path, records: list[dict]) -> tuple[Path, object]:
    """Records in root/runs, the page in root (as a study folder holds them), with figures beside it."""
    sr.write(root / "runs", records)
    for png in ("acc_vs_cost-m_small-vtab1k.png", "curves/curve a@b=1.png", "runs/inside-a-record-folder.png"):
        (root / png).parent.mkdir(parents=True, exist_ok=True)
        (root / png).write_bytes(PNG)
    assert results_main([str(root / "runs"), "--out", str(root), "--html-only"]) == 0
    return root, load_records(root / "runs")[0]


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    """Two VTAB-group datasets x 7 cells (bitfit without predictions), tables, plots and the page."""
    return _build(tmp_path_factory.mktemp("browser-study"), sr.study())


@pytest.fixture(scope="session")
def hostile(tmp_path_factory):
    """Records whose names hold markup, and a cell whose costs are infinite or NaN."""
    recs = sr.study(datasets=(("d1", "natural"),), methods=sr.METHODS[:2])
    recs += sr.cell_records("d1", "natural", "m_small", SCRIPT, [], "linear", 0.7, 100, 1e7, 0.01, 0.1)
    recs += sr.cell_records(IMG, "natural", "m_small", "lora", [], "linear", 0.7, 100, 1e7, 0.01, 0.1)
    recs += sr.cell_records("d1", "natural", "m_small", "bitfit", [], "linear", 0.7, float("inf"), float("inf"),
                            float("nan"), 0.1, predictions=False)
    return _build(tmp_path_factory.mktemp("browser-hostile"), recs)


class Page:
    """One loaded page with its console messages, page errors and requests."""

    def __init__(self, browser, out: Path, fragment: str = "", **context):
        self.context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True, **context)
        self.page = self.context.new_page()
        self.errors, self.requests = [], []
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto((out / "index.html").resolve().as_uri() + fragment)
        self.page.wait_for_function("() => window.apbenchRendered !== undefined")

    def labels(self) -> list[str]:
        return self.page.eval_on_selector_all("#methods tbody tr", "rows => rows.map(r => r.dataset.label)")

    def table(self) -> list[list[str]]:
        return self.page.eval_on_selector_all(
            "#methods tr", "rows => rows.map(r => Array.from(r.children).slice(1).map(c => c.textContent))")

    def drawer(self) -> str:
        """The drawer's title once its content is drawn (the detail data unpacks asynchronously)."""
        self.page.wait_for_selector('#drawer[data-ready="1"]')
        return self.page.inner_text("#drawer-title")

    def close(self):
        self.context.close()


@pytest.fixture
def page(browser, study):
    pages = []

    def open_page(out=None, fragment="", **context):
        pages.append(Page(browser, out or study[0], fragment, **context))
        return pages[-1]

    yield open_page
    for p in pages:
        p.close()


def cells(df):
    """(model, protocol, dataset, label) -> final runs, as the page's rows."""
    ok = final_ok(df)
    return {k: g for k, g in ok.groupby(["model", "protocol", "dataset", "label"])}


def embedded(out: Path) -> dict:
    """The page's data, the lazily unpacked parts included."""
    from apbench.results.browser import unpack_lazy

    text = (out / "index.html").read_text()
    data = json.loads(re.search(r'<script type="application/json" id="apbench-data">(.*?)</script>', text, re.S).group(1))
    for part in ("details", "pairs"):
        packed = re.search(f'<script type="application/octet-stream" id="apbench-{part}">(.*?)</script>', text, re.S)
        data[part] = unpack_lazy(packed.group(1))
    return data


def test_loads_offline_without_errors_and_shows_every_cell(page, study):
    out, df = study
    p = page()
    assert p.errors == []
    schemes = {r.split(":", 1)[0] for r in p.requests}
    assert schemes <= {"file", "data"}, p.requests
    assert sorted(p.labels()) == sorted(k[3] for k in cells(df))
    assert len(p.labels()) == 14  # 7 cells on each of 2 datasets
    assert p.page.inner_text("#count") == "· 14 of 14 cells shown"
    figures = p.page.eval_on_selector_all("#figures img", "imgs => imgs.map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert figures == [["./acc_vs_cost-m_small-vtab1k.png", 1], ["./curves/curve%20a%40b%3D1.png", 1]]  # not runs/


def test_filters_leave_the_expected_rows_and_say_so(page, study):
    out, df = study
    p = page()
    p.page.select_option("#f-family", "prompt")
    want = sorted(k[3] for k in cells(df) if method_kind(cells(df)[k]["method"].iloc[0]) == "prompt")
    assert sorted(p.labels()) == want and len(want) == 6  # ap@4, ap@8, vp on two datasets
    assert "method family: prompt" in p.page.inner_text("#active")
    p.page.select_option("#f-dataset", "d_str")
    assert sorted(p.labels()) == ["ap@4", "ap@8", "vp"]
    p.page.fill("#f-q", "AP@")
    assert sorted(p.labels()) == ["ap@4", "ap@8"]
    assert p.page.inner_text("#count") == "· 2 of 14 cells shown"
    p.page.click("#reset")
    assert len(p.labels()) == 14 and p.page.input_value("#f-family") == ""


def test_sorting_orders_by_the_column_numbers(page, study):
    out, df = study
    means = {}
    for (_, _, dataset, label), g in cells(df).items():
        if dataset == "d_nat":
            means[label] = g[ACC].mean()
    p = page(fragment="#dataset=d_nat")
    p.page.click('#methods th[data-col="test top-1"]')
    assert p.labels() == sorted(means, key=lambda k: (means[k], k))
    p.page.click('#methods th[data-col="test top-1"]')
    assert p.labels() == sorted(means, key=lambda k: (-means[k], k))
    p.page.click('#methods th[data-col="method"]')
    assert p.labels() == sorted(means)


@pytest.mark.parametrize("cost, column, scale, prompts", [("params", "params.trainable", 1.0, False),
                                                          ("memory", "efficiency.memory_bytes", 1e-6, True)],
                         ids=["params, all cells", "memory, prompts only"])
def test_the_front_is_the_python_front_of_what_the_filters_leave(page, study, cost, column, scale, prompts):
    out, df = study
    p = page(fragment=f"#cost={cost}" + ("&family=prompt" if prompts else ""))
    for (model, protocol, dataset), group in final_ok(df).groupby(["model", "protocol", "dataset"]):
        kept = {label: g for label, g in group.groupby("label")
                if not prompts or method_kind(g["method"].iloc[0]) == "prompt"}
        labels = list(kept)
        xs = [kept[k][column].mean() * scale for k in labels]
        ys = [kept[k][ACC].mean() for k in labels]
        want = sorted(labels[i] for i in pareto_front(xs, ys))
        got = p.page.eval_on_selector_all(f'.panel[data-dataset="{dataset}"] [data-front="1"]',
                                          "cs => cs.map(c => c.dataset.label)")  # drawn, or listed as far below
        assert sorted(got) == want and 1 < len(want) < len(labels), (dataset, got, want)


def test_comparison_shows_the_stats_tables_difference_and_p(page, study):
    out, df = study
    data = embedded(out)
    ids = {(r["dataset"], r["label"]): r["id"] for r in data["rows"]}
    table = stats_tables(df, "linear_probe")[("m_small", "vtab1k")].set_index(["dataset", "method"])
    p = page()
    for label in ("lora", "ap@4", "full_ft"):
        p.page.evaluate(f"location.hash = 'a={ids[('d_nat', label)]}&b={ids[('d_nat', 'linear_probe')]}'")
        p.page.wait_for_function("t => document.getElementById('drawer-title').textContent === t",
                                 arg=f"{label} against linear_probe")
        shown = dict(zip(p.page.eval_on_selector_all("#drawer-body dt", "d => d.map(x => x.textContent)"),
                         p.page.eval_on_selector_all("#drawer-body dd", "d => d.map(x => x.textContent)")))
        want = table.loc[("d_nat", label)]
        assert (shown["Δ"], shown["95% CI of Δ"], shown["p"], shown["test"], shown["significant (p < 0.05)"]) == \
            (want["Δ vs linear_probe"], want["Δ 95% CI"], want["p"], want["test"], want["significant"])
        assert p.page.query_selector("#unpaired") is None
    # bitfit's records hold no predictions: the unpaired test, said so
    p.page.evaluate(f"location.hash = 'a={ids[('d_nat', 'bitfit')]}&b={ids[('d_nat', 'linear_probe')]}'")
    p.page.wait_for_selector("#unpaired")
    assert p.page.inner_text("#compare-delta").startswith(f"Δ = {table.loc[('d_nat', 'bitfit'), 'Δ vs linear_probe']} points")
    # two ticks in the table open the same comparison
    p.page.evaluate("location.hash = ''")
    p.page.click('#methods tr[data-label="lora"] input[type=checkbox] >> nth=0')
    p.page.click('#methods tr[data-label="linear_probe"] input[type=checkbox] >> nth=0')
    assert p.drawer() == "lora against linear_probe"


def test_a_cells_detail_shows_its_selection_curves_and_records(page, study):
    out, df = study
    p = page(fragment="#dataset=d_nat")
    p.page.click('#methods tr[data-label="ap@4"]')
    assert p.drawer() == "ap@4"
    runs = p.page.eval_on_selector_all("#select-runs tbody tr", "rs => rs.map(r => [r.className, r.children[1].textContent])")
    assert runs == [["", "lr=0.01"], ["chosen", "lr=0.1"]]  # the final runs chose lr 0.1 (index 1)
    assert p.page.inner_text("#why").startswith("Chosen: run 2, highest val top-1 (78) of the 2 select runs")
    links = p.page.eval_on_selector_all("#drawer-body a", "as => as.map(a => a.getAttribute('href'))")
    assert len(links) == 2 + 3 and all((out / h).resolve().is_file() for h in links)
    assert p.page.locator("#drawer-body svg").count() == 2  # val top-1 and train loss
    assert "lr=high" in p.page.inner_text("#why")
    p.page.click("#drawer-close")
    assert p.page.is_hidden("#drawer")


def test_injected_markup_runs_nothing_even_without_the_csp(browser, hostile):
    out, df = hostile
    raw = (out / "index.html").read_text()
    assert "<script>window" not in raw and "<img src=x" not in raw  # escaped inside the JSON
    for context in ({}, {"bypass_csp": True}):
        p = Page(browser, out, **context)
        try:
            assert p.page.evaluate("window.__pwned") is None
            assert p.page.query_selector("img[src=x]") is None and p.page.query_selector("main script") is None
            assert SCRIPT in p.labels() and IMG in [row[1] for row in p.table()]
            p.page.click(f'#methods tr[data-label="{SCRIPT}"]')
            assert p.drawer() == SCRIPT
            assert p.page.evaluate("window.__pwned") is None and p.errors == []
        finally:
            p.close()


def test_nan_and_infinity_records_enter_no_row(browser, hostile):
    # Issue 26 item 10: a record with a NaN or infinite value is listed as invalid (`record skipped: ...`)
    # and enters no table, the page's included; no cell shows nan or inf.
    out, _ = hostile
    p = Page(browser, out)
    try:
        assert "bitfit" not in [r[0] for r in p.table()[1:]]
        text = " ".join(c for r in p.table() for c in r)
        assert not re.search(r"\b(nan|NaN|inf|Infinity|null|undefined)\b", text)
    finally:
        p.close()


def test_csv_export_is_exactly_the_rows_the_filters_show(page, study):
    p = page(fragment="#family=prompt&sort=test%20top-1&desc=1")
    with p.page.expect_download() as dl:
        p.page.click("#export-csv")
    rows = list(csv.reader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8"))))
    shown = p.table()
    head = shown[0]
    assert rows[0][:4] == ["method", "backbone", "protocol", "dataset"] and rows[0][4:] == head[2:]
    assert [[r[0], r[3], *r[4:]] for r in rows[1:]] == [[r[0], r[1], *r[2:]] for r in shown[1:]]
    assert len(rows) == 1 + 6 and p.page.inner_text("#export-csv") == "export CSV of these 6 rows"


def test_the_url_hash_restores_the_view(page, study):
    out, _ = study
    p = page()
    p.page.select_option("#f-dataset", "d_str")
    p.page.select_option("#f-cost", "step")
    p.page.click('#methods th[data-col="trainable params"]')
    p.page.click('#methods th[data-col="trainable params"]')
    p.page.click('#methods tr[data-label="lora"]')
    url = p.page.url
    assert "dataset=d_str" in url and "desc=1" in url and "cost=step" in url
    q = page(fragment="#" + url.split("#", 1)[1])
    assert q.labels() == p.labels() and q.page.input_value("#f-dataset") == "d_str"
    assert q.page.input_value("#f-cost") == "step" and q.drawer() == "lora"
    assert q.page.eval_on_selector("th.sorted", "t => t.dataset.col + (t.classList.contains('desc') ? ' desc' : '')") == \
        "trainable params desc"


def test_suite_pivot_with_group_means(page, study):
    p = page()
    assert p.page.is_visible("#pivot-section")
    names = p.page.eval_on_selector_all("#pivots tbody tr", "rs => rs.map(r => r.children[0].textContent)")
    assert names[:2] == ["d_nat", "d_str"] and "mean: natural" in names and "mean over datasets" in names
    p.page.select_option("#f-dataset", "d_nat")
    assert p.page.is_hidden("#pivot-section")  # one dataset: the methods table says it all


def test_a_long_table_draws_its_first_rows_and_all_on_request(browser, study, tmp_path):
    from apbench.results.browser import render_page

    data = embedded(study[0])
    data["meta"]["row_cap"] = 5
    (tmp_path / "index.html").write_text(render_page(data))
    p = Page(browser, tmp_path, "#sort=test%20top-1&desc=1")
    try:
        top = sorted(data["rows"], key=lambda r: -r["mean"])
        assert p.labels() == [r["label"] for r in top[:5]]
        assert p.page.inner_text("#more").startswith("The first 5 of 14 rows (in this order)")
        with p.page.expect_download() as dl:
            p.page.click("#export-csv")
        assert len(Path(dl.value.path()).read_text().splitlines()) == 1 + 14  # the export holds them all
        p.page.click("#show-all")
        assert p.labels() == [r["label"] for r in top] and "all=1" in p.page.url and p.page.inner_text("#more") == ""
    finally:
        p.close()


def test_a_point_far_below_the_rest_is_listed_not_drawn(browser, study, tmp_path):
    from apbench.results.browser import render_page

    data = embedded(study[0])
    cheap = next(r for r in data["rows"] if r["dataset"] == "d_nat" and r["label"] == "linear_probe")
    cheap.update(mean=30.0, lo=28.0, hi=32.0)  # the cheapest cell, 40 points under the rest: on the front
    (tmp_path / "index.html").write_text(render_page(data))
    p = Page(browser, tmp_path, "#dataset=d_nat")
    try:
        assert p.page.query_selector('circle[data-label="linear_probe"]') is None
        listed = p.page.inner_text(".panel .far")
        assert listed.startswith("Far below the rest, not drawn: linear_probe 30.00 [28.00, 32.00] at 5.13k (on the front)")
        rows = [r for r in data["rows"] if r["dataset"] == "d_nat"]
        want = sorted(rows[i]["label"] for i in pareto_front([r["cost"]["params"] for r in rows], [r["mean"] for r in rows]))
        got = p.page.eval_on_selector_all('.panel [data-front="1"]', "cs => cs.map(c => c.dataset.label)")
        assert sorted(got) == want and "linear_probe" in want
    finally:
        p.close()
