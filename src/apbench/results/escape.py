"""Strings from records, made inert for each table format: a record is data anyone can write.

A method named ``<script>...`` must not reach a Markdown file as raw HTML (GitHub and most viewers render
inline HTML), a ``|`` must not split a Markdown cell, a newline or an ANSI escape must not break a row or
a terminal, and a cell starting with ``=`` must not run as a spreadsheet formula when a CSV is opened.
LaTeX special characters are escaped by pandas' ``to_latex(escape=True)``.
"""
from __future__ import annotations

import re

import pandas as pd

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_FORMULA = re.compile(r"^(?:[=@\t\r]|[+-](?![\d.\s]|$))")  # '-' alone and signed numbers ('+5.18') stay


def visible(text: str) -> str:
    """Control characters (newlines, ANSI escapes) as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def markdown(text: str) -> str:
    # Only a '<' that could open a tag, comment or autolink ('<1e-4', a p-value, stays as it is).
    return _TAG.sub("&lt;", visible(text)).replace("|", r"\|")


def csv(text: str) -> str:
    text = visible(text)
    return "'" + text if _FORMULA.match(text) else text


def latex(text: str) -> str:
    return visible(text)  # the specials are escaped by to_latex(escape=True)


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_text(text: str) -> str:
    """Running LaTeX text (a note under a table), outside pandas' table escaping."""
    return "".join(_TEX.get(ch, ch) for ch in visible(text))


def strings(table: pd.DataFrame, fn) -> pd.DataFrame:
    """``table`` with ``fn`` applied to every string: cells, index and column labels, and their names."""
    def one(v):
        return fn(v) if isinstance(v, str) else v

    def labels(index: pd.Index) -> pd.Index:
        if isinstance(index, pd.MultiIndex):
            return index.set_levels([lv.map(one) for lv in index.levels]).set_names([one(n) for n in index.names])
        return index.map(one).rename(one(index.name))
    out = table.copy()
    for c in out.columns[[dt == object or pd.api.types.is_string_dtype(dt) for dt in out.dtypes]]:
        out[c] = out[c].map(one)  # only text columns: numbers and nullable integers keep their dtype
    out.index, out.columns = labels(table.index), labels(table.columns)
    return out
