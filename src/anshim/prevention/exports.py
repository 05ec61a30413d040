"""Researcher exports of a survey's answer sheets: CSV, XLSX, SPSS .sav with variable and
value labels, and a codebook. Every export is audited (who, which survey, format, profile).

Profiles:
- `deidentified` (the default): no free-text answers, dates coarsened to year-month, no school
  names (the school is a number, the PSU); what may leave the center.
- `full`: every answer, for the center's own research team.

Rows are in a random but stable order (class session, then the random response id), so the
export does not reveal the order in which students submitted.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from anshim.prevention.analysis import Frame, load_frame
from anshim.prevention.models import Survey, SurveyVersion
from anshim.prevention.xlsform import FormDefinition, Question, pick


class ExportKind(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    SAV = "sav"
    CODEBOOK = "codebook"


class Profile(StrEnum):
    DEIDENTIFIED = "deidentified"
    FULL = "full"


CONTENT_TYPES = {
    ExportKind.CSV: "text/csv; charset=utf-8",
    ExportKind.CODEBOOK: "text/csv; charset=utf-8",
    ExportKind.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportKind.SAV: "application/x-spss-sav",
}
EXTENSIONS = {ExportKind.CSV: "csv", ExportKind.CODEBOOK: "codebook.csv",
              ExportKind.XLSX: "xlsx", ExportKind.SAV: "sav"}


@dataclass(frozen=True)
class Variable:
    name: str  # SPSS-safe: letters, digits, underscores, at most 64 bytes
    label: str
    kind: str  # "numeric" or "string"
    value_labels: dict[int, str]
    source: str  # the question name, or a design column
    choice: str = ""  # select_multiple: the choice this 0/1 column is for


def _safe(name: str) -> str:
    out = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)
    if not out or not out[0].isalpha():
        out = "v_" + out
    return out[:60]


def variables(form: FormDefinition, profile: Profile, language: str) -> list[Variable]:
    """The columns of an export, design columns first."""
    out = [
        Variable("school", "School (PSU)", "numeric", {}, "school"),
        Variable("stratum", "Stratum", "string", {}, "stratum"),
        Variable("school_level", "School level", "string", {}, "level"),
        Variable("class_grade", "Grade", "string", {}, "grade"),
        Variable("weight", "Survey weight", "numeric", {}, "weight"),
        Variable("form_version", "Questionnaire version", "numeric", {}, "version"),
        Variable("submitted", "Date answered" if profile == Profile.FULL else
                 "Month answered", "string", {}, "submitted"),
    ]
    for q in form.inputs():
        label = q.label(language)
        if q.kind == "text" and profile == Profile.DEIDENTIFIED:
            continue  # free text may name people
        if q.kind == "select_one":
            out.append(Variable(_safe(q.name), label, "numeric",
                                {i + 1: pick(c.labels, language) for i, c in
                                 enumerate(q.choices)}, q.name))
        elif q.kind == "select_multiple":
            for c in q.choices:
                out.append(Variable(_safe(f"{q.name}_{c.name}"),
                                    f"{label}: {pick(c.labels, language)}", "numeric",
                                    {0: "not selected", 1: "selected"}, q.name, c.name))
        elif q.kind in ("integer", "decimal"):
            out.append(Variable(_safe(q.name), label, "numeric", {}, q.name))
        else:  # text, date
            out.append(Variable(_safe(q.name), label, "string", {}, q.name))
    return out


def _question_index(form: FormDefinition) -> dict[str, Question]:
    return {q.name: q for q in form.inputs()}


def rows(frame: Frame, form: FormDefinition, columns: list[Variable],
         profile: Profile) -> list[list[Any]]:
    questions = _question_index(form)
    out = []
    for i in range(frame.n):
        answers = frame.answers[i]
        row: list[Any] = []
        for v in columns:
            if v.source == "school":
                row.append(frame.school[i])
            elif v.source == "stratum":
                row.append(frame.strata[i])
            elif v.source == "level":
                row.append(frame.level[i])
            elif v.source == "grade":
                row.append(frame.grade[i])
            elif v.source == "weight":
                row.append(round(float(frame.weights[i]), 6))
            elif v.source == "version":
                row.append(frame.version[i])
            elif v.source == "submitted":
                day = frame.submitted_on[i]
                row.append(day if profile == Profile.FULL else day[:7])
            else:
                q = questions[v.source]
                value = answers.get(q.name)
                if q.kind == "select_one":
                    codes = {c.name: k + 1 for k, c in enumerate(q.choices)}
                    row.append(codes.get(value) if value is not None else None)
                elif q.kind == "select_multiple":
                    row.append(None if value is None else int(v.choice in value))
                elif q.kind == "date" and value is not None and profile != Profile.FULL:
                    row.append(str(value)[:7])
                else:
                    row.append(value)
        out.append(row)
    return out


def _csv(header: list[str], data: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for r in data:
        writer.writerow(["" if v is None else v for v in r])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 correctly


def codebook(columns: list[Variable]) -> bytes:
    data = [[v.name, v.label, v.kind, v.source,
             "; ".join(f"{k}={lab}" for k, lab in v.value_labels.items())] for v in columns]
    return _csv(["variable", "label", "type", "question", "values"], data)


def _xlsx(columns: list[Variable], data: list[list[Any]]) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    sheet = wb.create_sheet("data")
    sheet.append([v.name for v in columns])
    for r in data:
        sheet.append(r)
    book = wb.create_sheet("codebook")
    book.append(["variable", "label", "type", "question", "values"])
    for v in columns:
        book.append([v.name, v.label, v.kind, v.source,
                     "; ".join(f"{k}={lab}" for k, lab in v.value_labels.items())])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _sav(columns: list[Variable], data: list[list[Any]], title: str) -> bytes:
    import pandas as pd
    import pyreadstat

    frame = pd.DataFrame({
        v.name: pd.Series([r[k] for r in data],
                          dtype="float64" if v.kind == "numeric" else "object")
        for k, v in enumerate(columns)})
    for v in columns:
        if v.kind == "string":
            frame[v.name] = frame[v.name].fillna("").astype(str)
    fd, path = tempfile.mkstemp(suffix=".sav")
    os.close(fd)
    try:
        pyreadstat.write_sav(
            frame, path, file_label=title[:64],
            column_labels={v.name: v.label[:250] for v in columns},
            variable_value_labels={v.name: {float(k): lab for k, lab in v.value_labels.items()}
                                   for v in columns if v.value_labels})
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


@dataclass(frozen=True)
class Export:
    content: bytes
    content_type: str
    filename: str
    rows: int


def export(survey: Survey, kind: ExportKind, profile: Profile, *, language: str = "ko",
           version: SurveyVersion | None = None) -> Export:
    """Build an export (the caller audits it: `services.record_export`)."""
    version = version or survey.versions.filter(published_at__isnull=False).order_by(
        "-number").first() or survey.versions.order_by("-number").first()
    if version is None:
        raise ValueError("the survey has no version")
    form = FormDefinition.from_json(version.definition)
    columns = variables(form, profile, language)
    frame = load_frame(survey)
    stem = f"survey-{survey.pk}-{profile.value}"
    if kind == ExportKind.CODEBOOK:
        content = codebook(columns)
        n = 0
    else:
        data = rows(frame, form, columns, profile)
        n = len(data)
        if kind == ExportKind.CSV:
            content = _csv([v.name for v in columns], data)
        elif kind == ExportKind.XLSX:
            content = _xlsx(columns, data)
        else:
            content = _sav(columns, data, survey.title)
    return Export(content, CONTENT_TYPES[kind], f"{stem}.{EXTENSIONS[kind]}", n)
