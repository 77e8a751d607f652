// apbench results browser: renders the data apbench.results.browser_data embedded in this page.
// Every string from the records is set with textContent or setAttribute, never parsed as HTML.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("apbench-data").textContent);
  const ROWS = DATA.rows, COLS = DATA.columns;
  const KEYS = [["model", "backbone"], ["protocol", "protocol"], ["dataset", "dataset"]];
  const FILTERS = [["model", "backbone"], ["protocol", "protocol"], ["group", "dataset group"],
                   ["dataset", "dataset"], ["family", "method family"]];
  const STATE_KEYS = ["model", "protocol", "group", "dataset", "family", "q", "sort", "desc", "cost", "cell", "a", "b", "all"];
  const COLOURS = {"prompt": "#1f77b4", "adapter": "#2ca02c", "low-rank / peft": "#9467bd",
                   "partial tuning": "#e6a000", "baseline": "#555555", "other": "#d62728"};
  const MAX_PANELS = 8;
  const ROW_CAP = DATA.meta.row_cap || 200;  // rows drawn before "show all" (browser_data.ROW_CAP)
  const SVGNS = "http://www.w3.org/2000/svg";
  // The cells' details and the comparisons: gzip'd JSON, each unpacked on its first use (browser.LAZY).
  const unpacked = {};
  function lazy(name) {
    if (!unpacked[name]) {
      const text = atob(document.getElementById("apbench-" + name).textContent.trim());
      const bytes = new Uint8Array(text.length);
      for (let k = 0; k < text.length; k++) bytes[k] = text.charCodeAt(k);
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      unpacked[name] = new Response(stream).text().then((t) => JSON.parse(t));
    }
    return unpacked[name];
  }
  let drawerToken = 0;
  const byId = {};
  ROWS.forEach((r, i) => { byId[r.id] = i; });
  let state = {};

  // ------------------------------------------------------------------ small helpers
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, v);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function $(id) { return document.getElementById(id); }
  // A path from the data (relative to this page) as a link that can only ever be relative.
  function relHref(path) {
    if (!path) return null;
    return path.split("/").map((p) => (p === ".." || p === "." ? p : encodeURIComponent(p))).join("/")
      .replace(/^(?!\.\.?\/)/, "./");
  }
  function fmt(v, digits) { return (v === null || v === undefined || !isFinite(v)) ? "" : v.toFixed(digits); }
  function uniq(values) { return Array.from(new Set(values)).sort((a, b) => String(a).localeCompare(String(b))); }
  // A column of words (converged, edge flags), not numbers: left-aligned, allowed to wrap.
  const TEXT_COLS = new Set(COLS.filter((c, k) => ROWS.some((r) => r.cells[k][0] && r.cells[k][0] !== "-") &&
                                             ROWS.every((r) => r.cells[k][1] === null)));
  const varying = {};
  KEYS.forEach(([k]) => { varying[k] = uniq(ROWS.map((r) => r[k])).length > 1; });

  // ------------------------------------------------------------------ state <-> URL hash
  function readHash() {
    const p = new URLSearchParams(location.hash.replace(/^#/, ""));
    const s = {};
    for (const k of STATE_KEYS) if (p.has(k)) s[k] = p.get(k);
    if (!(s.cost in DATA.costs)) s.cost = Object.keys(DATA.costs)[0];
    return s;
  }
  function writeHash() {
    const p = new URLSearchParams();
    for (const k of STATE_KEYS) if (state[k]) p.set(k, state[k]);
    const hash = "#" + p.toString();
    if (location.hash !== hash && !(hash === "#" && !location.hash)) history.replaceState(null, "", hash);
  }
  const DRAWER_KEYS = ["cell", "a", "b"];
  function setState(change) {
    const only = Object.keys(change).every((k) => DRAWER_KEYS.includes(k) || (state[k] || "") === (change[k] || ""));
    Object.assign(state, change);
    writeHash();
    if (only) { markSelected(); renderDrawer(); } else render();  // opening a cell redraws no table or plot
  }
  function markSelected() {
    const picked = [state.a, state.b];
    for (const row of document.querySelectorAll("#methods tbody tr")) {
      const id = row.dataset.id;
      row.className = state.cell === id || picked.includes(id) ? "selected" : "";
      row.querySelector("input[type=checkbox]").checked = picked.includes(id);
    }
  }

  // ------------------------------------------------------------------ filtering and sorting
  function matches(r) {
    for (const [k] of FILTERS) if (state[k] && String(r[k]) !== state[k]) return false;
    if (state.q) {
      const q = state.q.toLowerCase();
      if (![r.label, r.method, r.dataset, r.model, r.family, r.protocol].some((t) => String(t).toLowerCase().includes(q)))
        return false;
    }
    return true;
  }
  function sortValue(r, col) {
    if (col === "method") return [null, r.label];
    const k = KEYS.find(([key]) => key === col);
    if (k) return [null, String(r[col])];
    const c = r.cells[COLS.indexOf(col)] || ["", null];
    return [c[1], c[0]];
  }
  function visibleRows() {
    const idx = [];
    ROWS.forEach((r, i) => { if (matches(r)) idx.push(i); });
    if (state.sort && (state.sort === "method" || COLS.includes(state.sort) || KEYS.some(([k]) => k === state.sort))) {
      const dir = state.desc ? -1 : 1;
      idx.sort((i, j) => {
        const [na, ta] = sortValue(ROWS[i], state.sort), [nb, tb] = sortValue(ROWS[j], state.sort);
        const emptyA = na === null && ta === "", emptyB = nb === null && tb === "";
        if (emptyA !== emptyB) return emptyA ? 1 : -1;  // empty cells last, either direction
        if (na !== null && nb !== null && na !== nb) return dir * (na - nb);
        if (na !== null && nb === null) return -1;
        if (na === null && nb !== null) return 1;
        return dir * String(ta).localeCompare(String(tb)) || (i - j);
      });
    }
    return idx;
  }

  // ------------------------------------------------------------------ header and filters
  function renderHeader() {
    const m = DATA.meta;
    document.title = "apbench: " + m.title;
    $("title").textContent = m.title;
    $("subtitle").textContent = m.subtitle || "";
    const meta = $("meta");
    clear(meta);
    const statuses = Object.entries(m.statuses || {}).map(([k, v]) => v + " " + k).join(", ");
    meta.append(m.records + " run records (" + statuses + ") from ");
    meta.append(el("a", {href: relHref(m.source)}, m.source));
    if (m.unreadable) meta.append("; " + m.unreadable + " unreadable files skipped");
    if (m.last_finished) meta.append("; last run finished " + m.last_finished);
    meta.append(". Written by apbench results --html.");
    const scope = FILTERS.map(([key, name]) => [name, uniq(ROWS.map((r) => String(r[key])).filter((v) => v !== ""))])
      .filter(([, values]) => values.length === 1).map(([name, values]) => name + " " + values[0]);
    $("scope").textContent = scope.length ? "Every cell here: " + scope.join(" · ") + "." : "";
  }
  function renderFilters() {
    const nav = clear($("filters"));
    for (const [key, name] of FILTERS) {
      const values = uniq(ROWS.map((r) => String(r[key])).filter((v) => v !== ""));
      const label = el("label", {}, name);
      const sel = el("select", {id: "f-" + key, "data-filter": key});
      sel.append(el("option", {value: ""}, "all (" + values.length + ")"));
      for (const v of values) sel.append(el("option", {value: v}, v));
      sel.value = values.includes(state[key]) ? state[key] : "";
      if (values.length < 2 && !state[key]) continue;  // nothing to choose: the scope line names it
      sel.addEventListener("change", () => setState({[key]: sel.value, cell: state.cell}));
      label.append(sel);
      nav.append(label);
    }
    const ql = el("label", {}, "search");
    const q = el("input", {type: "search", id: "f-q", placeholder: "method, dataset, backbone", value: state.q || ""});
    q.addEventListener("input", () => setState({q: q.value}));
    ql.append(q);
    nav.append(ql);
    const cl = el("label", {}, "cost axis");
    const cost = el("select", {id: "f-cost"});
    for (const [k, name] of Object.entries(DATA.costs)) cost.append(el("option", {value: k}, name));
    cost.value = state.cost;
    cost.addEventListener("change", () => setState({cost: cost.value}));
    cl.append(cost);
    nav.append(cl);
  }
  function renderActive(shown) {
    const box = clear($("active"));
    box.append(el("span", {}, "Filters:"));
    let any = false;
    for (const [key, name] of [...FILTERS, ["q", "search"]]) {
      if (!state[key]) continue;
      any = true;
      const chip = el("span", {class: "chip", "data-chip": key}, name + ": " + state[key]);
      const x = el("button", {type: "button", "aria-label": "clear " + name, title: "clear"}, "×");
      x.addEventListener("click", () => { setState({[key]: ""}); renderFilters(); });
      chip.append(x);
      box.append(chip);
    }
    if (!any) box.append(el("span", {class: "note"}, "none"));
    box.append(el("span", {class: "count", id: "count"}, "· " + shown + " of " + ROWS.length + " cells shown"));
    box.append(el("span", {class: "spacer"}));
    if (any) {
      const reset = el("button", {type: "button", id: "reset"}, "clear all filters");
      reset.addEventListener("click", () => {
        const blank = {q: ""};
        FILTERS.forEach(([k]) => { blank[k] = ""; });
        setState(blank);
        renderFilters();
      });
      box.append(reset);
    }
    const csv = el("button", {type: "button", id: "export-csv"}, "export CSV of these " + shown + " rows");
    csv.addEventListener("click", exportCsv);
    box.append(csv);
  }

  // ------------------------------------------------------------------ methods table
  function keyColumns() { return KEYS.filter(([k]) => varying[k]); }
  function renderTable(idx) {
    const table = clear($("methods"));
    const thead = el("thead"), tr = el("tr");
    tr.append(el("th", {class: "pick", title: "tick two rows to compare them"}, "cmp"));
    const heads = [["method", "method"], ...keyColumns().map(([k, name]) => [k, name])];
    for (const [k, name] of heads) tr.append(sortHead(k, name, "key"));
    for (const c of COLS) tr.append(sortHead(c, c, TEXT_COLS.has(c) ? "key" : ""));
    thead.append(tr);
    table.append(thead);
    const tbody = el("tbody");
    const picked = [state.a, state.b];
    const drawn = state.all ? idx : idx.slice(0, ROW_CAP);
    for (const i of drawn) {
      const r = ROWS[i];
      const row = el("tr", {"data-id": r.id, "data-label": r.label});
      if (state.cell === r.id || picked.includes(r.id)) row.className = "selected";
      const pick = el("td", {class: "pick"});
      const box = el("input", {type: "checkbox", "aria-label": "compare " + r.label});
      box.checked = picked.includes(r.id);
      box.addEventListener("click", (ev) => { ev.stopPropagation(); togglePick(r.id, box.checked); });
      pick.append(box);
      pick.addEventListener("click", (ev) => ev.stopPropagation());
      row.append(pick);
      row.append(el("td", {class: "key"}, r.label));
      for (const [k] of keyColumns()) row.append(el("td", {class: "key"}, r[k]));
      r.cells.forEach((c, k) => row.append(el("td", {class: TEXT_COLS.has(COLS[k]) ? "text" : ""}, c[0])));
      row.addEventListener("click", () => setState({cell: r.id, a: "", b: ""}));
      tbody.append(row);
    }
    table.append(tbody);
    $("empty").hidden = idx.length > 0;
    const more = clear($("more"));
    if (drawn.length < idx.length) {
      more.append("The first " + drawn.length + " of " + idx.length + " rows (in this order); the plot, the comparisons and the CSV export use all of them. ");
      const all = el("button", {type: "button", id: "show-all"}, "show all " + idx.length + " rows");
      all.addEventListener("click", () => setState({all: "1"}));
      more.append(all);
    }
  }
  function sortHead(key, name, cls) {
    const th = el("th", {class: cls, "data-col": key, title: "sort by " + name}, name);
    if (state.sort === key) th.classList.add("sorted");
    if (state.sort === key && state.desc) th.classList.add("desc");
    th.addEventListener("click", () => {
      if (state.sort !== key) setState({sort: key, desc: ""});
      else if (!state.desc) setState({desc: "1"});
      else setState({sort: "", desc: ""});
    });
    return th;
  }
  function togglePick(id, on) {
    let picks = [state.a, state.b].filter((x) => x && x !== id);
    if (on) picks.push(id);
    picks = picks.slice(-2);
    setState({a: picks[0] || "", b: picks[1] || "", cell: ""});
  }

  // ------------------------------------------------------------------ CSV export of what the table shows
  function csvField(v) {
    const s = String(v === null || v === undefined ? "" : v);
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function csvText(idx) {
    const head = ["method", "backbone", "protocol", "dataset", ...COLS];
    const lines = [head.map(csvField).join(",")];
    for (const i of idx) {
      const r = ROWS[i];
      lines.push([r.label, r.model, r.protocol, r.dataset, ...r.cells.map((c) => c[0])].map(csvField).join(","));
    }
    return lines.join("\r\n") + "\r\n";
  }
  function exportCsv() {
    const a = el("a", {href: "data:text/csv;charset=utf-8," + encodeURIComponent(csvText(visibleRows())),
                       download: "apbench-" + DATA.meta.title.replace(/[^\w.-]+/g, "_") + ".csv"});
    document.body.append(a);
    a.click();
    a.remove();
  }

  // ------------------------------------------------------------------ accuracy against cost
  // The front as results.plots.pareto_front computes it: by cost (ties: higher accuracy first), keep
  // each point more accurate than every cheaper one.
  function paretoFront(points) {
    const order = points.slice().sort((p, q) => (p.cost - q.cost) || (q.acc - p.acc));
    const front = [];
    let best = -Infinity;
    for (const p of order) if (p.acc > best) { front.push(p); best = p.acc; }
    return front;
  }
  function niceTicks(lo, hi, n) {
    const span = hi - lo, step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(+t.toFixed(10));
    return ticks;
  }
  function logTicks(lo, hi) {
    const ticks = [];
    const mults = Math.log10(hi / lo) < 2.5 ? [1, 2, 5] : [1];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
      for (const m of mults) { const t = m * Math.pow(10, e); if (t >= lo && t <= hi) ticks.push(t); }
    return ticks;
  }
  function shortNumber(v) {
    const a = Math.abs(v);
    if (a >= 1e9) return +(v / 1e9).toPrecision(3) + "G";
    if (a >= 1e6) return +(v / 1e6).toPrecision(3) + "M";
    if (a >= 1e3) return +(v / 1e3).toPrecision(3) + "k";
    return String(+v.toPrecision(3));
  }
  function renderPlots(idx) {
    const box = clear($("plots"));
    const legend = el("div", {class: "legend"});
    const families = uniq(idx.map((i) => ROWS[i].family));
    for (const f of families) {
      const item = el("span");
      const sw = el("span", {class: "sw"});
      sw.style.background = COLOURS[f] || COLOURS.other;
      item.append(sw, f);
      legend.append(item);
    }
    box.append(legend);
    const groups = new Map();
    let unplotted = 0;
    for (const i of idx) {
      const r = ROWS[i], c = r.cost[state.cost];
      if (c === null || c === undefined || !(c > 0) || r.mean === null) { unplotted++; continue; }
      const g = [r.model, r.protocol, r.dataset].join("\u0000");
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push({i: i, cost: c, acc: r.mean, lo: r.lo === null ? r.mean : r.lo, hi: r.hi === null ? r.mean : r.hi});
    }
    const panels = el("div", {class: groups.size === 1 ? "panels single" : "panels"});
    let n = 0;
    for (const [g, pts] of groups) {
      if (n++ >= MAX_PANELS) break;
      panels.append(plotPanel(g.split("\u0000"), pts));
    }
    box.append(panels);
    if (groups.size > MAX_PANELS)
      box.append(el("p", {class: "note"}, "Showing " + MAX_PANELS + " of " + groups.size + " datasets × backbones: pick a dataset or backbone above to see the others."));
    if (unplotted) box.append(el("p", {class: "note"}, unplotted + " cell(s) without this cost or a test score are not drawn."));
    if (!groups.size) box.append(el("p", {class: "empty"}, "Nothing to draw for the cells the filters leave."));
  }
  // Points whose interval ends FAR_BELOW points under the best mean, and that would stretch the range
  // the others span by more than a tenth, are listed under the panel instead (as results.plots does).
  const FAR_BELOW = 15;
  function farBelow(pts) {
    const best = Math.max(...pts.map((p) => p.acc));
    const far = pts.map((p) => p.hi < best - FAR_BELOW);
    if (far.every(Boolean) || !far.some(Boolean)) return new Set();
    const rest = pts.filter((p, k) => !far[k]);
    const lo = Math.min(...rest.map((p) => p.lo)), hi = Math.max(...rest.map((p) => p.hi));
    return new Set(pts.filter((p, k) => far[k] && p.lo < lo - 0.1 * (hi - lo)).map((p) => p.i));
  }
  function plotPanel(key, all) {
    const [model, protocol, dataset] = key;
    const far = farBelow(all), pts = all.filter((p) => !far.has(p.i));
    const panel = el("div", {class: "panel", "data-dataset": dataset, "data-model": model, "data-protocol": protocol});
    panel.append(el("h3", {}, dataset + " · " + model + " · " + protocol));
    const W = 720, H = 400, L = 56, R = 16, T = 12, B = 44;
    const s = svg("svg", {viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "test top-1 against " + DATA.costs[state.cost]});
    let xlo = Math.min(...pts.map((p) => p.cost)), xhi = Math.max(...pts.map((p) => p.cost));
    if (xhi / xlo < 10) { const mid = Math.sqrt(xlo * xhi); xlo = mid / Math.sqrt(10); xhi = mid * Math.sqrt(10); }
    xlo /= 1.4; xhi *= 1.4;
    let ylo = Math.min(...pts.map((p) => p.lo)), yhi = Math.max(...pts.map((p) => p.hi));
    const pad = Math.max(0.5, (yhi - ylo) * 0.08);
    ylo -= pad; yhi += pad;
    const X = (v) => L + (Math.log10(v) - Math.log10(xlo)) / (Math.log10(xhi) - Math.log10(xlo)) * (W - L - R);
    const Y = (v) => T + (yhi - v) / (yhi - ylo) * (H - T - B);
    const axis = svg("g", {class: "axis"});
    for (const t of logTicks(xlo, xhi)) {
      axis.append(svg("line", {x1: X(t), x2: X(t), y1: T, y2: H - B, class: "grid"}));
      axis.append(svg("text", {x: X(t), y: H - B + 14, "text-anchor": "middle"}, shortNumber(t)));
    }
    for (const t of niceTicks(ylo, yhi, 6)) {
      axis.append(svg("line", {x1: L, x2: W - R, y1: Y(t), y2: Y(t), class: "grid"}));
      axis.append(svg("text", {x: L - 6, y: Y(t) + 4, "text-anchor": "end"}, t));
    }
    axis.append(svg("line", {x1: L, x2: W - R, y1: H - B, y2: H - B}));
    axis.append(svg("line", {x1: L, x2: L, y1: T, y2: H - B}));
    axis.append(svg("text", {x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle", class: "axis-title"}, DATA.costs[state.cost] + " (log)"));
    axis.append(svg("text", {x: 14, y: (T + H - B) / 2, "text-anchor": "middle", class: "axis-title",
                             transform: "rotate(-90 14 " + (T + H - B) / 2 + ")"}, "test top-1 (%)"));
    s.append(axis);
    const front = paretoFront(all);  // of every point, drawn or listed
    const onFront = new Set(front.map((p) => p.i));
    s.append(svg("polyline", {class: "front-line", points: front.filter((p) => !far.has(p.i)).map((p) => X(p.cost) + "," + Y(p.acc)).join(" ")}));
    const placed = pts.map((p) => [X(p.cost) - 5, Y(p.acc) - 5, 10, 10]);  // labels keep off every point
    for (const p of pts) {
      const r = ROWS[p.i], colour = COLOURS[r.family] || COLOURS.other;
      const g = svg("g", {});
      g.append(svg("line", {x1: X(p.cost), x2: X(p.cost), y1: Y(p.lo), y2: Y(p.hi), class: "bar", stroke: colour}));
      const dot = svg("circle", {cx: X(p.cost), cy: Y(p.acc), r: 4.5, class: "point" + (onFront.has(p.i) ? " front" : ""),
                                 fill: onFront.has(p.i) ? colour : "#fff", stroke: colour, "data-label": r.label, "data-id": r.id,
                                 "data-front": onFront.has(p.i) ? "1" : "0"});
      dot.append(svg("title", {}, r.label + ": " + fmt(r.mean, 2) + " [" + fmt(r.lo, 2) + ", " + fmt(r.hi, 2) + "], " +
                     DATA.costs[state.cost] + " " + shortNumber(p.cost)));
      dot.addEventListener("click", () => setState({cell: r.id, a: "", b: ""}));
      g.append(dot);
      s.append(g);
      placeLabel(s, placed, X(p.cost), Y(p.acc), r.label, [L, T, W - R, H - B]);
    }
    panel.append(s);
    if (far.size) {
      const note = el("p", {class: "note far"}, "Far below the rest, not drawn: ");
      all.filter((p) => far.has(p.i)).forEach((p, k) => {
        const r = ROWS[p.i];
        if (k) note.append("; ");
        note.append(el("span", {"data-label": r.label, "data-front": onFront.has(p.i) ? "1" : "0"},
                       r.label + " " + fmt(r.mean, 2) + " [" + fmt(r.lo, 2) + ", " + fmt(r.hi, 2) + "] at " +
                       shortNumber(p.cost) + (onFront.has(p.i) ? " (on the front)" : "")));
      });
      panel.append(note);
    }
    return panel;
  }
  // A label beside its point where it overlaps no other label (right, left, above, below), else none:
  // the point's tooltip still names it.
  function placeLabel(s, placed, x, y, text, area) {
    const w = 6.1 * text.length + 4, h = 12;
    const spots = [[x + 7, y - 6], [x - 7 - w, y - 6], [x - w / 2, y - 19], [x - w / 2, y + 7],
                   [x + 7, y - 17], [x + 7, y + 5], [x - 7 - w, y - 17], [x - 7 - w, y + 5]];
    for (const [bx, by] of spots) {
      if (bx < area[0] + 2 || bx + w > area[2] || by < area[1] || by + h > area[3]) continue;
      if (placed.some((b) => bx < b[0] + b[2] && b[0] < bx + w && by < b[1] + b[3] && b[1] < by + h)) continue;
      placed.push([bx, by, w, h]);
      s.append(svg("text", {x: bx + 2, y: by + 10, class: "ptlabel"}, text));
      return;
    }
  }

  // ------------------------------------------------------------------ suite pivot
  function renderPivots(idx) {
    const sec = $("pivot-section"), box = clear($("pivots"));
    const labels = new Set(idx.map((i) => ROWS[i].label));
    const shown = DATA.pivots.filter((p) => (!state.model || p.model === state.model) &&
                                            (!state.protocol || p.protocol === state.protocol));
    sec.hidden = !shown.length || !!state.dataset;
    for (const p of shown) {
      const cols = p.labels.map((l, j) => [l, j]).filter(([l]) => labels.has(l));
      if (!cols.length) continue;
      box.append(el("h3", {}, p.model + " · " + p.protocol));
      const t = el("table", {class: "pivot"}), head = el("tr");
      head.append(el("th", {class: "key"}, "dataset"));
      cols.forEach(([l]) => head.append(el("th", {}, l)));
      t.appendChild(el("thead")).append(head);
      const body = el("tbody");
      for (const row of p.rows) {
        if (!row.summary && state.group && !ROWS.some((r) => r.dataset === row.name && r.group === state.group)) continue;
        const tr = el("tr", {class: row.summary ? "summary" : ""});
        tr.append(el("td", {class: "key"}, row.name));
        cols.forEach(([, j]) => tr.append(el("td", {}, row.cells[j])));
        body.append(tr);
      }
      t.append(body);
      const wrap = el("div", {class: "scroll"});
      wrap.append(t);
      box.append(wrap);
    }
  }

  // ------------------------------------------------------------------ drawer: a cell, or two compared
  function openDrawer(title) {
    $("drawer").hidden = false;
    $("drawer-title").textContent = title;
    return clear($("drawer-body"));
  }
  function kv(pairs) {
    const dl = el("dl", {class: "kv"});
    for (const [k, v] of pairs) { dl.append(el("dt", {}, k)); dl.append(el("dd", {}, v === null || v === undefined ? "" : v)); }
    return dl;
  }
  function link(href, text) { return href ? el("a", {href: relHref(href)}, text) : el("span", {}, text); }
  function renderDrawer() {
    const token = ++drawerToken, drawer = $("drawer");
    delete drawer.dataset.ready;
    let draw = null, part = null;
    if (state.a && state.b && state.a in byId && state.b in byId) [part, draw] = ["pairs", (L) => renderCompare(byId[state.a], byId[state.b], L)];
    else if (state.cell && state.cell in byId) [part, draw] = ["details", (L) => renderDetail(byId[state.cell], L)];
    if (!draw) { drawer.hidden = true; return; }
    lazy(part).then((L) => {
      if (token !== drawerToken) return;  // the view changed while unpacking
      draw(L);
      drawer.dataset.ready = "1";
    });
  }
  function renderDetail(i, L) {
    const r = ROWS[i], d = L[i];
    const body = openDrawer(r.label);
    body.setAttribute("data-view", "detail");
    body.append(el("p", {class: "note"}, r.dataset + " · " + r.model + " · " + r.protocol + " · " + r.family));
    body.append(el("p", {class: "big"}, fmt(r.mean, 2) + (r.lo !== null ? "  [" + fmt(r.lo, 2) + ", " + fmt(r.hi, 2) + "]" : "")));
    body.append(el("p", {class: "note"}, "test top-1 (%), mean of " + r.n + " final run(s) with its 95 % interval"));
    const peers = ROWS.map((q, j) => [q, j]).filter(([q, j]) => j !== i && q.model === r.model && q.protocol === r.protocol && q.dataset === r.dataset);
    if (peers.length) {
      const lab = el("label", {class: "note"}, "compare with ");
      const sel = el("select", {id: "compare-with"});
      sel.append(el("option", {value: ""}, "choose a cell"));
      for (const [q] of peers) sel.append(el("option", {value: q.id}, q.label));
      sel.addEventListener("change", () => { if (sel.value) setState({a: r.id, b: sel.value, cell: ""}); });
      lab.append(sel);
      body.append(lab);
    }
    if (d.recipe) { body.append(el("h3", {}, "Recipe (as the records say)")); body.append(kv(Object.entries(d.recipe))); }
    const sel = d.selection;
    if (sel) {
      body.append(el("h3", {}, "Selection: " + sel.runs.length + " select runs" + (sel.rule ? ", " + sel.rule : "")));
      const text = (x) => Array.isArray(x) ? x.map(text).join(",") : String(x);
      const space = Object.entries(sel.space || {}).map(([k, v]) => [k, Array.isArray(v) ? v.map(text).join("  |  ") : text(v)]);
      if (space.length) body.append(kv(space));
      body.append(el("p", {id: "why"}, "Chosen: run " + (sel.chosen === null ? "?" : sel.chosen + 1) + ", " + sel.why +
                      (sel.edge && sel.edge.length ? " (on the edge of its space: " + sel.edge.join(", ") + ")" : "") + "."));
      const t = el("table", {class: "small", id: "select-runs"});
      const h = el("tr");
      ["#", "point", "val top-1", "val loss", "record"].forEach((x) => h.append(el("th", {class: x === "point" ? "key" : ""}, x)));
      t.appendChild(el("thead")).append(h);
      const tb = el("tbody");
      sel.runs.forEach((run, j) => {
        const tr = el("tr", {class: j === sel.chosen ? "chosen" : ""});
        const num = el("td", {}, j + 1);
        if (j === sel.chosen) num.append(el("span", {class: "badge ok"}, "chosen"));
        tr.append(num, el("td", {class: "text wrap"}, run.point), el("td", {}, fmt(run.val, 1)),
                  el("td", {}, fmt(run.val_loss, 4)));
        const c = el("td", {});
        c.append(link(run.href, run.run_id || ""));
        tr.append(c);
        tb.append(tr);
      });
      t.append(tb);
      const wrap = el("div", {class: "scroll"});
      wrap.append(t);
      body.append(wrap);
    } else {
      body.append(el("p", {class: "note"}, "No selection: the final runs used their configured point."));
    }
    body.append(el("h3", {}, "Final runs"));
    const ft = el("table", {class: "small", id: "final-runs"});
    const fh = el("tr");
    ["seed", "test top-1", "status", "record"].forEach((x) => fh.append(el("th", {}, x)));
    ft.appendChild(el("thead")).append(fh);
    const fb = el("tbody");
    for (const f of d.finals) {
      const tr = el("tr");
      tr.append(el("td", {}, f.seed), el("td", {}, fmt(f.test, 2)), el("td", {}, f.status));
      const c = el("td");
      c.append(link(f.href, f.run_id || ""));
      tr.append(c);
      fb.append(tr);
    }
    ft.append(fb);
    body.append(ft);
    body.append(el("h3", {}, "Learning curves"));
    const sc = d.curves.select || [];
    if (sc.some((h) => h.val_top1 !== undefined && h.val_top1 !== null))
      body.append(curve("val top-1 (%) of the chosen select run", [{name: "val", points: sc.map((h) => [h.epoch, h.val_top1])}]));
    const losses = [];
    if (sc.length) losses.push({name: "select run", points: sc.map((h) => [h.epoch, h.train_loss])});
    for (const f of d.curves.finals) if (f.history.length) losses.push({name: "final seed " + f.seed, points: f.history.map((h) => [h.epoch, h.train_loss])});
    if (losses.length) body.append(curve("train loss", losses));
    if (!sc.length && !losses.length) body.append(el("p", {class: "note"}, "The records hold no per-epoch history."));
    for (const [name, obj] of [["config", d.config], ["environment", d.env], ["preprocessing", d.preprocessing]]) {
      if (!obj) continue;
      const det = el("details");
      det.append(el("summary", {}, name + " (first final run)"));
      det.append(el("pre", {}, JSON.stringify(obj, null, 2)));
      body.append(det);
    }
  }
  const LINE_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"];
  function curve(title, series) {
    const W = 560, H = 190, L = 46, R = 10, T = 10, B = 30;
    const pts = series.flatMap((s) => s.points).filter((p) => p[0] !== null && p[1] !== null && p[1] !== undefined && isFinite(p[1]));
    const box = el("div", {class: "curve"});
    box.append(el("p", {class: "note"}, title));
    if (!pts.length) return box;
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
    let y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (y1 - y0 < 1e-9) { y0 -= 1; y1 += 1; }
    const pad = (y1 - y0) * 0.06;
    y0 -= pad; y1 += pad;
    const X = (v) => L + (v - x0) / (x1 - x0) * (W - L - R), Y = (v) => T + (y1 - v) / (y1 - y0) * (H - T - B);
    const s = svg("svg", {viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title});
    const axis = svg("g", {class: "axis"});
    for (const t of niceTicks(y0, y1, 4)) {
      axis.append(svg("line", {x1: L, x2: W - R, y1: Y(t), y2: Y(t), class: "grid"}));
      axis.append(svg("text", {x: L - 5, y: Y(t) + 4, "text-anchor": "end"}, t));
    }
    for (const t of niceTicks(x0, x1, 6).filter((t) => Number.isInteger(t))) axis.append(svg("text", {x: X(t), y: H - B + 14, "text-anchor": "middle"}, t));
    axis.append(svg("text", {x: (L + W - R) / 2, y: H - 3, "text-anchor": "middle", class: "axis-title"}, "epoch"));
    axis.append(svg("line", {x1: L, x2: W - R, y1: H - B, y2: H - B}));
    s.append(axis);
    series.forEach((sr, k) => {
      const p = sr.points.filter((q) => q[1] !== null && q[1] !== undefined && isFinite(q[1]));
      s.append(svg("polyline", {points: p.map((q) => X(q[0]) + "," + Y(q[1])).join(" "), fill: "none",
                                stroke: LINE_COLOURS[k % LINE_COLOURS.length], "stroke-width": 1.6}));
    });
    box.append(s);
    if (series.length > 1) {
      const lg = el("div", {class: "legend"});
      series.forEach((sr, k) => {
        const item = el("span"), sw = el("span", {class: "sw"});
        sw.style.background = LINE_COLOURS[k % LINE_COLOURS.length];
        item.append(sw, sr.name);
        lg.append(item);
      });
      box.append(lg);
    }
    return box;
  }
  function renderCompare(i, j, L) {
    const a = ROWS[i], b = ROWS[j];
    const body = openDrawer(a.label + " against " + b.label);
    body.setAttribute("data-view", "compare");
    const same = a.model === b.model && a.protocol === b.protocol && a.dataset === b.dataset;
    if (!same) {
      body.append(el("p", {id: "compare-result"}, "Not comparable: the two cells are on different datasets, backbones or protocols (" +
                      [a.dataset, a.model, a.protocol].join(" · ") + " vs " + [b.dataset, b.model, b.protocol].join(" · ") + ")."));
      return;
    }
    body.append(el("p", {class: "note"}, a.dataset + " · " + a.model + " · " + a.protocol));
    const packed = L[i + "," + j];
    const c = packed ? Object.fromEntries(DATA.pair_fields.map((k, n) => [k, packed[n]])) : null;
    if (c) c.test = DATA.pair_tests[c.test];
    if (!c) { body.append(el("p", {id: "compare-result"}, "No comparison in the records for this pair.")); return; }
    const unpaired = /^(unpaired|none)/.test(c.test);
    const big = el("p", {class: "big", id: "compare-delta"}, "Δ = " + c.diff + " points");
    if (unpaired) big.append(el("span", {class: "badge", id: "unpaired"}, "unpaired"));
    body.append(big);
    body.append(kv([["difference", a.label + " − " + b.label + " in test top-1 (%)"], ["Δ", c.diff], ["95% CI of Δ", c.ci],
                    ["p", c.p], ["test", c.test], ["significant (p < 0.05)", c.significant],
                    [a.label, fmt(a.mean, 2) + " (" + a.n + " runs)"], [b.label, fmt(b.mean, 2) + " (" + b.n + " runs)"]]));
    if (unpaired) body.append(el("p", {class: "note"}, "Without per-image predictions in both cells' records the test cannot pair the images: it is the conservative unpaired z-test of the two intervals."));
    const swap = el("button", {type: "button", id: "swap"}, "swap");
    swap.addEventListener("click", () => setState({a: b.id, b: a.id}));
    body.append(swap);
  }

  // ------------------------------------------------------------------ figures and files (once)
  function renderStatic() {
    const figs = clear($("figures"));
    const byFolder = new Map();
    for (const f of DATA.figures) {
      if (!byFolder.has(f.folder)) byFolder.set(f.folder, []);
      byFolder.get(f.folder).push(f);
    }
    if (!DATA.figures.length) figs.append(el("p", {class: "note"}, "No PNG figure in this folder."));
    for (const [folder, list] of byFolder) {
      figs.append(el("h3", {}, folder ? folder + "/" : "this folder"));
      const grid = el("div", {class: "figs"});
      for (const f of list) {
        const fig = el("figure");
        const a = el("a", {href: relHref(f.href), target: "_blank", rel: "noopener"});
        a.append(el("img", {src: relHref(f.href), alt: f.name, loading: "lazy"}));
        fig.append(a, el("figcaption", {}, f.name));
        grid.append(fig);
      }
      figs.append(grid);
    }
    const files = clear($("files"));
    for (const name of DATA.tables) {
      const li = el("li");
      li.append(link(name, name));
      files.append(li);
    }
    $("files-section").hidden = !DATA.tables.length;
    $("drawer-close").addEventListener("click", () => setState({cell: "", a: "", b: ""}));
    document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && !$("drawer").hidden) setState({cell: "", a: "", b: ""}); });
  }

  function render() {
    const idx = visibleRows();
    renderActive(idx.length);
    renderTable(idx);
    renderPlots(idx);
    renderPivots(idx);
    renderDrawer();
  }

  state = readHash();
  renderHeader();
  renderFilters();
  renderStatic();
  render();
  window.addEventListener("hashchange", () => { state = readHash(); renderFilters(); render(); });
  window.apbenchRendered = performance.now();  // the load benchmark reads it
})();
