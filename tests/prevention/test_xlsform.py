"""XLSForm import (pyxform), the expression subset, validation of answers, export back."""

from __future__ import annotations

import pytest

from anshim.prevention import expressions, xlsform

from .conftest import GOOD
from .forms import kobo_style_form, sheet


def test_real_world_form_with_skip_logic_imports() -> None:
    form = xlsform.parse(kobo_style_form(), "youth.xlsx")
    assert form.title == "청소년 온라인 경험 조사"
    assert form.form_id == "youth_online"
    assert form.languages == ("ko", "en") and form.default_language == "ko"
    names = [q.name for q in form.inputs()]
    assert names == ["consent", "age", "sex", "region", "district", "apps", "contacted", "when",
                     "hours", "story"]
    # Metadata that would identify or time-stamp a student is never collected.
    assert not {"start", "end", "today", "deviceid"} & set(names)
    assert any("deviceid" in w for w in form.warnings)
    about = form.question("about")
    assert about.kind == "group" and about.relevant == "${consent} = 'yes'"
    age = form.question("age")
    assert age.required and age.constraint == ". >= 9 and . <= 19"
    assert age.constraint_messages == {"ko": "9~19세", "en": "Age 9 to 19"}
    assert age.labels == {"ko": "나이", "en": "Age"} and age.hints == {"en": "in years"}
    district = form.question("district")
    assert district.choice_filter == "region=${region}"
    assert [c.columns["region"] for c in district.choices] == ["seoul", "seoul", "busan"]
    assert form.question("apps").kind == "select_multiple"


def test_skip_logic_drops_answers_to_skipped_questions() -> None:
    form = xlsform.parse(kobo_style_form(), "youth.xlsx")
    clean = xlsform.clean_answers(form, dict(GOOD))
    assert clean["age"] == 14 and clean["hours"] == 2.5 and clean["apps"] == ["kakao", "game"]
    # Declining consent skips both groups, whatever else was sent.
    assert xlsform.clean_answers(form, {**GOOD, "consent": "no"}) == {"consent": "no"}
    # Not contacted: when/story are skipped, not stored.
    no = xlsform.clean_answers(form, {**GOOD, "contacted": "no"})
    assert "when" not in no and "story" not in no
    # "none" among the apps: the contacted question is skipped, so it is not required.
    assert "contacted" not in xlsform.clean_answers(form, {**GOOD, "apps": ["none"]})


@pytest.mark.parametrize(("changes", "errors"), [
    ({"age": "30"}, {"age": "constraint"}),
    ({"age": ""}, {"age": "required"}),
    ({"age": "1e3"}, {"age": "integer"}),
    ({"district": "haeundae"}, {"district": "choice"}),  # filtered out for Seoul
    ({"sex": "other"}, {"sex": "choice"}),
    ({"when": "2099-01-01"}, {"when": "constraint"}),
    ({"when": "yesterday"}, {"when": "date"}),
    ({"hours": "NaN"}, {"hours": "decimal"}),
    ({"apps": []}, {"apps": "required"}),
    ({"apps": [{"x": 1}]}, {"apps": "choice"}),
])
def test_invalid_answers_are_named(changes: dict, errors: dict) -> None:
    form = xlsform.parse(kobo_style_form(), "youth.xlsx")
    with pytest.raises(xlsform.AnswerError) as info:
        xlsform.clean_answers(form, {**GOOD, **changes})
    assert info.value.errors == errors


def test_export_back_to_xlsform_round_trips() -> None:
    form = xlsform.parse(kobo_style_form(), "youth.xlsx")
    again = xlsform.parse(xlsform.to_xlsform(form), "again.xlsx")
    assert again.questions == form.questions
    assert (again.title, again.form_id, again.version, again.languages) == (
        form.title, form.form_id, form.version, form.languages)


def test_definition_survives_json() -> None:
    form = xlsform.parse(kobo_style_form(), "youth.xlsx")
    assert xlsform.FormDefinition.from_json(form.to_json()) == form


@pytest.mark.parametrize(("rows", "choices", "problem"), [
    ([["type", "name", "label"], ["geopoint", "where", "Where?"]], None, "not supported"),
    ([["type", "name", "label", "relevant"], ["text", "a", "A", "${nope} = 1"]], None,
     "nope"),
    ([["type", "name", "label"], ["select_one missing", "a", "A"]],
     [["list_name", "name", "label"], ["other", "x", "X"]], "missing"),
    ([["type", "name", "label", "relevant"], ["text", "a", "A", "pulldata('x', 1)"]], None,
     "pulldata"),
    ([["type", "name", "label"], ["note", "n", "Only a note"]], None, "no questions"),
])
def test_bad_forms_are_refused_with_the_reason(rows: list, choices: list | None,
                                              problem: str) -> None:
    with pytest.raises(xlsform.XLSFormError) as info:
        xlsform.parse(sheet(rows, choices), "bad.xlsx")
    assert problem in str(info.value)


def test_not_a_workbook() -> None:
    with pytest.raises(xlsform.XLSFormError):
        xlsform.parse(b"this is not a spreadsheet", "form.xlsx")
    with pytest.raises(xlsform.XLSFormError, match="not an XLSForm file"):
        xlsform.parse(b"x", "form.pdf")


# The same cases run in the browser (test_browser.py): both evaluators must agree.
EXPRESSION_CASES = [
    ("${a} = 'yes'", {"a": "yes"}, None, True),
    ("${a} = 'yes'", {}, None, False),
    ("${n} > 10", {}, None, False),  # unanswered: NaN
    ("${n} > 10", {"n": 11}, None, True),
    ("${n} >= 4 and ${n} <= 12", {"n": 12}, None, True),
    (". >= 9 and . <= 19", {}, 20, False),
    ("selected(${m}, 'b')", {"m": ["a", "b"]}, None, True),
    ("not(selected(${m}, 'c'))", {"m": ["a", "b"]}, None, True),
    ("count-selected(${m}) >= 2", {"m": ["a", "b"]}, None, True),
    ("${x} != ''", {"x": ""}, None, False),
    ("${a} = 'x' or ${b} = 'y'", {"b": "y"}, None, True),
    ("string-length(.) <= 3", {}, "abcd", False),
    ("regex(., '^[0-9]+$')", {}, "123", True),
    ("${n} mod 2 = 1", {"n": 7}, None, True),
    ("${n} div 2 = 3.5", {"n": 7}, None, True),
    ("-${n} < 0", {"n": 1}, None, True),
    ("if(${a} = 'y', 1, 0) = 1", {"a": "y"}, None, True),
    ("coalesce(${a}, 'z') = 'z'", {}, None, True),
    ("number('5') = 5", {}, None, True),
    ("${d} < '2026-06-01'", {"d": "2026-05-31"}, None, True),
    ("true() and not(false())", {}, None, True),
]


@pytest.mark.parametrize(("text", "answers", "current", "expected"), EXPRESSION_CASES)
def test_expressions(text: str, answers: dict, current: object, expected: bool) -> None:
    assert expressions.truthy(text, answers, current) is expected


def test_choice_filter_reads_the_choice_row() -> None:
    assert expressions.truthy("region=${region}", {"region": "seoul"}, row={"region": "seoul"})
    assert not expressions.truthy("region=${region}", {"region": "busan"},
                                  row={"region": "seoul"})


@pytest.mark.parametrize("text", ["${a} ==", "pulldata('x')", "${a} = 'unterminated", "(1"])
def test_unsupported_expressions_raise(text: str) -> None:
    with pytest.raises(expressions.ExpressionError):
        expressions.parse(text)


def test_references() -> None:
    assert expressions.references("${a} = 'x' and selected(${b}, 'y')") == {"a", "b"}
