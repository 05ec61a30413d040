"""Survey results and test evaluations, computed by the statistics engine (`anshim.stats`).

This module only turns stored answer sheets into the engine's arrays (indicators, weights,
strata, PSUs, domains) and the engine's results into tables for the pages; every estimate,
weight, calibration, paired test and suppression decision is the engine's.

Weights: a school's design weight is 1 / its selection probability, adjusted for the sampled
schools that did not take part within its stratum; each response then carries its school's
weight times (students sampled / responses) in that school, and the weights are
post-stratified to the survey's grade x sex population cells, or raked to its grade and sex
totals, when they are set. Without a
sampling design every response weighs 1, schools are the clusters and there are no strata.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.core.cache import cache
from django.utils import translation

from anshim import stats
from anshim.prevention import stamp
from anshim.prevention.models import (
    KnowledgeTest,
    Response,
    SampledSchool,
    SchoolLevel,
    Sex,
    Survey,
    SurveyVersion,
    TestScore,
    Wave,
)
from anshim.prevention.xlsform import FormDefinition, Question, pick

GRADE_QUESTION = "grade"  # a form's own grade question wins over the class session's grade
SEX_QUESTION = "sex"  # calibration needs it, with choices named as `Sex` values
DIMENSIONS = ("grade", "sex", "level")


@dataclass
class Frame:
    """One row per response, in a stable order."""

    answers: list[dict[str, Any]]
    grade: list[str]
    sex: list[str]
    level: list[str]
    district: list[str]
    school: list[int]
    submitted_on: list[str]
    version: list[int]
    weights: np.ndarray
    strata: list[str]
    notes: list[str] = field(default_factory=list)  # why calibration was not applied, ...
    has_design: bool = False  # a sampling design was entered (strata, probabilities)
    # The calibrated design itself: its standard errors account for the post-stratification
    # or raking, as R's survey computes them (rebuilding a design from the new weights would
    # treat them as fixed and overstate the SEs).
    calibrated: stats.Design | None = None

    @property
    def n(self) -> int:
        return len(self.answers)

    def column(self, dim: str) -> list[str]:
        return {"grade": self.grade, "sex": self.sex, "level": self.level}[dim]


def load_frame(survey: Survey) -> Frame:
    rows = list(
        Response.objects.filter(version__survey=survey).order_by("class_session_id", "id")
        .values_list("answers", "class_session__grade", "class_session__school_id",
                     "class_session__school__level", "class_session__school__district",
                     "submitted_on", "version__number"))
    answers = [r[0] for r in rows]
    grade = [str(a.get(GRADE_QUESTION, g)) for a, g in zip(answers, (r[1] for r in rows),
                                                            strict=True)]
    sex = [str(a.get(SEX_QUESTION, "")) for a in answers]
    school = [r[2] for r in rows]
    frame = Frame(answers=answers, grade=grade, sex=sex, level=[r[3] for r in rows],
                  district=[r[4] for r in rows], school=school,
                  submitted_on=[r[5].isoformat() for r in rows],
                  version=[r[6] for r in rows], weights=np.ones(len(rows)),
                  strata=[r[3] for r in rows])
    _weight(survey, frame)
    return frame


def _weight(survey: Survey, frame: Frame) -> None:
    sample = list(SampledSchool.objects.filter(survey=survey))
    if not sample or not frame.n:
        return
    by_school = {s.school_id: s for s in sample}
    outside = {sid for sid in frame.school if sid not in by_school}
    if outside:
        frame.notes.append("responses from schools outside the sample are left out of the "
                           "weights; every response weighs 1")
        return
    # Schools: 1/p, then the non-participating schools' weight goes to their stratum's others.
    school_w = stats.nonresponse_adjust(
        stats.base_weights([s.selection_probability for s in sample]),
        [s.participated for s in sample], [s.stratum for s in sample])
    weight_of = {s.school_id: float(w) for s, w in zip(sample, school_w, strict=True)}
    responses: defaultdict[int, int] = defaultdict(int)
    for sid in frame.school:
        responses[sid] += 1
    w = np.array([
        weight_of[sid] * (max(by_school[sid].students_sampled, responses[sid]) / responses[sid])
        for sid in frame.school])
    frame.strata = [by_school[sid].stratum for sid in frame.school]
    frame.weights = w
    frame.has_design = True
    margins = survey.population_margins
    if not margins:
        return
    grade, sex = np.array(frame.grade), np.array(frame.sex)
    try:
        # inside the try: a design the engine refuses (a stratum with one school) is a note
        # here and the results' error later (design_for), never an exception out of the page
        design = stats.make_design(w, strata=frame.strata, psu=frame.school)
        if any("*" in (str(m["grade"]), str(m["sex"])) for m in margins):
            by_grade: dict[Hashable, float] = {str(m["grade"]): float(m["count"])
                                               for m in margins if m["sex"] == "*"}
            by_sex: dict[Hashable, float] = {str(m["sex"]): float(m["count"])
                                             for m in margins if m["grade"] == "*"}
            calibrated = stats.rake(design, [(grade, by_grade), (sex, by_sex)])
        else:
            population: dict[Hashable, float] = {
                (str(m["grade"]), str(m["sex"])): float(m["count"]) for m in margins}
            calibrated = stats.post_stratify(design, [grade, sex], population)
    except stats.StatsInputError as exc:
        frame.notes.append(f"not calibrated to the population margins: {exc}")
        return
    frame.weights = calibrated.weights
    frame.calibrated = calibrated


def design_for(frame: Frame) -> stats.Design:
    if frame.calibrated is not None:
        return frame.calibrated
    if frame.has_design:
        return stats.make_design(frame.weights, strata=frame.strata, psu=frame.school)
    # No sampling design entered: schools are the clusters (one school: a simple random
    # sample of students), no strata.
    if len(set(frame.school)) >= 2:
        return stats.make_design(frame.weights, psu=frame.school)
    return stats.make_design(frame.weights)


# --- Tables --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One published cell: a weighted percentage, or nothing when suppressed."""

    n: int  # unweighted denominator
    count: int  # unweighted numerator
    suppressed: bool
    percent: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    caution: bool = False  # RSE above 0.30

    @property
    def shown(self) -> bool:
        return not self.suppressed and self.percent is not None


@dataclass(frozen=True)
class Row:
    label: str
    cells: tuple[Cell, ...]  # one per column; the last is "all"


@dataclass(frozen=True)
class Table:
    question: str
    title: str
    kind: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    base_n: int  # responses that answered (the domain)
    mean: Cell | None = None  # numbers: the weighted mean (percent holds the mean)

    def chart(self, width: int = 240, step: int = 22) -> dict[str, Any]:
        """Bar geometry of the overall column for an inline SVG (no script, no style)."""
        bars = []
        for k, row in enumerate(self.rows):
            cell = row.cells[-1]
            bars.append({"y": k * step, "text_y": k * step + 14, "label": row.label,
                         "width": round(width * (cell.percent or 0) / 100) if cell.shown
                         else 0, "shown": cell.shown, "percent": cell.percent})
        return {"height": max(step, len(self.rows) * step), "bars": bars, "width": width}


def _protect(counts: np.ndarray) -> np.ndarray:
    """The suppression mask of a counts table with margins: primary (unweighted denominator
    under 30 or numerator 1-9) then secondary, both by the engine."""
    num = stats.with_margins(counts)
    den = np.broadcast_to(num[-1:, :], num.shape)
    primary = stats.primary_suppression(den, num)
    return stats.secondary_suppression(num, primary)


def _column_labels(dim: str | None, values: list[str]) -> list[str]:
    if dim is None:
        return []
    order = sorted(set(values), key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
    return [v for v in order if v != ""]


def _dim_label(dim: str, value: str) -> str:
    if dim == "sex":
        return str(dict(Sex.choices).get(value, value))
    if dim == "level":
        return str(dict(SchoolLevel.choices).get(value, value))
    return value


def question_table(frame: Frame, design: stats.Design, q: Question, dim: str | None,
                   language: str) -> Table:
    groups = frame.column(dim) if dim else ["" for _ in range(frame.n)]
    values = _column_labels(dim, groups)
    col_index = {v: i for i, v in enumerate(values)}
    answered = [q.name in a for a in frame.answers]
    group_codes = np.array([col_index.get(g, -1) for g in groups])
    columns = tuple([_dim_label(dim, v) for v in values] + ["all"]) if dim else ("all",)
    by = {dim: np.array(groups)} if dim else None
    if q.kind in ("integer", "decimal"):
        y = np.array([float(a[q.name]) if q.name in a else math.nan for a in frame.answers])
        base = int(np.sum(~np.isnan(y)))
        if base == 0:
            return Table(q.name, q.label(language), q.kind, ("all",), (), 0)
        est = stats.mean(design, y, overall=True)[0]
        hidden = stats.DEFAULT_RULE.suppressed(est.n) or est.rse_flag == "not_shown"
        cell = Cell(est.n, est.n, hidden, None if hidden else est.estimate,
                    None if hidden else est.ci_low, None if hidden else est.ci_high,
                    est.rse_flag == "caution")
        return Table(q.name, q.label(language), q.kind, ("all",), (), base, mean=cell)
    choices = list(q.choices)
    if q.kind == "select_one":
        lines = [(c.name, pick(c.labels, language)) for c in choices]
        picked = [[a.get(q.name) == c.name for c in choices] for a in frame.answers]
    else:
        lines = [(c.name, pick(c.labels, language)) for c in choices]
        picked = [[c.name in (a.get(q.name) or []) for c in choices] for a in frame.answers]
    ncols = len(values) if dim else 1
    base = sum(answered)
    rows: list[Row] = []
    ans = np.array(answered)
    mat = np.array(picked, dtype=bool).reshape(frame.n, len(choices))
    in_col = [(group_codes == j) & ans for j in range(ncols)] if dim else [ans]
    # select_one: one table (choices x groups) sums to the group totals; select_multiple: each
    # choice is its own chosen / not chosen table.
    if q.kind == "select_one":
        counts = np.array([[int(np.sum(mat[:, i] & in_col[j])) for j in range(ncols)]
                           for i in range(len(choices))])
        masks = [_protect(counts)] if base else []
    else:
        masks = []
        for i in range(len(choices)):
            chosen = [int(np.sum(mat[:, i] & in_col[j])) for j in range(ncols)]
            totals = [int(np.sum(in_col[j])) for j in range(ncols)]
            masks.append(_protect(np.array([chosen, [t - c for t, c in zip(totals, chosen,
                                                                           strict=True)]])))
    for i, (_name, label) in enumerate(lines):
        y = np.where(ans, mat[:, i].astype(float), math.nan)
        if base == 0:
            continue
        ests = stats.prevalence(design, y, by=by)
        by_value = {e.by.get(dim, "") if dim else "": e for e in ests[1:]} if dim else {}
        mask = masks[0] if q.kind == "select_one" else masks[i]
        row_i = i if q.kind == "select_one" else 0
        cells: list[Cell] = []
        for j in range(len(columns)):
            is_all = j == len(columns) - 1
            e = ests[0] if is_all else by_value.get(values[j])
            suppressed = bool(mask[row_i, ncols if is_all else j])
            if e is None:
                cells.append(Cell(0, 0, True))
                continue
            hide = suppressed or e.rse_flag == "not_shown"
            cells.append(Cell(e.n, int(e.numerator or 0), hide,
                              None if hide else 100 * e.estimate,
                              None if hide else 100 * e.ci_low,
                              None if hide else 100 * e.ci_high, e.rse_flag == "caution"))
        rows.append(Row(label, tuple(cells)))
    return Table(q.name, q.label(language), q.kind, columns, tuple(rows), base)


ANALYSED_KINDS = ("select_one", "select_multiple", "integer", "decimal")


def _analysed(q: Question, dim: str | None) -> bool:
    """Free text and dates are never tabulated; a question is not broken down by itself."""
    own = {"grade": GRADE_QUESTION, "sex": SEX_QUESTION}.get(dim or "")
    return q.kind in ANALYSED_KINDS and q.name != own


@dataclass(frozen=True)
class Results:
    n: int
    tables: tuple[Table, ...]
    notes: tuple[str, ...]
    error: str = ""


def survey_results(survey: Survey, *, dim: str | None = None, language: str = "ko",
                   version: SurveyVersion | None = None) -> Results:
    """Every question of the latest published version (or `version`), by `dim`."""
    version = version or survey.versions.filter(published_at__isnull=False).order_by(
        "-number").first()
    if version is None:
        return Results(0, (), ())
    form = FormDefinition.from_json(version.definition)
    frame = load_frame(survey)
    if frame.n == 0:
        return Results(0, (), tuple(frame.notes))
    try:
        design = design_for(frame)
        tables = tuple(question_table(frame, design, q, dim, language)
                       for q in form.inputs() if _analysed(q, dim))
    except stats.StatsInputError as exc:
        return Results(frame.n, (), tuple(frame.notes), error=str(exc))
    return Results(frame.n, tables, tuple(frame.notes))


def published_csv(results: Results) -> bytes:
    """The tables as published: suppressed cells have no numbers, only the mark."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["question", "answer", "group", "percent", "ci_low", "ci_high", "n",
                     "suppressed", "caution"])
    for t in results.tables:
        if t.mean is not None:
            c = t.mean
            writer.writerow([t.title, "mean", "all", *(_published(c)), c.n if c.shown else "",
                             "yes" if c.suppressed else "", "yes" if c.caution else ""])
            continue
        for row in t.rows:
            for col, c in zip(t.columns, row.cells, strict=True):
                writer.writerow([t.title, row.label, col, *(_published(c)),
                                 c.n if c.shown else "", "" if c.shown else "yes",
                                 "yes" if c.caution else ""])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _published(c: Cell) -> list[str]:
    if not c.shown:
        return ["", "", ""]
    return [f"{c.percent:.1f}", f"{c.ci_low:.1f}", f"{c.ci_high:.1f}"]


# --- Knowledge tests -----------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    before: str
    after: str
    report: stats.PairedReport | None
    error: str = ""


def test_results(test: KnowledgeTest) -> list[Comparison]:
    """Pre -> post and pre -> follow-up, linked by the students' self-generated codes."""
    waves: dict[str, tuple[list[str], list[float]]] = {w: ([], []) for w in Wave.values}
    for wave, code, score in TestScore.objects.filter(test=test).values_list(
            "wave", "code", "score"):
        waves[wave][0].append(code)
        waves[wave][1].append(score)
    out = []
    for after in (Wave.POST, Wave.FOLLOW_UP):
        if not waves[Wave.PRE][0] or not waves[after][0]:
            continue
        try:
            report = stats.paired_analysis(waves[Wave.PRE][0], waves[Wave.PRE][1],
                                           waves[after][0], waves[after][1])
        except stats.StatsInputError as exc:
            out.append(Comparison(Wave.PRE, after, None, str(exc)))
            continue
        out.append(Comparison(Wave.PRE, after, report))
    return out


# --- Kept results --------------------------------------------------------------------------

#: how long a result stays in the process's cache at most; a change renews the stamp anyway
CACHE_SECONDS = 24 * 3600


def _memo[T](identity: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
    """`compute()`, kept in the process's cache under the analysis stamp's token.

    The token is read before anything `compute` reads, so what is kept under a token is at
    least as new as it; any later change to an input renews the token (`stamp`). No stamp row:
    computed, not kept."""
    token = stamp.token()
    if token is None:
        return compute()
    # The active language too: breakdown labels (sex, school level) are translated choices.
    full = (str(token), translation.get_language(), *identity)
    key = f"prevention:analysis:{hashlib.sha256(repr(full).encode()).hexdigest()}"
    kept = cache.get(key)
    # the full identity is kept beside the value: a key can never stand for another result
    if kept is not None and kept[0] == full:
        return kept[1]  # type: ignore[no-any-return]
    value = compute()
    cache.set(key, (full, value), CACHE_SECONDS)
    return value


def cached_survey_results(survey: Survey, *, dim: str | None = None, language: str = "ko",
                          version: SurveyVersion | None = None) -> Results:
    """`survey_results`, kept until an input changes (the dashboard's figures)."""
    if version is not None and version.published_at is None:
        # A draft's definition may still change under this very object: not kept.
        return survey_results(survey, dim=dim, language=language, version=version)
    # The population margins come from the caller's `survey` object, read before the token:
    # they are part of the identity, so an object older than the token cannot be kept as new.
    identity = ("survey", survey.pk, json.dumps(survey.population_margins, sort_keys=True),
                dim, language, version.pk if version is not None else None)
    return _memo(identity, lambda: survey_results(survey, dim=dim, language=language,
                                                  version=version))


def cached_test_results(test: KnowledgeTest) -> list[Comparison]:
    """`test_results`, kept until an input changes (the dashboard's figures). It reads only
    the test's scores, by the test's key."""
    return _memo(("test", test.pk), lambda: test_results(test))
