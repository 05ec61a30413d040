"""The report files: PDF (fpdf2, Noto Sans CJK KR embedded, charts as SVG from vl-convert),
xlsx (openpyxl) and JSON, all from the same `Table` records."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

from anshim.reports import charts
from anshim.reports.figures import Period, Table

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
CJK_BOLD = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")
#: the Korean face inside the collection
CJK_FACE = 1

FORMATS = {"pdf": "application/pdf",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "json": "application/json"}


#: the tables whose total is a headline of the one-page summary (counts of one kind)
SUMMARY_KEYS = frozenset({"victims_by_age", "harm_types", "deletions_by_kind", "backlog"})


def _cell(table: Table, i: int, j: int, value: Any) -> str:
    if (i, j) in table.suppressed:
        return "—"
    return "" if value is None else str(value)


def _headline(table: Table) -> str:
    """A table's total for the one-page summary: a protected (public) table's own total row,
    as published (a dash where it is suppressed); else the sum of its counts."""
    from anshim.reports.public import total_label

    last = len(table.rows) - 1
    if table.rows and str(table.rows[-1][0]) == total_label():
        return _cell(table, last, 1, table.rows[-1][1])
    return str(sum(r[1] for i, r in enumerate(table.rows)
                   if isinstance(r[1], int) and (i, 1) not in table.suppressed))


def to_json(period: Period, tables: Sequence[Table], not_recorded: Sequence[Any]) -> bytes:
    return json.dumps({"period": period.label, "tables": [t.as_json() for t in tables],
                       "not_recorded": [str(x) for x in not_recorded]},
                      ensure_ascii=False, indent=2).encode()


def to_xlsx(period: Period, tables: Sequence[Table]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for t in tables:
        sheet = book.create_sheet(t.key[:31])
        sheet.append([str(t.title), period.label])
        sheet.append([str(c) for c in t.columns])
        for i, row in enumerate(t.rows):
            sheet.append([None if (i, j) in t.suppressed else v for j, v in enumerate(row)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_pdf(period: Period, tables: Sequence[Table], not_recorded: Sequence[Any],
           title: str | None = None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_font("noto", fname=str(CJK_FONT), collection_font_number=CJK_FACE)
    pdf.add_font("noto", style="B", fname=str(CJK_BOLD), collection_font_number=CJK_FACE)
    # the charts' SVG text names the font by its family (charts.FONT)
    pdf.add_font(charts.FONT, fname=str(CJK_FONT), collection_font_number=CJK_FACE)
    pdf.add_font(charts.FONT, style="B", fname=str(CJK_BOLD), collection_font_number=CJK_FACE)
    pdf.set_font("noto", size=11)
    heading = title or _("Anshim support center report")
    # The one-page summary: the headline figure of every table.
    pdf.add_page()
    pdf.set_font("noto", size=18)
    pdf.cell(0, 12, f"{heading} {period.label}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("noto", size=13)
    pdf.cell(0, 9, _("Summary"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("noto", size=10)
    for t in tables:
        if t.key not in SUMMARY_KEYS:
            continue
        pdf.cell(0, 7, f"{t.title}: {_headline(t)}", new_x="LMARGIN", new_y="NEXT")
    if not_recorded:
        pdf.ln(3)
        pdf.multi_cell(0, 6, _("Not recorded by the case file yet: ")
                       + ", ".join(str(x) for x in not_recorded))
    for t in tables:
        pdf.add_page()
        pdf.set_font("noto", size=13)
        pdf.cell(0, 9, str(t.title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("noto", size=9)
        with pdf.table(text_align="LEFT") as grid:
            head = grid.row()
            for c in t.columns:
                head.cell(str(c))
            for i, row in enumerate(t.rows):
                r = grid.row()
                for j, v in enumerate(row):
                    r.cell(_cell(t, i, j, v))
        if t.rows:
            svg = charts.svg(charts.bar_spec(t), width=440)
            pdf.ln(4)
            pdf.image(io.BytesIO(svg.encode()), w=170)
    out: bytes = bytes(pdf.output())
    return out


def render(fmt: str, period: Period, tables: Sequence[Table],
           not_recorded: Sequence[Any]) -> tuple[bytes, str]:
    if fmt == "pdf":
        return to_pdf(period, tables, not_recorded), FORMATS[fmt]
    if fmt == "xlsx":
        return to_xlsx(period, tables), FORMATS[fmt]
    return to_json(period, tables, not_recorded), FORMATS["json"]
