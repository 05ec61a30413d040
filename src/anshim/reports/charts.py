"""One declarative Vega-Lite specification per chart (altair), the same for the browser
(vendored vega-embed) and the PDF (vl-convert renders it to SVG)."""

from __future__ import annotations

import functools
import re
from typing import Any

import altair as alt
from altair.utils.schemapi import debug_mode

from anshim.reports.figures import Table

FONT = "Noto Sans CJK KR"


def bar_spec(table: Table, value_column: int | None = None,
             validate: bool = False) -> dict[str, Any]:
    """A horizontal bar chart of one numeric column (the table's `chart_column` unless told)
    against the row labels; suppressed cells are left out, never drawn as zero."""
    if value_column is None:
        value_column = table.chart_column
    label = str(table.columns[0])
    value = str(table.columns[value_column])
    data = [{"label": str(row[0]), "value": row[value_column]}
            for i, row in enumerate(table.rows)
            if (i, value_column) not in table.suppressed and row[value_column] is not None]
    if validate:
        return _build(str(table.title), label, value, data, validate=True)
    # The chart's shape depends on its titles only: altair builds it once per titles and
    # language (a few milliseconds a chart, 20 charts a page), the data and the height are
    # put in per call. tests/reports/test_views.py checks the result equals a fresh,
    # validated build.
    shape = _shape(str(table.title), label, value)
    return {**shape, "data": {"values": data}, "height": _height(data)}


def _height(data: list[dict[str, Any]]) -> int:
    return max(60, 22 * len(data))


def _build(title: str, label: str, value: str, data: list[dict[str, Any]],
           validate: bool = False) -> dict[str, Any]:
    # Not validated against the Vega-Lite JSON schema on every page (altair checks every object
    # it builds): the spec's shape is fixed by this function, only the data changes; the check
    # took half the dashboard's time. tests/reports/test_views.py validates it (validate=True).
    with debug_mode(validate):
        chart = alt.Chart(alt.Data(values=data)).mark_bar().encode(
            y=alt.Y("label:N", title=label, sort=None),
            x=alt.X("value:Q", title=value),
            tooltip=[alt.Tooltip("label:N", title=label), alt.Tooltip("value:Q", title=value)],
        ).properties(title=title, width="container", height=_height(data))
        spec: dict[str, Any] = chart.configure(font=FONT).to_dict(validate=validate)
    return spec


@functools.lru_cache(maxsize=512)
def _shape(title: str, label: str, value: str) -> dict[str, Any]:
    """The spec without its data (shared between calls: callers copy, never change it)."""
    spec = _build(title, label, value, [])
    spec.pop("data", None)
    spec.pop("height", None)
    return spec


def svg(spec: dict[str, Any], width: int = 480) -> str:
    import vl_convert as vlc

    fixed = dict(spec, width=width)
    out: str = vlc.vegalite_to_svg(fixed)
    # SVG's <line> defaults x1/y1/x2/y2 to 0 and vl-convert leaves them out; fpdf2's SVG
    # reader needs them spelled out.
    # and empty paths (d="": nothing to draw) are refused by it too
    return _EMPTY_PATH.sub("", _LINE.sub(_complete_line, out))


_EMPTY_PATH = re.compile(r"<path\b[^>]*\sd=\"\"[^>]*/?>(</path>)?")


_LINE = re.compile(r"<line\b([^>]*)>")


def _complete_line(m: re.Match[str]) -> str:
    attrs = m.group(1)
    for name in ("x1", "y1", "x2", "y2"):
        if not re.search(rf"\b{name}=", attrs):
            attrs = f' {name}="0"' + attrs
    return f"<line{attrs}>"
