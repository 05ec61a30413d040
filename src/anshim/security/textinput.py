"""Refuse control characters in every text input, once, before any view sees the request.

PostgreSQL cannot store NUL in text (psycopg raises, which was a 500 on every form field and
API field that reached the database), other control characters never belong in what people
type, and SQLite would store them silently: so both databases answer the same clear 422 that
names the field. Checked: the URL path, query parameters, form fields (names and values,
upload file names) and JSON bodies (keys and string values, at any depth). Tab, line feed and
carriage return are text; C0 and C1 controls and DEL are not. File contents are not text and
are not looked at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.utils.translation import gettext as _

CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Cheap test on the raw JSON bytes: a control character in a JSON string is escaped (\u00XX,
# or \b and \f) or, for C1, two UTF-8 bytes; raw C0 bytes make the JSON invalid anyway. Only
# a body that may hold one is parsed here (a false alarm costs one parse, nothing else).
_JSON_HINT = re.compile(rb"\\(?:u00|[bf])|\xc2[\x80-\x9f]")
JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
API_PREFIX = "/api/"


@dataclass(frozen=True)
class ControlCharacter:
    """Where the first control character was found: ninja's error location style."""

    loc: tuple[str | int, ...]
    codepoint: int

    @property
    def field(self) -> str:
        return ".".join(str(p) for p in self.loc[1:]) or str(self.loc[0])

    def codepoint_text(self) -> str:
        return f"U+{self.codepoint:04X}"


def find_control(text: str) -> int | None:
    match = CONTROL.search(text)
    return ord(match.group()) if match else None


def _walk_json(value: Any, loc: tuple[str | int, ...]) -> Iterator[ControlCharacter]:
    if isinstance(value, str):
        if (cp := find_control(value)) is not None:
            yield ControlCharacter(loc, cp)
    elif isinstance(value, dict):
        for key, item in value.items():
            if (cp := find_control(str(key))) is not None:
                yield ControlCharacter((*loc, str(key)), cp)
            yield from _walk_json(item, (*loc, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_json(item, (*loc, index))


def _walk_multidict(data: Any, where: str) -> Iterator[ControlCharacter]:
    for key, values in data.lists():
        if (cp := find_control(key)) is not None:
            yield ControlCharacter((where, key), cp)
        for value in values:
            text = getattr(value, "name", value)  # an upload: its file name is text
            if isinstance(text, str) and (cp := find_control(text)) is not None:
                yield ControlCharacter((where, key), cp)


def first_control_character(request: HttpRequest) -> ControlCharacter | None:
    try:
        return _first_control_character(request)
    except (MultiPartParserError, SuspiciousOperation):
        # A broken or oversized body: the view (or Django) answers it as before, clearly.
        return None


def _first_control_character(request: HttpRequest) -> ControlCharacter | None:
    if (cp := find_control(request.path)) is not None:
        return ControlCharacter(("path",), cp)
    for found in _walk_multidict(request.GET, "query"):
        return found
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    content_type = request.content_type or ""
    if content_type in FORM_TYPES and request.method == "POST":
        # CsrfViewMiddleware parses this form anyway; the parse is shared.
        for found in _walk_multidict(request.POST, "form"):
            return found
        for found in _walk_multidict(request.FILES, "form"):
            return found
    elif content_type in JSON_TYPES:
        body = request.body
        if not _JSON_HINT.search(body):
            return None
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return None  # not JSON at all: the API's own parser refuses it clearly
        for found in _walk_json(payload, ("body",)):
            return found
    return None


def refusal(request: HttpRequest, found: ControlCharacter) -> HttpResponse:
    message = _("The field “%(field)s” contains a control character (%(code)s). Remove it "
                "and send again.") % {"field": found.field, "code": found.codepoint_text()}
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"error": "invalid_input", "detail": [
            {"loc": list(found.loc), "msg": message, "type": "control_character"}]},
            status=422)
    return render(request, "security/invalid_input.html",
                  {"message": message, "field": found.field}, status=422)


class ControlCharacterMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = first_control_character(request)
        if found is not None:
            return refusal(request, found)
        return self.get_response(request)
