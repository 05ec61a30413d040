"""The audit log: who read or changed which case data, when, from where and why.

Entries form a keyed hash chain. Each stores the link of the entry before it (`prev_hash`) and
its own `entry_hash = HMAC-SHA256(audit key, canonical JSON of its fields, prev_hash included)`,
and carries a gap-free sequence number `seq`. The audit key lives outside the database (the
file `ANSHIM_AUDIT_KEY_FILE`, next to the key ring, or `ANSHIM_AUDIT_KEY`), so someone who can
write to the database but not read that key cannot recompute the chain after editing a row.

The head of the chain is anchored outside the database too: `anchor_head()` (run by
`anshim periodic` and `anshim audit anchor`) signs (seq, hash, time) with the Ed25519 evidence
key and appends the line to `ANSHIM_AUDIT_ANCHOR_FILE` (and optionally mails it to a second
party). `verify_chain()` checks every link against the key and every entry against the anchors,
so cutting off the tail and fixing `AuditHead`, or rewriting a row and recomputing every later
link, is caught. A missing `AuditHead` row is an error, never silently rebuilt (only an empty
log gets a fresh head).

The database refuses UPDATE and DELETE on the table (triggers, see `audit_triggers`); on
PostgreSQL the runtime role does not own the table, so it cannot drop them
(docs/deployment.md, "PostgreSQL roles").

Appending is serialised by locking the single `AuditHead` row (SELECT ... FOR UPDATE on
PostgreSQL; on SQLite every transaction is BEGIN IMMEDIATE, which takes the write lock), so two
concurrent requests can never fork the chain.

Never put personal data or secrets into `reason`: it is stored in the clear.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from threading import Lock
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from anshim.security import evidence_key
from anshim.security.models import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64
HEAD_PK = 1
USER_AGENT_CHARS = 200
AUDIT_KEY_BYTES = 32
# What an anchor's signature covers besides (seq, hash, time): a signature made for something
# else with the same evidence key can never pass as an anchor.
ANCHOR_PURPOSE = "anshim-audit-anchor-v1"

# The fields that the hash covers, in a fixed order (the JSON is key-sorted anyway).
HASHED_FIELDS = (
    "seq", "at", "actor_id", "actor_username", "actor_role", "action", "target_model",
    "target_pk", "case_id", "case_code", "client_address", "user_agent", "reason", "prev_hash",
)


class AuditError(Exception):
    """The audit log cannot be written or checked as it should (a missing key or head)."""


class AuditKeyMissing(AuditError):
    """The audit key file is gone while the log already has entries."""


class AuditHeadMissing(AuditError):
    """The `AuditHead` row is gone while the log has entries: never rebuilt silently."""


# --- The audit key (held outside the database) ----------------------------------------------

_key_lock = Lock()
_key_cache: tuple[str, bytes] | None = None  # (source, key)


def audit_key_path() -> Path:
    return Path(settings.ANSHIM_AUDIT_KEY_FILE)


def _key_source() -> str:
    env = os.environ.get("ANSHIM_AUDIT_KEY", "")
    return f"env:{env}" if env else f"file:{audit_key_path()}"


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AuditError(f"{where} does not hold a base64 audit key.") from None
    if len(key) != AUDIT_KEY_BYTES:
        raise AuditError(f"{where} must hold a {AUDIT_KEY_BYTES}-byte key, not {len(key)}.")
    return key


def audit_key(*, create: bool = False) -> bytes:
    """The HMAC key of the chain: `ANSHIM_AUDIT_KEY` (base64) or the key file.

    With `create=True` a missing key file is created (the first entry of an empty log); any
    other time a missing key is an `AuditKeyMissing`: a new key would make every existing link
    look forged."""
    global _key_cache
    source = _key_source()
    with _key_lock:
        if _key_cache is not None and _key_cache[0] == source:
            return _key_cache[1]
        env = os.environ.get("ANSHIM_AUDIT_KEY", "")
        if env:
            key = _decode_key(env, "ANSHIM_AUDIT_KEY")
        else:
            path = audit_key_path()
            if not path.exists():
                if not create:
                    raise AuditKeyMissing(
                        f"The audit key file {path} is missing: restore it from the backup "
                        "(or set ANSHIM_AUDIT_KEY); without it the chain cannot be checked.")
                _create_key_file(path)
            key = _decode_key(path.read_text(), str(path))
        _key_cache = (source, key)
        return key


def forget_audit_key() -> None:
    """Drop the cached key (tests that switch key files)."""
    global _key_cache
    with _key_lock:
        _key_cache = None


def _create_key_file(path: Path) -> None:
    """Owner-only, fsynced, and never replacing a key another process created meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(AUDIT_KEY_BYTES)).decode() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def canonical_json(values: dict[str, Any]) -> str:
    """The exact bytes the hash is computed over: sorted keys, no whitespace, UTC timestamps."""
    data = {name: values[name] for name in HASHED_FIELDS}
    at = data["at"]
    if isinstance(at, dt.datetime):
        data["at"] = at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_hash(values: dict[str, Any], key: bytes | None = None) -> str:
    """The link of one entry: HMAC-SHA256 under the audit key."""
    mac_key = key if key is not None else audit_key()
    return hmac.new(mac_key, canonical_json(values).encode("utf-8"), hashlib.sha256).hexdigest()


def plain_sha256(values: dict[str, Any]) -> str:
    """The unkeyed link of the chain before the audit key existed (migration 0003 checks the
    old chain with it before re-linking, and the tamper tests forge with it)."""
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
    """The head row, locked until the surrounding transaction ends.

    Created only for an empty log (a fresh or flushed database). Gone while entries exist is
    `AuditHeadMissing`: rebuilding it from the last row would bless a cut-off tail."""
    head = AuditHead.objects.using(using).select_for_update().filter(pk=HEAD_PK).first()
    if head is not None:
        return head
    # Create first, check second: two first writers on an empty log both see no head; the
    # loser's insert waits for the winner's commit and fails, and only then is the head there.
    # Checking the entries before creating would let the loser see the winner's committed
    # entry without its head and call an untouched log tampered with.
    try:
        with transaction.atomic(using=using):
            AuditHead.objects.using(using).create(pk=HEAD_PK, seq=0, last_hash=GENESIS_HASH)
        created = True
    except IntegrityError:
        created = False  # another writer created it first; the lock below waits for it
    head = AuditHead.objects.using(using).select_for_update().get(pk=HEAD_PK)
    if created and AuditEntry.objects.using(using).exists():
        # Our insert succeeded, so no head existed while these entries did: raising rolls the
        # caller's transaction back, the fresh head with it.
        raise AuditHeadMissing(
            "The audit head row is missing although the log has entries: the log may have "
            "been tampered with. Run `anshim audit verify`; nothing was written.")
    return head


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
        key = audit_key(create=head.seq == 0)
        values["seq"] = head.seq + 1
        values["prev_hash"] = head.last_hash
        # Microseconds survive both databases; the hash is computed over exactly this value.
        values["at"] = timezone.now().astimezone(dt.UTC)
        entry = AuditEntry(**values, entry_hash=compute_hash(values, key))
        entry.save(using=using, force_insert=True)
        head.seq = entry.seq
        head.last_hash = entry.entry_hash
        head.save(using=using, update_fields=["seq", "last_hash"])
    return entry


# --- Anchors: the signed head, kept outside the database ------------------------------------


class AnchorError(AuditError):
    """An anchor line cannot be read, or its signature does not hold."""


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: str  # ISO 8601, UTC
    key_id: str  # the evidence key that signed it (first 16 hex digits of SHA-256 of it)
    signature: str  # base64 Ed25519 over `signed_bytes()`

    def signed_bytes(self) -> bytes:
        data = {"purpose": ANCHOR_PURPOSE, "seq": self.seq, "hash": self.hash, "at": self.at}
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    def to_line(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "at": self.at,
                           "key_id": self.key_id, "signature": self.signature},
                          sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> Anchor:
        try:
            data = json.loads(line)
            anchor = cls(seq=int(data["seq"]), hash=str(data["hash"]), at=str(data["at"]),
                         key_id=str(data["key_id"]), signature=str(data["signature"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise AnchorError(f"not an anchor line ({exc})") from None
        if anchor.seq < 0:
            raise AnchorError("negative sequence number")
        return anchor


def anchor_path() -> Path:
    return Path(settings.ANSHIM_AUDIT_ANCHOR_FILE)


def _evidence_key() -> Any:
    # The center's Ed25519 evidence key signs anchors as it signs evidence packages: one key
    # for everything the center attests, whose public half police and courts already hold.
    return evidence_key.signing_key()


def _key_id(public: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_anchor(seq: int, last_hash: str, at: dt.datetime | None = None) -> Anchor:
    key = _evidence_key()
    when = (at or timezone.now()).astimezone(dt.UTC).isoformat(timespec="seconds")
    unsigned = Anchor(seq=seq, hash=last_hash, at=when, key_id=_key_id(key.public_key()),
                      signature="")
    signature = base64.b64encode(key.sign(unsigned.signed_bytes())).decode("ascii")
    return Anchor(seq=seq, hash=last_hash, at=when, key_id=unsigned.key_id, signature=signature)


def check_anchor_signature(anchor: Anchor, public: Any | None = None) -> None:
    from cryptography.exceptions import InvalidSignature

    public = public or _evidence_key().public_key()
    try:
        public.verify(base64.b64decode(anchor.signature, validate=True), anchor.signed_bytes())
    except (InvalidSignature, binascii.Error, ValueError):
        raise AnchorError(
            f"the anchor of {anchor.at} (seq {anchor.seq}) is not signed by the evidence key "
            f"{_key_id(public)}") from None


def read_anchors(path: Path | None = None) -> list[Anchor]:
    """Every anchor of the file, oldest first ([] when there is no file yet)."""
    path = path or anchor_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    anchors = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            anchors.append(Anchor.from_line(line))
        except AnchorError as exc:
            raise AnchorError(f"{path}, line {number}: {exc}") from None
    return anchors


def append_anchor(anchor: Anchor, path: Path | None = None) -> None:
    """One line, written with a single O_APPEND write and fsynced (file and directory), so a
    crash leaves the earlier anchors intact. The file should also be append-only for the
    operating system (`chattr +a`, docs/deployment.md)."""
    path = path or anchor_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (anchor.to_line() + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)


def anchor_head(using: str = "default", *, force: bool = False) -> Anchor | None:
    """Sign the current head and append it to the anchor file (and mail it when
    `ANSHIM_AUDIT_ANCHOR_MAIL_TO` names a second party). Returns None when the head has not
    moved since the last anchor (unless `force`), so a quiet night adds no lines."""
    head = AuditHead.objects.using(using).filter(pk=HEAD_PK).first()
    if head is None:
        if AuditEntry.objects.using(using).exists():
            raise AuditHeadMissing("The audit head row is missing: nothing was anchored.")
        return None
    if head.seq == 0 and not force:
        return None  # an empty log: nothing to vouch for yet
    anchors = read_anchors()
    if anchors and not force and anchors[-1].seq == head.seq and anchors[-1].hash == head.last_hash:
        return None
    anchor = sign_anchor(head.seq, head.last_hash)
    append_anchor(anchor)
    _mail_anchor(anchor)
    return anchor


def _mail_anchor(anchor: Anchor) -> None:
    recipients = [a for a in getattr(settings, "ANSHIM_AUDIT_ANCHOR_MAIL_TO", []) if a]
    if not recipients:
        return
    from django.core.mail import EmailMessage

    # The anchor holds no personal data: a sequence number, a hash, a time and a signature.
    EmailMessage(
        subject=f"Anshim audit anchor: seq {anchor.seq} at {anchor.at}",
        body=("Keep this line: `anshim audit verify --anchor-line '<line>'` proves that the "
              "audit log still holds everything up to this point.\n\n" + anchor.to_line() + "\n"),
        to=recipients,
        headers={"Message-ID": f"<anshim-audit-anchor-{anchor.seq}-{anchor.hash[:16]}@anshim>"},
    ).send()


# --- Verifying -------------------------------------------------------------------------------


class Problem(StrEnum):
    EDITED = "edited"
    REMOVED = "removed"
    REORDERED = "reordered"
    HEAD_MISSING = "head-missing"
    ANCHOR = "anchor"  # an anchor is unreadable or not signed by the evidence key
    KEY_MISSING = "key-missing"


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    bad_entry_id: int | None = None
    bad_seq: int | None = None
    problem: Problem | None = None
    message: str = "The audit chain is intact."
    anchored_seq: int | None = None  # the latest anchor the log was checked against
    anchored_at: str | None = None
    anchors: int = 0


def _bad(entries: int, entry: AuditEntry | None, problem: Problem, message: str) -> VerifyResult:
    return VerifyResult(
        ok=False, entries=entries, bad_entry_id=entry.pk if entry else None,
        bad_seq=entry.seq if entry else None, problem=problem, message=message,
    )


def _iter_entries(using: str, chunk_size: int = 2000) -> Iterator[AuditEntry]:
    return AuditEntry.objects.using(using).order_by("seq").iterator(chunk_size=chunk_size)


@dataclass
class _AnchorCheck:
    by_seq: dict[int, list[Anchor]] = field(default_factory=dict)
    latest: Anchor | None = None
    count: int = 0


def _load_anchors(extra: list[Anchor]) -> _AnchorCheck:
    anchors = [*read_anchors(), *extra]
    check = _AnchorCheck(count=len(anchors))
    if not anchors:
        return check
    key_path = evidence_key.key_path
    if not key_path().exists():  # never create a fresh key to check old signatures with
        raise AnchorError(f"the evidence key {key_path()} is missing: restore it from the "
                          "key backup")
    public = _evidence_key().public_key()
    for anchor in anchors:
        check_anchor_signature(anchor, public)
        check.by_seq.setdefault(anchor.seq, []).append(anchor)
        if check.latest is None or anchor.seq > check.latest.seq:
            check.latest = anchor
    return check


def verify_chain(using: str = "default", *, anchors: list[Anchor] | None = None) -> VerifyResult:
    """Walk the whole log in sequence order and report the first inconsistency.

    - removed: a gap in the sequence numbers, a link to an entry that no longer exists, a log
      that ends before the head says it does, or before an anchor says it did;
    - reordered: entries out of their insertion order, or linking to a later entry;
    - edited: an entry whose content no longer matches its keyed hash, or whose hash differs
      from the one an anchor recorded for its sequence number;
    - head-missing, key-missing, anchor: the head row, the audit key, or a valid anchor is
      missing where one must be.

    `anchors` adds anchors held elsewhere (a mailed line, a copy of the file) to those of
    `ANSHIM_AUDIT_ANCHOR_FILE`.
    """
    try:
        key = audit_key(create=not AuditEntry.objects.using(using).exists())
    except AuditKeyMissing as exc:
        return _bad(0, None, Problem.KEY_MISSING, str(exc))
    try:
        check = _load_anchors(anchors or [])
    except AnchorError as exc:
        return _bad(0, None, Problem.ANCHOR, f"Anchor not valid: {exc}.")

    def digest(entry: AuditEntry) -> str:
        return compute_hash(entry_values(entry), key)

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
            if linked is None and digest(entry) == entry.entry_hash:
                return _bad(count, entry, Problem.REMOVED,
                            f"Entries removed: entry id {entry.pk} (seq {entry.seq}) links to an "
                            "entry that is no longer in the log.")
        if digest(entry) != entry.entry_hash:
            return _bad(count, entry, Problem.EDITED,
                        f"Entry edited: entry id {entry.pk} (seq {entry.seq}) no longer matches "
                        "its hash under the audit key.")
        if entry.prev_hash != expected_prev_hash:
            return _bad(count, entry, Problem.EDITED,
                        f"Entry edited: the link of entry id {entry.pk} (seq {entry.seq}) to the "
                        "entry before it was changed.")
        for anchor in check.by_seq.get(entry.seq, []):
            if anchor.hash != entry.entry_hash:
                return _bad(count, entry, Problem.EDITED,
                            f"Entry rewritten: entry id {entry.pk} (seq {entry.seq}) differs "
                            f"from the anchor signed at {anchor.at}.")
        prev = entry
    last_seq = prev.seq if prev else 0
    last_hash = prev.entry_hash if prev else GENESIS_HASH
    if check.latest is not None and check.latest.seq > last_seq:
        return _bad(count, None, Problem.REMOVED,
                    f"Entries removed: the log ends at seq {last_seq} but the anchor signed at "
                    f"{check.latest.at} records seq {check.latest.seq}.")
    for anchor in check.by_seq.get(0, []):
        if anchor.hash != GENESIS_HASH:
            return _bad(count, None, Problem.EDITED,
                        f"The anchor signed at {anchor.at} does not start the chain.")
    head = AuditHead.objects.using(using).filter(pk=HEAD_PK).first()
    if head is None and (count or check.count):
        return _bad(count, None, Problem.HEAD_MISSING,
                    "The audit head row is missing: the log cannot be trusted to be complete.")
    if head is not None and head.seq != last_seq:
        return _bad(count, None, Problem.REMOVED,
                    f"Entries removed: the log ends at seq {last_seq} but {head.seq} entries "
                    "were written.")
    if head is not None and head.last_hash != last_hash:
        return _bad(count, prev, Problem.EDITED,
                    f"Entry edited: the last entry (seq {last_seq}) does not match the recorded "
                    "end of the chain.")
    latest = check.latest
    if latest is None:
        message = f"The audit chain is intact ({count} entries; not anchored yet)."
    else:
        message = (f"The audit chain is intact ({count} entries; matches {check.count} anchors, "
                   f"the latest signed at {latest.at} for seq {latest.seq}).")
    return VerifyResult(ok=True, entries=count, message=message,
                        anchored_seq=latest.seq if latest else None,
                        anchored_at=latest.at if latest else None, anchors=check.count)


def head_hash(using: str = "default") -> tuple[int, str]:
    """(seq, hash) of the end of the chain, as `anchor_head()` signs it."""
    head = AuditHead.objects.using(using).filter(pk=HEAD_PK).first()
    return (head.seq, head.last_hash) if head else (0, GENESIS_HASH)
