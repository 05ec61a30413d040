"""The audit log: who read or changed which case data, when, from where and why.

Entries form a hash chain. Each stores the hash of the entry before it (`prev_hash`) and its
own `entry_hash = SHA-256(canonical JSON of its fields, prev_hash included)`, and carries a
gap-free sequence number `seq`. Editing, removing or reordering entries therefore breaks the
chain, and `verify_chain()` says where and how. The database refuses UPDATE and DELETE on the
table (triggers, see `audit_triggers`), so tampering needs DDL rights in the first place.

Appending is serialised by locking the single `AuditHead` row (SELECT ... FOR UPDATE on
PostgreSQL; on SQLite every transaction is BEGIN IMMEDIATE, which takes the write lock), so two
concurrent requests can never fork the chain.

Never put personal data or secrets into `reason`: it is stored in the clear.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from anshim.security.models import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64
HEAD_PK = 1
USER_AGENT_CHARS = 200

# The fields that the hash covers, in a fixed order (the JSON is key-sorted anyway).
HASHED_FIELDS = (
    "seq", "at", "actor_id", "actor_username", "actor_role", "action", "target_model",
    "target_pk", "case_id", "case_code", "client_address", "user_agent", "reason", "prev_hash",
)


def canonical_json(values: dict[str, Any]) -> str:
    """The exact bytes the hash is computed over: sorted keys, no whitespace, UTC timestamps."""
    data = {name: values[name] for name in HASHED_FIELDS}
    at = data["at"]
    if isinstance(at, dt.datetime):
        data["at"] = at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_hash(values: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(values).encode("utf-8")).hexdigest()


def entry_values(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in HASHED_FIELDS}


# --- Writing ---------------------------------------------------------------------------------


def _actor_fields(actor: Any) -> dict[str, Any]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return {"actor_id": None, "actor_username": "", "actor_role": ""}
    return {
        "actor_id": actor.pk,
        "actor_username": str(actor.get_username())[:150],
        "actor_role": str(getattr(actor, "role", "") or "")[:16],
    }


def _case_fields(case: Any, target: models.Model | None) -> dict[str, Any]:
    if case is None and target is not None:
        # A note, contact, consent...: find its case without an extra query when possible.
        case = getattr(target, "case", None) if _has_field(target, "case") else None
        if case is None and target._meta.label_lower == "cases.case":
            case = target
    if case is None:
        return {"case_id": None, "case_code": ""}
    return {"case_id": case.pk, "case_code": str(getattr(case, "code", "") or "")[:16]}


def _has_field(obj: models.Model, name: str) -> bool:
    try:
        obj._meta.get_field(name)
    except Exception:  # FieldDoesNotExist; keep the audit path free of surprises
        return False
    return True


def _request_fields(request: Any) -> dict[str, str]:
    if request is None:
        return {"client_address": "", "user_agent": ""}
    address = getattr(request, "client_address", None)
    if address is None:  # ClientAddressMiddleware did not run (commands, some tests)
        from anshim.security.middleware import client_address

        address = client_address(request)
    agent = request.META.get("HTTP_USER_AGENT", "") if hasattr(request, "META") else ""
    return {"client_address": str(address)[:64], "user_agent": str(agent)[:USER_AGENT_CHARS]}


def _locked_head(using: str) -> AuditHead:
    """The head row, locked until the surrounding transaction ends (created if missing)."""
    head = AuditHead.objects.using(using).select_for_update().filter(pk=HEAD_PK).first()
    if head is not None:
        return head
    # Missing (a freshly flushed test database): rebuild it from the last entry.
    last = AuditEntry.objects.using(using).order_by("-seq").first()
    try:
        with transaction.atomic(using=using):
            AuditHead.objects.using(using).create(
                pk=HEAD_PK,
                seq=last.seq if last else 0,
                last_hash=last.entry_hash if last else GENESIS_HASH,
            )
    except IntegrityError:
        pass  # another writer created it first; the lock below waits for that writer
    return AuditHead.objects.using(using).select_for_update().get(pk=HEAD_PK)


def record(
    *,
    actor: Any,
    action: str,
    target: models.Model | None = None,
    case: Any = None,
    request: Any = None,
    reason: str = "",
    actor_username: str = "",
    using: str = "default",
) -> AuditEntry:
    """Append one entry. Runs inside the caller's transaction when there is one, so a write
    that is rolled back leaves no audit line claiming it happened.

    `actor_username` records the name typed at a failed login (there is no actor then).
    """
    values: dict[str, Any] = {
        "action": action[:64],
        "target_model": target._meta.label_lower if target is not None else "",
        "target_pk": str(target.pk)[:64] if target is not None and target.pk is not None else "",
        "reason": str(reason),
        **_actor_fields(actor),
        **_case_fields(case, target),
        **_request_fields(request),
    }
    if actor_username and not values["actor_username"]:
        values["actor_username"] = actor_username[:150]
    with transaction.atomic(using=using):
        head = _locked_head(using)
        values["seq"] = head.seq + 1
        values["prev_hash"] = head.last_hash
        # Microseconds survive both databases; the hash is computed over exactly this value.
        values["at"] = timezone.now().astimezone(dt.UTC)
        entry = AuditEntry(**values, entry_hash=compute_hash(values))
        entry.save(using=using, force_insert=True)
        head.seq = entry.seq
        head.last_hash = entry.entry_hash
        head.save(using=using, update_fields=["seq", "last_hash"])
    return entry


# --- Verifying -------------------------------------------------------------------------------


class Problem(StrEnum):
    EDITED = "edited"
    REMOVED = "removed"
    REORDERED = "reordered"


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    bad_entry_id: int | None = None
    bad_seq: int | None = None
    problem: Problem | None = None
    message: str = "The audit chain is intact."


def _bad(entries: int, entry: AuditEntry | None, problem: Problem, message: str) -> VerifyResult:
    return VerifyResult(
        ok=False, entries=entries, bad_entry_id=entry.pk if entry else None,
        bad_seq=entry.seq if entry else None, problem=problem, message=message,
    )


def _iter_entries(using: str, chunk_size: int = 2000) -> Iterator[AuditEntry]:
    return AuditEntry.objects.using(using).order_by("seq").iterator(chunk_size=chunk_size)


def verify_chain(using: str = "default") -> VerifyResult:
    """Walk the whole log in sequence order and report the first inconsistency.

    - removed: a gap in the sequence numbers, a link to an entry that no longer exists, or a
      log that ends before the head says it does;
    - reordered: entries out of their insertion order, or linking to a later entry;
    - edited: an entry whose content no longer matches its hash.
    """
    count = 0
    prev: AuditEntry | None = None
    for entry in _iter_entries(using):
        count += 1
        expected_seq = prev.seq + 1 if prev else 1
        expected_prev_hash = prev.entry_hash if prev else GENESIS_HASH
        if entry.seq > expected_seq:
            return _bad(count, entry, Problem.REMOVED,
                        f"Entries removed: the sequence jumps from {expected_seq - 1} to "
                        f"{entry.seq} (entry id {entry.pk}).")
        if prev is not None and entry.pk < prev.pk:
            return _bad(count, entry, Problem.REORDERED,
                        f"Entries reordered: entry id {entry.pk} (seq {entry.seq}) was written "
                        f"before entry id {prev.pk} (seq {prev.seq}).")
        if entry.prev_hash != expected_prev_hash:
            linked = AuditEntry.objects.using(using).filter(entry_hash=entry.prev_hash).first()
            if linked is not None and linked.seq != entry.seq - 1:
                return _bad(count, entry, Problem.REORDERED,
                            f"Entries reordered: entry id {entry.pk} (seq {entry.seq}) follows "
                            f"seq {linked.seq} in the chain, not seq {entry.seq - 1}.")
            if linked is None and compute_hash(entry_values(entry)) == entry.entry_hash:
                return _bad(count, entry, Problem.REMOVED,
                            f"Entries removed: entry id {entry.pk} (seq {entry.seq}) links to an "
                            "entry that is no longer in the log.")
        if compute_hash(entry_values(entry)) != entry.entry_hash:
            return _bad(count, entry, Problem.EDITED,
                        f"Entry edited: entry id {entry.pk} (seq {entry.seq}) no longer matches "
                        "its hash.")
        if entry.prev_hash != expected_prev_hash:
            return _bad(count, entry, Problem.EDITED,
                        f"Entry edited: the link of entry id {entry.pk} (seq {entry.seq}) to the "
                        "entry before it was changed.")
        prev = entry
    head = AuditHead.objects.using(using).filter(pk=HEAD_PK).first()
    last_seq = prev.seq if prev else 0
    last_hash = prev.entry_hash if prev else GENESIS_HASH
    if head is not None and head.seq != last_seq:
        return _bad(count, None, Problem.REMOVED,
                    f"Entries removed: the log ends at seq {last_seq} but {head.seq} entries "
                    "were written.")
    if head is not None and head.last_hash != last_hash:
        return _bad(count, prev, Problem.EDITED,
                    f"Entry edited: the last entry (seq {last_seq}) does not match the recorded "
                    "end of the chain.")
    return VerifyResult(ok=True, entries=count,
                        message=f"The audit chain is intact ({count} entries).")


def head_hash(using: str = "default") -> tuple[int, str]:
    """(seq, hash) of the end of the chain: publish it elsewhere to anchor the log."""
    head = AuditHead.objects.using(using).filter(pk=HEAD_PK).first()
    return (head.seq, head.last_hash) if head else (0, GENESIS_HASH)
