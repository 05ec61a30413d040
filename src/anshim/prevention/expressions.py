"""The subset of XLSForm (XPath) expressions that surveys use for skip logic, constraints and
choice filters, evaluated on the server exactly as `static/prevention/survey.js` does in the
browser (the two are tested against the same cases).

Supported: `${name}` references, `.` (the current answer), string and number literals,
`= != < <= > >=`, `and or`, `+ - * div mod`, unary minus, parentheses, and the functions
`selected()`, `count-selected()`, `not()`, `string-length()`, `contains()`, `starts-with()`,
`regex()`, `number()`, `int()`, `string()`, `coalesce()`, `if()`, `true()`, `false()`,
`today()`. A bare name (choice filters: `region=${region}`) is a column of the choice row.

XPath semantics where they matter: an empty answer compared with a number is NaN (so
`${age} > 10` is false while age is unanswered), a select_multiple answer is its choice names
joined by spaces, and `=` between a string and a number compares numbers.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

Value = str | float | bool


class ExpressionError(ValueError):
    """An expression outside the supported subset (named in the message)."""


@dataclass(frozen=True)
class Node:
    op: str  # "lit", "ref", "dot", "name", "call", "neg", or a binary operator
    value: Any = None
    args: tuple[Node, ...] = ()


_TOKEN = re.compile(
    r"\s*(?:(?P<ref>\$\{[A-Za-z_][\w.-]*\})|(?P<num>\d+(?:\.\d+)?|\.\d+)"
    r"|(?P<str>'[^']*'|\"[^\"]*\")|(?P<op>!=|<=|>=|=|<|>|\+|-|\*|\(|\)|,)"
    r"|(?P<name>[A-Za-z_][\w.-]*(?:\(\))?)|(?P<dot>\.))"
)
_FUNCTIONS = {
    "selected", "count-selected", "not", "string-length", "contains", "starts-with", "regex",
    "number", "int", "string", "coalesce", "if", "true", "false", "today", "boolean",
}
_PRECEDENCE = [("or",), ("and",), ("=", "!="), ("<", "<=", ">", ">="), ("+", "-"),
               ("*", "div", "mod")]


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"cannot read the expression at '{text[pos:pos + 12]}'")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ExpressionError(f"the expression '{self.text}' ends too early")
        self.i += 1
        return token

    def expect(self, value: str) -> None:
        _kind, got = self.take()
        if got != value:
            raise ExpressionError(f"expected '{value}' in '{self.text}', found '{got}'")

    def parse(self) -> Node:
        node = self.binary(0)
        if self.peek() is not None:
            raise ExpressionError(f"unexpected '{self.peek()[1]}' in '{self.text}'")  # type: ignore[index]
        return node

    def binary(self, level: int) -> Node:
        if level == len(_PRECEDENCE):
            return self.unary()
        node = self.binary(level + 1)
        while (token := self.peek()) is not None and token[1] in _PRECEDENCE[level] and (
                token[0] in ("op", "name")):
            self.take()
            node = Node(token[1], args=(node, self.binary(level + 1)))
        return node

    def unary(self) -> Node:
        token = self.peek()
        if token is not None and token[1] == "-":
            self.take()
            return Node("neg", args=(self.unary(),))
        return self.primary()

    def primary(self) -> Node:
        kind, value = self.take()
        if kind == "num":
            return Node("lit", float(value))
        if kind == "str":
            return Node("lit", value[1:-1])
        if kind == "ref":
            return Node("ref", value[2:-1])
        if kind == "dot":
            return Node("dot")
        if value == "(":
            node = self.binary(0)
            self.expect(")")
            return node
        if kind == "name":
            if value.endswith("()"):
                name = value[:-2]
                if name not in _FUNCTIONS:
                    raise ExpressionError(f"the function '{name}()' is not supported")
                return Node("call", name)
            nxt = self.peek()
            if nxt is not None and nxt[1] == "(":
                if value not in _FUNCTIONS:
                    raise ExpressionError(f"the function '{value}()' is not supported")
                self.take()
                args: list[Node] = []
                if (self.peek() or ("", ""))[1] != ")":
                    args.append(self.binary(0))
                    while (self.peek() or ("", ""))[1] == ",":
                        self.take()
                        args.append(self.binary(0))
                self.expect(")")
                return Node("call", value, tuple(args))
            return Node("name", value)
        raise ExpressionError(f"unexpected '{value}' in '{self.text}'")


@lru_cache(maxsize=4096)
def parse(text: str) -> Node:
    """The syntax tree of `text`; raises ExpressionError for anything unsupported."""
    return _Parser(text).parse()


def references(text: str) -> set[str]:
    """The `${name}` references in `text`."""
    found: set[str] = set()

    def walk(node: Node) -> None:
        if node.op == "ref":
            found.add(node.value)
        for arg in node.args:
            walk(arg)

    walk(parse(text))
    return found


def _number(value: Value) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, float):
        return value
    try:
        return float(value) if str(value).strip() else math.nan
    except ValueError:
        return math.nan


def _string(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return str(int(value)) if value.is_integer() else repr(value)
    return value


def _boolean(value: Value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return not (value == 0 or math.isnan(value))
    return value != ""


def _compare(op: str, a: Value, b: Value) -> bool:
    if op in ("=", "!="):
        if isinstance(a, bool) or isinstance(b, bool):
            equal = _boolean(a) == _boolean(b)
        elif isinstance(a, float) or isinstance(b, float):
            equal = _number(a) == _number(b)
        else:
            equal = a == b
        return equal if op == "=" else not equal
    x, y = _number(a), _number(b)
    if isinstance(a, str) and isinstance(b, str) and math.isnan(x) and math.isnan(y):
        # Dates (YYYY-MM-DD) compare as text, which orders them correctly.
        x_s, y_s = a, b
        return {"<": x_s < y_s, "<=": x_s <= y_s, ">": x_s > y_s, ">=": x_s >= y_s}[op]
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


Lookup = Callable[[str], Value]


def evaluate(text: str, answers: Mapping[str, Any], current: Any = None,
             row: Mapping[str, Any] | None = None, today: dt.date | None = None) -> Value:
    """Evaluate `text` with `answers` (name -> answer; lists for select_multiple), `current`
    for `.`, and a choice `row` for bare names."""

    def as_value(answer: Any) -> Value:
        if answer is None:
            return ""
        if isinstance(answer, (list, tuple)):
            return " ".join(str(a) for a in answer)
        if isinstance(answer, bool):
            return answer
        if isinstance(answer, (int, float)):
            return float(answer)
        return str(answer)

    def ev(node: Node) -> Value:
        op = node.op
        if op == "lit":
            return node.value  # type: ignore[no-any-return]
        if op == "ref":
            return as_value(answers.get(node.value))
        if op == "dot":
            return as_value(current)
        if op == "name":
            return as_value((row or {}).get(node.value))
        if op == "neg":
            return -_number(ev(node.args[0]))
        if op == "and":
            return _boolean(ev(node.args[0])) and _boolean(ev(node.args[1]))
        if op == "or":
            return _boolean(ev(node.args[0])) or _boolean(ev(node.args[1]))
        if op in ("=", "!=", "<", "<=", ">", ">="):
            return _compare(op, ev(node.args[0]), ev(node.args[1]))
        if op in ("+", "-", "*", "div", "mod"):
            a, b = _number(ev(node.args[0])), _number(ev(node.args[1]))
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if b == 0:
                return math.nan
            return a / b if op == "div" else math.fmod(a, b)
        if op == "call":
            return call(node.value, node.args)
        raise ExpressionError(f"unknown operation {op}")  # pragma: no cover

    def call(name: str, args: tuple[Node, ...]) -> Value:
        vals = [ev(a) for a in args] if name not in ("if", "coalesce") else []
        if name == "true":
            return True
        if name == "false":
            return False
        if name == "today":
            return (today or dt.date.today()).isoformat()
        if name == "selected":
            _need(name, vals, 2)
            return _string(vals[1]) in _string(vals[0]).split()
        if name == "count-selected":
            _need(name, vals, 1)
            return float(len(_string(vals[0]).split()))
        if name == "not":
            _need(name, vals, 1)
            return not _boolean(vals[0])
        if name == "boolean":
            _need(name, vals, 1)
            return _boolean(vals[0])
        if name == "string-length":
            _need(name, vals, 1)
            return float(len(_string(vals[0])))
        if name == "contains":
            _need(name, vals, 2)
            return _string(vals[1]) in _string(vals[0])
        if name == "starts-with":
            _need(name, vals, 2)
            return _string(vals[0]).startswith(_string(vals[1]))
        if name == "regex":
            _need(name, vals, 2)
            try:
                return re.search(_string(vals[1]), _string(vals[0])) is not None
            except re.error as exc:
                raise ExpressionError(f"invalid regular expression: {exc}") from exc
        if name == "number":
            _need(name, vals, 1)
            return _number(vals[0])
        if name == "int":
            _need(name, vals, 1)
            n = _number(vals[0])
            return n if math.isnan(n) else float(math.trunc(n))
        if name == "string":
            _need(name, vals, 1)
            return _string(vals[0])
        if name == "coalesce":
            if len(args) != 2:
                raise ExpressionError("coalesce() takes 2 arguments")
            first = ev(args[0])
            return first if _string(first) != "" else ev(args[1])
        if name == "if":
            if len(args) != 3:
                raise ExpressionError("if() takes 3 arguments")
            return ev(args[1]) if _boolean(ev(args[0])) else ev(args[2])
        raise ExpressionError(f"the function '{name}()' is not supported")  # pragma: no cover

    return ev(parse(text))


def _need(name: str, vals: list[Value], n: int) -> None:
    if len(vals) != n:
        raise ExpressionError(f"{name}() takes {n} argument{'s' if n > 1 else ''}")


def truthy(text: str, answers: Mapping[str, Any], current: Any = None,
           row: Mapping[str, Any] | None = None, today: dt.date | None = None) -> bool:
    return _boolean(evaluate(text, answers, current, row, today))
