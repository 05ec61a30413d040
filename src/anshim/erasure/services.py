"""Bank services: create banks, register fingerprints, withdraw them.

Each service asks the access policy (staff need MANAGE_ERASURE; `actor=None` is the system: a
management command or the victim portal), writes inside one transaction together with its
change-log record, adds a timeline event on the case and an audit entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from anshim.cases.consent import require_consent
from anshim.cases.models import Case, Consent, ConsentGiver, ConsentScope
from anshim.cases.services import add_event, audit
from anshim.erasure.changelog import lock_change_log
from anshim.erasure.models import (
    DEFAULT_THRESHOLD,
    HEX_LENGTH,
    Bank,
    BankChange,
    BankEntry,
    BankPurpose,
    ChangeOp,
    EntrySource,
    Fingerprint,
    FingerprintDecode,
    FingerprintKind,
    MediaKind,
    Tombstone,
)
from anshim.fingerprint.errors import FingerprintError
from anshim.fingerprint.types import ImageFingerprint, VideoFingerprint
from anshim.security.policy import Action, require

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class HashValue:
    """One hash to register (lowercase hex)."""

    kind: str
    value: str
    quality: int | None = None
    variant: str = "original"
    frame_number: int | None = None
    timestamp: float | None = None
    #: Provenance (issue 20): the decode and the engine that produced the value ("": computed
    #: outside, e.g. an imported list).
    decode: str = FingerprintDecode.EXACT
    engine: str = ""


def is_hex_hash(value: str, kind: str) -> bool:
    return len(value) == HEX_LENGTH[FingerprintKind(kind)] and set(value) <= _HEX


def hash_values(fp: ImageFingerprint | VideoFingerprint) -> list[HashValue]:
    """The rows a fingerprint-engine result becomes (dihedral variants included)."""
    engine, decode = fp.engine, fp.decode
    rows = [HashValue(FingerprintKind.MD5, fp.md5, engine=engine),
            HashValue(FingerprintKind.SHA256, fp.sha256, engine=engine)]
    if isinstance(fp, ImageFingerprint):
        rows.append(HashValue(FingerprintKind.PDQ, fp.pdq, quality=fp.quality, decode=decode,
                              engine=engine))
        for name, value in (fp.dihedral or {}).items():
            if name != "original":
                rows.append(HashValue(FingerprintKind.PDQ, value, fp.quality, variant=name,
                                      decode=decode, engine=engine))
    else:
        rows.extend(
            HashValue(FingerprintKind.VPDQ, f.pdq, quality=f.quality, frame_number=f.frame_number,
                      timestamp=f.timestamp, decode=decode, engine=engine)
            for f in fp.frames
        )
    return rows


def actor_or_none(actor: Any) -> Any:
    """The user to store on rows: None for the system and the victim portal."""
    return actor if getattr(actor, "is_authenticated", False) else None


def require_manage_erasure(actor: Any) -> None:
    if actor is not None:
        require(actor, Action.MANAGE_ERASURE)


# --- Banks ----------------------------------------------------------------------------------


def create_bank(
    name: str, *, purpose: str = BankPurpose.VICTIM_IMAGES, threshold: int = DEFAULT_THRESHOLD,
    enabled: bool = True, actor: Any = None,
) -> Bank:
    require_manage_erasure(actor)
    bank = Bank(name=name.strip(), purpose=purpose, threshold=threshold, enabled=enabled)
    bank.full_clean()
    with transaction.atomic():
        bank.save()
        audit(actor=actor_or_none(actor), action="bank.create", target=bank)
    return bank


def update_bank(bank: Bank, *, actor: Any = None, **changes: Any) -> Bank:
    """Change threshold / enabled / purpose; running matchers pick it up on their next query."""
    require_manage_erasure(actor)
    allowed = {"threshold", "enabled", "purpose"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")
    for field, value in changes.items():
        setattr(bank, field, value)
    bank.full_clean()
    with transaction.atomic():
        bank.save()
        audit(actor=actor_or_none(actor), action="bank.update", target=bank,
              reason=", ".join(sorted(changes)))
    notify_matchers()
    return bank


# --- Registration -----------------------------------------------------------------------------


def fingerprint_consent(case: Case) -> Consent:
    """The consent that allows registering `case`'s fingerprints (raises ConsentMissing)."""
    require_consent(case, ConsentScope.REGISTER_FINGERPRINTS)
    active = Consent.objects.filter(
        case=case, scope=ConsentScope.REGISTER_FINGERPRINTS, withdrawn_at__isnull=True
    )
    # The victim's own consent is the one that allows it; a guardian's adds to it.
    consent = (active.filter(given_by=ConsentGiver.VICTIM).order_by("-granted_at").first()
               or active.order_by("-granted_at").first())
    assert consent is not None  # require_consent passed
    return consent


def _validated(fingerprints: ImageFingerprint | VideoFingerprint | Sequence[HashValue],
               ) -> tuple[list[HashValue], str]:
    if isinstance(fingerprints, ImageFingerprint):
        return hash_values(fingerprints), MediaKind.IMAGE
    if isinstance(fingerprints, VideoFingerprint):
        return hash_values(fingerprints), MediaKind.VIDEO
    rows = list(fingerprints)
    if not rows:
        raise ValidationError(_("An entry needs at least one fingerprint."), code="empty")
    for row in rows:
        if row.kind not in FingerprintKind.values or not is_hex_hash(row.value, row.kind):
            raise ValidationError(
                _("Not a valid %(kind)s hash."), code="bad_hash", params={"kind": row.kind}
            )
    kinds = {r.kind for r in rows}
    media = (MediaKind.VIDEO if FingerprintKind.VPDQ in kinds
             else MediaKind.IMAGE if FingerprintKind.PDQ in kinds else MediaKind.HASHES)
    return rows, media


def register_fingerprints(
    bank: Bank,
    *,
    case: Case | None = None,
    fingerprints: ImageFingerprint | VideoFingerprint | Sequence[HashValue],
    source: str,
    actor: Any,
    label: str = "",
) -> BankEntry:
    """Add one entry (one piece of media) to `bank`.

    With a case, the case's fingerprint-registration consent must be given (ConsentMissing
    otherwise); the entry keeps a reference to that consent.

    Idempotent per file: when the same file (its SHA-256) is already an entry of `bank` for
    the same case, that entry is returned with `already_registered` set and nothing is added
    (re-running `anshim bank add` after a crash adds only what is missing). The check runs
    under the change-log lock, so two registrations of one file at once add it once.
    """
    require_manage_erasure(actor)
    if source not in EntrySource.values:
        raise ValidationError(_("Unknown entry source."), code="bad_source")
    rows, media = _validated(fingerprints)
    sha256 = next((r.value for r in rows if r.kind == FingerprintKind.SHA256), None)
    with transaction.atomic():
        consent = fingerprint_consent(case) if case is not None else None
        lock_change_log()
        existing = registered_file(bank, sha256, case) if sha256 else None
        if existing is not None:
            existing.already_registered = True
            return existing
        entry = BankEntry.objects.create(
            bank=bank, case=case, consent=consent, source=source, media_kind=media,
            label=label[:200], added_by=actor_or_none(actor),
        )
        Fingerprint.objects.bulk_create(
            Fingerprint(entry=entry, bank=bank, kind=r.kind, value=r.value, quality=r.quality,
                        variant=r.variant, frame_number=r.frame_number, timestamp=r.timestamp,
                        decode=r.decode, engine=r.engine)
            for r in rows
        )
        BankChange.objects.create(bank=bank, entry_id=entry.pk, op=ChangeOp.ADD)
        if case is not None:
            add_event(case, "bank.entry_added", gettext_noop("Fingerprints registered in a bank"),
                      actor_or_none(actor), {"bank": bank.name, "entry": entry.pk, "media": media})
        audit(actor=actor_or_none(actor), action="bank.entry.add", target=entry, case=case)
    notify_matchers()
    return entry


def registered_file(bank: Bank, sha256: str, case: Case | None) -> BankEntry | None:
    """The entry of `bank` (for `case`) that already holds the file with this SHA-256."""
    row = (Fingerprint.objects.filter(bank=bank, kind=FingerprintKind.SHA256, value=sha256,
                                      entry__case=case)
           .select_related("entry").order_by("entry_id").first())
    return row.entry if row is not None else None


def robust_hash_values(data: bytes, fp: ImageFingerprint, *, crops: bool = True,
                       ) -> list[HashValue]:
    """`hash_values(fp)` plus the robust registration variants of the image in `data`
    (``trim`` and the crop grid, `anshim.fingerprint.robust_strategy`), decoded in memory."""
    from anshim.fingerprint.robust_strategy import registration_fingerprints

    rows = hash_values(fp)
    seen = {r.value for r in rows if r.kind == FingerprintKind.PDQ}
    for reg in registration_fingerprints(data, crops=crops):
        if reg.variant != "original" and reg.pdq not in seen:
            seen.add(reg.pdq)
            rows.append(HashValue(FingerprintKind.PDQ, reg.pdq, reg.quality, variant=reg.variant,
                                  decode=fp.decode, engine=fp.engine))
    return rows


def robust_video_hash_values(data: bytes, fp: VideoFingerprint, *, crops: bool = True,
                             ) -> list[HashValue]:
    """`hash_values(fp)` plus the robust registration variants of the video in `data`
    (`anshim.fingerprint.robust_video`): the dense ``original`` frames (every 0.1 s, so a
    copy trimmed in time finds its instants), ``trim`` and the crop grids (every second),
    each a vPDQ row with its variant, frame number, timestamp and quality. Decoded in memory."""
    from anshim.fingerprint.robust_video import video_registration_frames

    rows = hash_values(fp)
    seen = {(r.variant, r.value) for r in rows if r.kind == FingerprintKind.VPDQ}
    for variant, frames in video_registration_frames(data, crops=crops).items():
        for f in frames:
            if (variant, f.pdq) not in seen:
                seen.add((variant, f.pdq))
                rows.append(HashValue(FingerprintKind.VPDQ, f.pdq, quality=f.quality,
                                      variant=variant, frame_number=f.frame_number,
                                      timestamp=f.timestamp, decode=fp.decode,
                                      engine=fp.engine))
    return rows


def register_image_robust(
    bank: Bank,
    *,
    data: bytes,
    case: Case | None = None,
    source: str,
    actor: Any,
    label: str = "",
    crops: bool = True,
    fingerprint: ImageFingerprint | VideoFingerprint | None = None,
) -> BankEntry:
    """Register one file with the robust re-upload variants (issue 8), all on ONE entry.

    The file is decoded in memory only (nothing is written to disk). An image gets its MD5,
    SHA-256, PDQ (and dihedral) rows plus one PDQ row per registration variant (``trim``,
    ``crop-…``, ``trim-crop-…``) with its quality; a video gets its vPDQ frames plus the robust
    video variants (`robust_video_hash_values`) as vPDQ rows. Withdrawing the entry deletes
    them all. Raises FingerprintError for what cannot be fingerprinted.
    `fingerprint`: the engine's result when the caller already has it.
    """
    require_manage_erasure(actor)
    if fingerprint is None:
        from anshim.fingerprint.engine import fingerprint_bytes

        fingerprint = fingerprint_bytes(data)
    rows: ImageFingerprint | VideoFingerprint | list[HashValue] = fingerprint
    if isinstance(fingerprint, ImageFingerprint):
        try:
            rows = robust_hash_values(data, fingerprint, crops=crops)
        except (ValueError, FingerprintError):
            rows = fingerprint  # not decodable as a still image here: the plain rows still help
    else:
        try:
            rows = robust_video_hash_values(data, fingerprint, crops=crops)
        except (ValueError, FingerprintError):
            rows = fingerprint  # the plain vPDQ rows still help
    return register_fingerprints(bank, case=case, fingerprints=rows, source=source, actor=actor,
                                 label=label)


# --- Withdrawal -------------------------------------------------------------------------------


def withdraw_entries(
    entry_ids: Iterable[int], *, actor: Any, reason: str = "",
) -> list[Tombstone]:
    """Delete entries and their fingerprints for good, leaving tombstones (ids only).

    Already withdrawn ids are skipped (withdrawal is idempotent); unknown ids raise
    BankEntry.DoesNotExist. Matchers in every process stop matching at their next query.
    """
    require_manage_erasure(actor)
    ids = sorted(set(entry_ids))
    tombstones: list[Tombstone] = []
    with transaction.atomic():
        lock_change_log()
        done = set(Tombstone.objects.filter(entry_id__in=ids).values_list("entry_id", flat=True))
        entries = {e.pk: e for e in BankEntry.objects.select_for_update()
                   .filter(pk__in=[i for i in ids if i not in done])}
        missing = [i for i in ids if i not in done and i not in entries]
        if missing:
            raise BankEntry.DoesNotExist(f"no bank entry {missing[0]}")
        for entry_id in ids:
            if entry_id in done:
                continue
            entry = entries[entry_id]
            # Case (by id) is read before the delete; the tombstone keeps no link to it.
            case = entry.case
            Fingerprint.objects.filter(entry=entry).delete()
            change = BankChange.objects.create(bank_id=entry.bank_id, entry_id=entry_id,
                                               op=ChangeOp.WITHDRAW)
            tomb = Tombstone.objects.create(
                entry_id=entry_id, bank_id=entry.bank_id, reason=reason[:200],
                withdrawn_by=actor_or_none(actor), seq=change.seq,
            )
            entry.delete()
            if case is not None:
                add_event(case, "bank.entry_withdrawn",
                          gettext_noop("Fingerprints withdrawn from a bank"), actor_or_none(actor),
                          {"entry": entry_id, "bank_id": tomb.bank_id})
            # The typed reason stays in the (encrypted) tombstone, out of the audit row.
            audit(actor=actor_or_none(actor), action="bank.entry.withdraw", target=tomb, case=case)
            tombstones.append(tomb)
    notify_matchers()
    return tombstones


def withdraw_entry(entry_id: int, *, actor: Any, reason: str = "") -> Tombstone | None:
    """Withdraw one entry; None when it was already withdrawn."""
    result = withdraw_entries([entry_id], actor=actor, reason=reason)
    return result[0] if result else None


def withdraw_case_entries(case: Case, *, actor: Any, reason: str = "") -> list[Tombstone]:
    """Withdraw every entry of `case` (the victim withdrew consent, or asked in the portal)."""
    ids = list(BankEntry.objects.filter(case=case).values_list("pk", flat=True))
    return withdraw_entries(ids, actor=actor, reason=reason) if ids else []


def notify_matchers() -> None:
    """Once committed: tell this process's matcher to poll the change log on its next query,
    and send `signals.bank_changed`.

    Matchers in other processes poll the change log before answering every query batch anyway.
    """
    transaction.on_commit(_announce_change)


def _announce_change() -> None:
    from anshim.erasure.matcher import notify_process_matcher
    from anshim.erasure.signals import bank_changed

    notify_process_matcher()
    bank_changed.send(sender=BankChange)
