"""XLSForm in and out: parse and validate an uploaded questionnaire with pyxform, keep it as a
typed `FormDefinition`, and write a definition back as an XLSForm workbook.

pyxform checks the form as ODK does (unknown `${references}`, missing choice lists, duplicate
names...); on top of that only the types this app can collect anonymously are accepted, and the
expressions must be in the subset `anshim.prevention.expressions` evaluates, so a form that
imports here behaves the same in the browser and in the analysis.

Metadata questions that would capture who or exactly when (`start`, `end`, `deviceid`,
`username`, `phonenumber`, `audit`, ...) are dropped with a warning: this app never collects
them.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

from anshim.prevention import expressions

SUPPORTED_TYPES = ("select_one", "select_multiple", "integer", "decimal", "text", "note", "date",
                   "group")
_PYXFORM_TYPES = {
    "select one": "select_one", "select all that apply": "select_multiple",
    "integer": "integer", "int": "integer", "decimal": "decimal", "text": "text",
    "string": "text", "note": "note", "date": "date", "group": "group",
}
# What pyxform calls the metadata types (never collected here: they identify or time-stamp).
_METADATA = {"start", "end", "today", "deviceid", "subscriberid", "simserial", "phonenumber",
             "username", "email", "audit", "calculate", "start-geopoint", "background-audio"}
_LANG = re.compile(r"\((?P<code>[A-Za-z]{2,3})\)\s*$")
_KNOWN_LANGUAGES = {"korean": "ko", "english": "en", "한국어": "ko"}
LANGUAGE_NAMES = {"ko": "Korean", "en": "English"}


class XLSFormError(ValueError):
    """The uploaded file is not a usable XLSForm; `problems` lists every reason found."""

    code = "invalid_xlsform"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


Labels = dict[str, str]  # language code -> text


@dataclass(frozen=True)
class Choice:
    name: str
    labels: Labels
    columns: dict[str, str] = field(default_factory=dict)  # extra columns (choice filters)


@dataclass(frozen=True)
class Question:
    kind: str  # one of SUPPORTED_TYPES
    name: str
    labels: Labels = field(default_factory=dict)
    hints: Labels = field(default_factory=dict)
    required: bool = False
    relevant: str = ""
    constraint: str = ""
    constraint_messages: Labels = field(default_factory=dict)
    list_name: str = ""
    choices: tuple[Choice, ...] = ()
    choice_filter: str = ""
    children: tuple[Question, ...] = ()

    @property
    def is_input(self) -> bool:
        return self.kind not in ("note", "group")

    def label(self, language: str) -> str:
        return pick(self.labels, language) or self.name

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "name": self.name, "labels": self.labels, "hints": self.hints,
            "required": self.required, "relevant": self.relevant, "constraint": self.constraint,
            "constraint_messages": self.constraint_messages, "list_name": self.list_name,
            "choices": [{"name": c.name, "labels": c.labels, "columns": c.columns}
                        for c in self.choices],
            "choice_filter": self.choice_filter,
            "children": [c.to_json() for c in self.children],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Question:
        return cls(
            kind=data["kind"], name=data["name"], labels=data.get("labels", {}),
            hints=data.get("hints", {}), required=data.get("required", False),
            relevant=data.get("relevant", ""), constraint=data.get("constraint", ""),
            constraint_messages=data.get("constraint_messages", {}),
            list_name=data.get("list_name", ""),
            choices=tuple(Choice(c["name"], c["labels"], c.get("columns", {}))
                          for c in data.get("choices", [])),
            choice_filter=data.get("choice_filter", ""),
            children=tuple(cls.from_json(c) for c in data.get("children", [])),
        )


@dataclass(frozen=True)
class FormDefinition:
    title: str
    form_id: str
    version: str
    default_language: str
    languages: tuple[str, ...]
    questions: tuple[Question, ...]
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title, "form_id": self.form_id, "version": self.version,
            "default_language": self.default_language, "languages": list(self.languages),
            "questions": [q.to_json() for q in self.questions], "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FormDefinition:
        return cls(
            title=data["title"], form_id=data["form_id"], version=data.get("version", ""),
            default_language=data.get("default_language", "ko"),
            languages=tuple(data.get("languages", ["ko"])),
            questions=tuple(Question.from_json(q) for q in data["questions"]),
            warnings=tuple(data.get("warnings", [])),
        )

    def walk(self) -> list[tuple[Question, tuple[Question, ...]]]:
        """Every question in form order with the groups that enclose it."""
        out: list[tuple[Question, tuple[Question, ...]]] = []

        def visit(items: tuple[Question, ...], parents: tuple[Question, ...]) -> None:
            for q in items:
                out.append((q, parents))
                if q.kind == "group":
                    visit(q.children, (*parents, q))

        visit(self.questions, ())
        return out

    def inputs(self) -> list[Question]:
        """The questions that take an answer, in form order."""
        return [q for q, _ in self.walk() if q.is_input]

    def question(self, name: str) -> Question:
        for q, _ in self.walk():
            if q.name == name:
                return q
        raise KeyError(name)


def pick(labels: Labels, language: str) -> str:
    """The label in `language`, else Korean, else any."""
    return labels.get(language) or labels.get("ko") or next(iter(labels.values()), "")


def _language_code(key: str, default: str) -> str:
    if key == "default":
        return default
    m = _LANG.search(key)
    if m:
        return m.group("code").lower()
    return _KNOWN_LANGUAGES.get(key.strip().lower(), key.strip().lower()[:8] or default)


def _labels(value: Any, default: str) -> Labels:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {_language_code(k, default): str(v) for k, v in value.items() if str(v).strip()}
    return {default: str(value)} if str(value).strip() else {}


def parse(content: bytes, filename: str = "form.xlsx") -> FormDefinition:
    """Parse and validate an XLSForm (.xlsx, .xls, .csv or .md as pyxform reads them)."""
    from pyxform.errors import PyXFormError
    from pyxform.xls2xform import convert

    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ".xlsx"
    if suffix not in (".xlsx", ".xlsm", ".xls", ".csv", ".md"):
        raise XLSFormError([f"'{filename}' is not an XLSForm file (.xlsx, .xls, .csv or .md)"])
    if suffix in (".xlsx", ".xlsm") and not content.startswith(b"PK"):
        raise XLSFormError([f"'{filename}' is not an Excel workbook (.xlsx)"])
    if suffix == ".xls" and not content.startswith(b"\xd0\xcf\x11\xe0"):
        raise XLSFormError([f"'{filename}' is not an Excel 97-2003 workbook (.xls)"])
    warnings: list[str] = []
    try:
        result = convert(xlsform=content, file_type=suffix, warnings=warnings)
    except PyXFormError as exc:
        raise XLSFormError([str(exc)]) from exc
    except Exception as exc:  # a corrupt workbook raises whatever its reader raises
        raise XLSFormError([f"the file could not be read as {suffix}: {exc}"]) from exc
    data: dict[str, Any] = result._pyxform  # the parsed form as a dict
    default = _language_code(str(data.get("default_language") or "default"), "ko")
    if default == "default":
        default = "ko"
    problems: list[str] = []
    dropped: list[str] = []
    names: set[str] = set()
    languages: set[str] = set()

    def convert_item(item: dict[str, Any]) -> Question | None:
        raw_type = str(item.get("type", ""))
        name = str(item.get("name", ""))
        if raw_type == "group" and item.get("control", {}).get("bodyless"):
            return None  # pyxform's own meta group (instanceID)
        if raw_type in _METADATA:
            dropped.append(name)
            return None
        kind = _PYXFORM_TYPES.get(raw_type)
        if kind is None:
            problems.append(f"'{name}': the type '{raw_type}' is not supported "
                            f"(supported: {', '.join(SUPPORTED_TYPES)}, begin/end group)")
            return None
        names.add(name)
        bind = item.get("bind", {}) or {}
        labels = _labels(item.get("label"), default)
        languages.update(labels)
        children: tuple[Question, ...] = ()
        if kind == "group":
            children = tuple(q for q in (convert_item(c) for c in item.get("children", [])) if q)
        choices: tuple[Choice, ...] = ()
        if kind in ("select_one", "select_multiple"):
            choices = tuple(
                Choice(str(c["name"]), _labels(c.get("label"), default),
                       {k: str(v) for k, v in c.items() if k not in ("name", "label")})
                for c in item.get("choices", []) or data.get("choices", {}).get(
                    item.get("itemset") or item.get("list_name"), [])
            )
            if not choices:
                problems.append(f"'{name}': the choice list has no choices")
        required = str(bind.get("required", "")).strip().lower() in ("yes", "true", "true()")
        q = Question(
            kind=kind, name=name, labels=labels, hints=_labels(item.get("hint"), default),
            required=required, relevant=str(bind.get("relevant", "") or ""),
            constraint=str(bind.get("constraint", "") or ""),
            constraint_messages=_labels(bind.get("jr:constraintMsg"), default),
            list_name=str(item.get("list_name", "") or ""), choices=choices,
            choice_filter=str(item.get("choice_filter", "") or ""), children=children,
        )
        for attr in ("relevant", "constraint", "choice_filter"):
            text = getattr(q, attr)
            if text:
                try:
                    expressions.parse(text)
                except expressions.ExpressionError as exc:
                    problems.append(f"'{name}' {attr}: {exc}")
        return q

    questions = tuple(q for q in (convert_item(c) for c in data.get("children", [])) if q)
    if not any(q.is_input for q in _flatten(questions)):
        problems.append("the form has no questions")
    if problems:
        raise XLSFormError(problems)
    if dropped:
        warnings.append("Not collected (they would identify or time-stamp a student): "
                        + ", ".join(dropped))
    langs = tuple(sorted(languages or {default}, key=lambda c: (c != default, c)))
    return FormDefinition(
        title=str(data.get("title") or data.get("id_string") or "survey"),
        form_id=str(data.get("id_string") or "survey"), version=str(data.get("version") or ""),
        default_language=default, languages=langs, questions=questions,
        warnings=tuple(w for w in warnings if "constraint_message" not in w),
    )


def _flatten(items: tuple[Question, ...]) -> list[Question]:
    out: list[Question] = []
    for q in items:
        out.append(q)
        out.extend(_flatten(q.children))
    return out


def _column(prefix: str, language: str) -> str:
    return f"{prefix}::{LANGUAGE_NAMES.get(language, language)} ({language})"


def to_xlsform(form: FormDefinition) -> bytes:
    """The definition as an XLSForm workbook (survey, choices and settings sheets)."""
    import openpyxl

    langs = list(form.languages)
    survey_header = ["type", "name", *[_column("label", lang) for lang in langs],
                     *[_column("hint", lang) for lang in langs], "required", "relevant",
                     "constraint", *[_column("constraint_message", lang) for lang in langs],
                     "choice_filter"]
    filter_columns: list[str] = []
    for q in _flatten(form.questions):
        for c in q.choices:
            filter_columns.extend(k for k in c.columns if k not in filter_columns)
    wb = openpyxl.Workbook()
    survey = wb.active
    assert survey is not None
    survey.title = "survey"
    survey.append(survey_header)
    choices = wb.create_sheet("choices")
    choices.append(["list_name", "name", *[_column("label", lang) for lang in langs],
                    *filter_columns])
    written_lists: set[str] = set()

    def row(q: Question, type_text: str) -> list[str]:
        return [type_text, q.name, *[q.labels.get(lang, "") for lang in langs],
                *[q.hints.get(lang, "") for lang in langs], "yes" if q.required else "",
                q.relevant, q.constraint,
                *[q.constraint_messages.get(lang, "") for lang in langs], q.choice_filter]

    def emit(items: tuple[Question, ...]) -> None:
        for q in items:
            if q.kind == "group":
                survey.append(row(q, "begin_group"))
                emit(q.children)
                survey.append(["end_group", q.name])
                continue
            type_text = q.kind
            if q.kind in ("select_one", "select_multiple"):
                list_name = q.list_name or q.name
                type_text = f"{q.kind} {list_name}"
                if list_name not in written_lists:
                    written_lists.add(list_name)
                    for c in q.choices:
                        choices.append([list_name, c.name,
                                        *[c.labels.get(lang, "") for lang in langs],
                                        *[c.columns.get(k, "") for k in filter_columns]])
            survey.append(row(q, type_text))

    emit(form.questions)
    settings = wb.create_sheet("settings")
    settings.append(["form_title", "form_id", "version", "default_language"])
    settings.append([form.title, form.form_id, form.version,
                     f"{LANGUAGE_NAMES.get(form.default_language, form.default_language)} "
                     f"({form.default_language})"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- Answers --------------------------------------------------------------------------------


class AnswerError(ValueError):
    """Answers that do not fit the form: `errors` maps a question name to a message code."""

    code = "invalid_answers"

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))


def clean_answers(form: FormDefinition, raw: dict[str, Any]) -> dict[str, Any]:
    """Check submitted answers against the form as the browser did: relevance (answers to
    skipped questions are dropped), required, types, constraints and (filtered) choices.

    Returns the answers to store: str for select_one/text/date, list[str] for
    select_multiple, int/float for numbers; unanswered questions are left out.
    """
    import datetime as dt

    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    irrelevant_groups: set[str] = set()
    for q, parents in form.walk():
        if any(p.name in irrelevant_groups for p in parents):
            if q.kind == "group":
                irrelevant_groups.add(q.name)
            continue
        if q.relevant and not expressions.truthy(q.relevant, clean):
            if q.kind == "group":
                irrelevant_groups.add(q.name)
            continue
        if not q.is_input:
            continue
        value = raw.get(q.name)
        if value in (None, "", []):
            if q.required:
                errors[q.name] = "required"
            continue
        try:
            typed = _typed(q, value, dt)
        except ValueError as exc:
            errors[q.name] = str(exc)
            continue
        if q.kind in ("select_one", "select_multiple"):
            allowed = {c.name for c in q.choices
                       if not q.choice_filter
                       or expressions.truthy(q.choice_filter, clean, row=c.columns)}
            picked = typed if isinstance(typed, list) else [typed]
            if not picked or any(p not in allowed for p in picked):
                errors[q.name] = "choice"
                continue
        if q.constraint and not expressions.truthy(q.constraint, clean, current=typed):
            errors[q.name] = "constraint"
            continue
        clean[q.name] = typed
    if errors:
        raise AnswerError(errors)
    return clean


def _typed(q: Question, value: Any, dt: Any) -> Any:
    if q.kind == "select_multiple":
        items = value if isinstance(value, list) else str(value).split()
        if not all(isinstance(i, str) for i in items):
            raise ValueError("choice")
        return list(dict.fromkeys(items))
    if isinstance(value, (list, dict)):
        raise ValueError("type")
    text = str(value).strip()
    if q.kind == "integer":
        if not re.fullmatch(r"-?\d{1,9}", text):
            raise ValueError("integer")
        return int(text)
    if q.kind == "decimal":
        try:
            number = float(text)
        except ValueError:
            raise ValueError("decimal") from None
        if number != number or abs(number) > 1e12:
            raise ValueError("decimal")
        return number
    if q.kind == "date":
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError("date") from None
    if q.kind == "text":
        if len(text) > 2000:
            raise ValueError("too_long")
        return text
    return text  # select_one
