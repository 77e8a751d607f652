"""The results browser: one self-contained ``index.html`` per results folder (``apbench results DIR --html``).

The page needs nothing but a browser: the data (``browser_data.page_data``) sits inline as JSON, the
script and the style inline too, figures and records are linked by relative paths, so it opens from
``file://`` and makes no network request. Safe with any record:

- the JSON is embedded in a ``<script type="application/json">`` with ``<``, ``>`` and ``&`` written
  as ``\\u003c`` ..., so no string from a record can close the tag (the parts only a click needs,
  ``LAZY``, as base64 of gzip'd JSON, whose alphabet holds none of them); the script renders every
  string with ``textContent``, never as HTML;
- a Content-Security-Policy lets only this page's own script and style run (by their SHA-256), loads
  images from files and ``data:`` only and allows no connection at all.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import os
from importlib import resources
from pathlib import Path
from string import Template

import pandas as pd

from .browser_data import page_data

PAGE_NAME = "index.html"


def _asset(name: str) -> str:
    return resources.files("apbench.results").joinpath("browser_assets", name).read_text(encoding="utf-8")


def embed_json(data) -> str:
    """JSON that is safe inside a <script> element whatever its strings hold."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


# What only a click needs (a cell's detail, a comparison) travels gzip-compressed and is unpacked on the
# first click: a 10,000-record page is 2 MB instead of 7 and draws its first view in half the time.
LAZY = ("details", "pairs")


def pack_lazy(value) -> str:
    """One LAZY part as base64 of gzip'd JSON (no ``<``, ``>`` or ``&`` in that alphabet). Each part is
    its own element, unpacked on its own: a detail never waits for the comparisons' JSON."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)).decode()


def unpack_lazy(text: str) -> dict:
    return json.loads(gzip.decompress(base64.b64decode(text)))


def render_page(data: dict) -> str:
    script, style = _asset("app.js"), _asset("style.css")
    csp = (f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(style)}; "
           "img-src 'self' file: data:; connect-src 'none'; base-uri 'none'; form-action 'none'")
    eager = {k: v for k, v in data.items() if k not in LAZY}
    return Template(_asset("page.html")).substitute(
        csp=csp, title=html.escape("apbench: " + str(data["meta"]["title"])), style=style,
        data=embed_json(eager), details=pack_lazy(data["details"]), pairs=pack_lazy(data["pairs"]), script=script)


def write_page(records: list[dict], df: pd.DataFrame, out: str | os.PathLike, source: str | os.PathLike,
               bad: int = 0) -> Path:
    """Write ``out/index.html`` for ``records`` (their frame ``df``, read from ``source``); atomic."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = render_page(page_data(records, df, out, source, bad))
    path = out / PAGE_NAME
    tmp = out / f".{PAGE_NAME}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
