"""Hash lists: import and export of PDQ / MD5 / SHA-256 hashes as CSV or JSON lines.

CSV: an optional header naming the columns (`hash`, `kind`, `label`, `entry_id`), otherwise the
columns are `hash[,kind[,label]]`. Without a kind, 32 hex characters are MD5 and 64 are PDQ.
Rows sharing a non-empty `entry_id` (as in our own exports) become one entry.

JSON lines: one object per entry, with at least one of "pdq", "md5", "sha256" and an optional
"label" (other keys, such as "entry_id", are ignored).

An import parses the whole file first; any malformed line refuses the whole import, with line
numbers, and nothing is written. Exports hold entry ids, labels and hashes, never case data.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

from django.db import connection, transaction
from django.db.models import Field, Model
from django.utils import timezone
from django.utils.translation import gettext as _

from anshim.cases.services import audit
from anshim.erasure.changelog import lock_change_log
from anshim.erasure.models import (
    Bank,
    BankChange,
    BankEntry,
    ChangeOp,
    EntrySource,
    Fingerprint,
    FingerprintKind,
    MediaKind,
)
from anshim.erasure.services import (
    HashValue,
    actor_or_none,
    is_hex_hash,
    notify_matchers,
    require_manage_erasure,
)

FORMATS = ("csv", "jsonl")
#: Kinds a hash list may carry (vPDQ frames belong to a video entry, not to a list line).
LIST_KINDS = (FingerprintKind.PDQ, FingerprintKind.MD5, FingerprintKind.SHA256)
MAX_LABEL = 200
#: How many malformed lines an error report lists before summarising the rest.
MAX_REPORTED_ERRORS = 20
_CHUNK = 5000
_CSV_COLUMNS = ("hash", "kind", "label", "entry_id")


class HashListError(Exception):
    """A hash list is malformed; `errors` holds (line number, message), first ones first."""

    def __init__(self, errors: list[tuple[int, str]], total: int | None = None) -> None:
        self.errors = errors
        self.total = len(errors) if total is None else total
        super().__init__(self.text)

    @property
    def lines(self) -> list[str]:
        out = [_("line %(line)d: %(message)s") % {"line": n, "message": m}
               for n, m in self.errors]
        if self.total > len(self.errors):
            out.append(_("… and %(count)d more malformed lines") % {
                "count": self.total - len(self.errors)})
        return out

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True, slots=True)
class HashLine:
    """One future entry: the line it starts on, its hashes and its label."""

    line: int
    hashes: tuple[HashValue, ...]
    label: str = ""


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int
    skipped: int  # already in the bank, or repeated in the file
    entry_ids: tuple[int, ...]


def format_for(path: str | Path, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    return "csv" if Path(path).suffix.lower() == ".csv" else "jsonl"


# --- parsing ------------------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[int, str]] = []
        self.total = 0

    def add(self, line: int, message: str) -> None:
        self.total += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append((line, message))

    def raise_if_any(self) -> None:
        if self.total:
            raise HashListError(self.items, self.total)


def _hash_error(kind: str) -> str:
    if kind == FingerprintKind.MD5:
        return _("not a 32-hex MD5 hash")
    if kind == FingerprintKind.SHA256:
        return _("not a 64-hex SHA-256 hash")
    return _("not a 64-hex PDQ hash")


def _check_hash(value: Any, kind: str) -> str | None:
    """An error message, or None when `value` is a valid hash of `kind`."""
    if not isinstance(value, str) or not is_hex_hash(value.strip().lower(), kind):
        return _hash_error(kind)
    return None


def _check_label(label: Any) -> str | None:
    if not isinstance(label, str):
        return _("the label must be text")
    if len(label) > MAX_LABEL:
        return _("the label is longer than %(max)d characters") % {"max": MAX_LABEL}
    return None


def _cell(cells: list[str], columns: dict[str, int], name: str) -> str:
    i = columns.get(name)
    return cells[i] if i is not None and i < len(cells) else ""


def parse_csv(lines: Iterable[str]) -> list[HashLine]:
    errors = _Errors()
    out: list[HashLine] = []
    reader = csv.reader(lines)
    columns: dict[str, int] = {"hash": 0, "kind": 1, "label": 2}
    grouped: dict[str, int] = {}  # entry_id -> index in out
    first = True
    try:
        for row in reader:
            n = reader.line_num
            if not row or not "".join(row).strip():
                continue
            cells = [c.strip() for c in row]
            if first:
                first = False
                if cells[0].lower() == "hash":
                    columns = {c.lower(): i for i, c in enumerate(cells)
                               if c.lower() in _CSV_COLUMNS}
                    continue
            value = _cell(cells, columns, "hash").lower()
            kind = _cell(cells, columns, "kind").lower()
            label = _cell(cells, columns, "label")
            if not value:
                errors.add(n, _("the hash is missing"))
                continue
            if not kind:
                kind = {32: FingerprintKind.MD5, 64: FingerprintKind.PDQ}.get(len(value), "")
                if not kind:
                    errors.add(n, _("not a PDQ (64 hex) or MD5 (32 hex) hash"))
                    continue
            if kind not in LIST_KINDS:
                errors.add(n, _("unknown hash kind “%(kind)s” (pdq, md5 or sha256)")
                           % {"kind": kind[:20]})
                continue
            problem = _check_hash(value, kind) or _check_label(label)
            if problem:
                errors.add(n, problem)
                continue
            hv = HashValue(kind, value)
            group = _cell(cells, columns, "entry_id")
            if group and group in grouped:
                prev = out[grouped[group]]
                out[grouped[group]] = HashLine(prev.line, (*prev.hashes, hv), prev.label)
                continue
            if group:
                grouped[group] = len(out)
            out.append(HashLine(n, (hv,), label))
    except csv.Error as exc:
        errors.add(reader.line_num, _("unreadable CSV (%(error)s)") % {"error": exc})
    errors.raise_if_any()
    return out


def parse_jsonl(lines: Iterable[str]) -> list[HashLine]:
    errors = _Errors()
    out: list[HashLine] = []
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            errors.add(n, _("not valid JSON"))
            continue
        if not isinstance(obj, dict):
            errors.add(n, _("not a JSON object"))
            continue
        kinds = [k for k in LIST_KINDS if k in obj]
        if not kinds:
            errors.add(n, _("no hash (pdq, md5 or sha256)"))
            continue
        problem = next((p for k in kinds if (p := _check_hash(obj[k], k))), None)
        problem = problem or _check_label(obj.get("label", ""))
        if problem:
            errors.add(n, problem)
            continue
        hashes = tuple(HashValue(k, obj[k].strip().lower()) for k in kinds)
        out.append(HashLine(n, hashes, obj.get("label", "")))
    errors.raise_if_any()
    return out


def parse_hash_list(lines: Iterable[str], fmt: str) -> list[HashLine]:
    """Parse a whole list; raise HashListError listing the malformed lines."""
    if fmt == "csv":
        return parse_csv(lines)
    if fmt == "jsonl":
        return parse_jsonl(lines)
    raise ValueError(f"unknown hash list format {fmt!r}")


# --- import -------------------------------------------------------------------------------------


def _existing(bank: Bank, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    by_kind: dict[str, list[str]] = {}
    for kind, value in pairs:
        by_kind.setdefault(kind, []).append(value)
    for kind, values in by_kind.items():
        for start in range(0, len(values), _CHUNK):
            found.update(Fingerprint.objects.filter(
                bank=bank, kind=kind, value__in=values[start:start + _CHUNK],
            ).values_list("kind", "value"))
    return found


def _insert_rows(model: type[Model], fields: list[str], rows: list[tuple[Any, ...]], *,
                 returning: bool = False) -> list[int]:
    """Plain multi-row INSERTs: the ORM's per-object overhead made 100,000 lines take a minute.
    With `returning`, the new primary keys in insertion order."""
    meta = model._meta
    qn = connection.ops.quote_name
    columns = ", ".join(qn(str(cast(Field, meta.get_field(f)).column)) for f in fields)
    max_params = min(connection.features.max_query_params or 30_000, 30_000)
    per_statement = max(1, max_params // len(fields))
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            values = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(chunk))
            # Identifiers come from the model's metadata; every value is a bound parameter.
            sql = f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES {values}"  # noqa: S608
            if returning:
                sql += f" RETURNING {qn(str(cast(Field, meta.pk).column))}"
            cursor.execute(sql, [v for row in chunk for v in row])
            if returning:
                # Keys are handed out in VALUES order; RETURNING's row order is not promised.
                ids.extend(sorted(r[0] for r in cursor.fetchall()))
    return ids


def _copy_rows(model: type[Model], fields: list[str], rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL: COPY is several times faster than even multi-row INSERTs."""
    meta = model._meta
    qn = connection.ops.quote_name
    columns = ", ".join(qn(str(cast(Field, meta.get_field(f)).column)) for f in fields)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor
        with raw.copy(f"COPY {qn(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _new_entry_ids(count: int) -> list[int]:
    """PostgreSQL: draw `count` keys from the entry table's identity sequence."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [BankEntry._meta.db_table, count],
        )
        return sorted(r[0] for r in cursor.fetchall())


def _insert_entries(bank: Bank, items: list[HashLine], source: str, user: Any) -> list[int]:
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    user_id = user.pk if user is not None else None
    entry_rows = [
        (bank.pk, source,
         MediaKind.IMAGE if any(h.kind == FingerprintKind.PDQ for h in item.hashes)
         else MediaKind.HASHES, item.label, now, user_id)
        for item in items
    ]
    entry_fields = ["bank", "source", "media_kind", "label", "added_at", "added_by"]
    postgres = connection.vendor == "postgresql"
    if postgres and items:
        entry_ids = _new_entry_ids(len(items))
        _copy_rows(BankEntry, ["id", *entry_fields],
                   [(i, *row) for i, row in zip(entry_ids, entry_rows, strict=True)])
    else:
        entry_ids = _insert_rows(BankEntry, entry_fields, entry_rows, returning=True)
    insert = _copy_rows if postgres else _insert_rows
    insert(Fingerprint, ["entry", "bank", "kind", "value", "variant"], [
        (entry_id, bank.pk, h.kind, h.value, "original")
        for entry_id, item in zip(entry_ids, items, strict=True) for h in item.hashes
    ])
    insert(BankChange, ["bank", "entry_id", "op", "at"],
           [(bank.pk, entry_id, ChangeOp.ADD, now) for entry_id in entry_ids])
    return entry_ids


def import_hash_lines(
    bank: Bank, items: list[HashLine], *, source: str = EntrySource.IMPORT, actor: Any = None,
) -> ImportResult:
    """Add parsed lines to `bank` in one transaction; lines already banked are skipped."""
    require_manage_erasure(actor)
    user = actor_or_none(actor)
    with transaction.atomic():
        lock_change_log()
        banked = _existing(bank, {(h.kind, h.value) for item in items for h in item.hashes})
        seen: set[tuple[str, str]] = set()
        fresh: list[HashLine] = []
        for item in items:
            keys = {(h.kind, h.value) for h in item.hashes}
            if keys & banked or keys & seen:
                continue
            seen |= keys
            fresh.append(item)
        entry_ids = _insert_entries(bank, fresh, source, user)
        audit(actor=user, action="bank.import", target=bank,
              reason=f"{len(fresh)} added, {len(items) - len(fresh)} skipped")
    notify_matchers()
    return ImportResult(len(fresh), len(items) - len(fresh), tuple(entry_ids))


def import_hash_list(
    bank: Bank, lines: Iterable[str], *, fmt: str, source: str = EntrySource.IMPORT,
    actor: Any = None,
) -> ImportResult:
    """Parse then import; raises HashListError (nothing imported) on any malformed line."""
    return import_hash_lines(bank, parse_hash_list(lines, fmt), source=source, actor=actor)


# --- export -------------------------------------------------------------------------------------


def _entries(bank: Bank) -> Iterator[tuple[int, str, dict[str, str]]]:
    """(entry id, label, {kind: hash}) per entry, original hashes only, by entry id."""
    rows = (Fingerprint.objects.filter(bank=bank, kind__in=LIST_KINDS,
                                       variant="original")
            .order_by("entry_id", "id")
            .values_list("entry_id", "entry__label", "kind", "value").iterator(chunk_size=10_000))
    current: tuple[int, str, dict[str, str]] | None = None
    for entry_id, label, kind, value in rows:
        if current is None or current[0] != entry_id:
            if current is not None:
                yield current
            current = (entry_id, label, {})
        current[2].setdefault(kind, value)
    if current is not None:
        yield current


def export_hash_list(bank: Bank, out: TextIO, *, fmt: str, actor: Any = None) -> int:
    """Write `bank`'s hashes to `out`; returns the number of entries written."""
    require_manage_erasure(actor)
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_CSV_COLUMNS)
        for entry_id, label, hashes in _entries(bank):
            for kind in LIST_KINDS:
                if kind in hashes:
                    writer.writerow([hashes[kind], kind, label, entry_id])
            count += 1
    elif fmt == "jsonl":
        for entry_id, label, hashes in _entries(bank):
            obj: dict[str, Any] = {"entry_id": entry_id}
            obj.update({k: hashes[k] for k in LIST_KINDS if k in hashes})
            if label:
                obj["label"] = label
            out.write(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    else:
        raise ValueError(f"unknown hash list format {fmt!r}")
    audit(actor=actor_or_none(actor), action="bank.export", target=bank, reason=f"{count} entries")
    return count
