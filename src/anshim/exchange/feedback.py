"""Partner feedback: what a platform did about a URL, one of our entries or one of our hashes.

Scope (issue 16): feedback touches only sightings on the platform the partner represents
(`Partner.platform`) whose entry is in a bank shared with the partner. A URL on another
platform, an entry or hash of a bank not shared, or any URL from a partner linked to no
platform is answered exactly like something that does not exist (`NotInScope`, a 404 that
says nothing about whether it exists elsewhere).

Applying: "removed" and "not_found" mark the scoped sightings removed (which closes the
takedown requests whose every URL is gone, as a specialist's answer would); "refused" moves
their open takedown requests to refused. Per-hash opinions (`record_hash_opinions`) follow
StopNCII's and NCMEC's vocabularies (see `OPINION_ALIASES`): "confirmed" (Blocked /
affirmative) means the partner acted on the match, so its copies are gone as for "removed";
"disputed" (NotBlocked / negative), "pending_review" and "seen" are recorded for reviewers.
Every item is one `PartnerFeedback` row and is applied in its own transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from anshim.erasure.models import BankEntry, Fingerprint, Sighting, SightingStatus, Tombstone
from anshim.exchange.feed import shared_bank_ids
from anshim.exchange.models import FeedbackAction, Partner, PartnerFeedback
from anshim.security.audit import record as audit_record

#: Sent after a feedback item was stored and applied: `feedback`, `sightings` (the ids it
#: touched). For "when a partner reports" listeners (notifications, metrics).
feedback_applied = Signal()

#: Other vocabularies -> ours. StopNCII reports per hash Blocked / NotBlocked / PendingReview;
#: NCMEC's feedback is affirmative or negative with a reason.
OPINION_ALIASES: dict[str, str] = {
    "confirmed": FeedbackAction.CONFIRMED, "disputed": FeedbackAction.DISPUTED,
    "pending_review": FeedbackAction.PENDING_REVIEW, "seen": FeedbackAction.SEEN,
    "Blocked": FeedbackAction.CONFIRMED, "NotBlocked": FeedbackAction.DISPUTED,
    "PendingReview": FeedbackAction.PENDING_REVIEW,
    "affirmative": FeedbackAction.CONFIRMED, "negative": FeedbackAction.DISPUTED,
}
_REMOVING = {FeedbackAction.REMOVED, FeedbackAction.NOT_FOUND, FeedbackAction.CONFIRMED}
#: Audit event of every feedback item received (reason: its action).
AUDIT_FEEDBACK = "exchange.feedback"


class NotInScope(LookupError):
    """Nothing by that URL, entry or hash is visible to this partner."""


# The old name (API answers `unknown_entry` for entries, `not_found` for URLs and hashes).
UnknownEntry = NotInScope


def _entry_known(partner: Partner, entry_id: int, banks: list[int]) -> bool:
    return (BankEntry.objects.filter(pk=entry_id, bank_id__in=banks).exists()
            or Tombstone.objects.filter(entry_id=entry_id, bank_id__in=banks).exists())


def _url_on_platform(partner: Partner, url: str) -> bool:
    from anshim.erasure.platforms import platform_for_url

    if partner.platform_id is None:
        return False
    platform = platform_for_url(url, create=False)
    return platform is not None and platform.pk == partner.platform_id


def scoped_sightings(partner: Partner, *, url: str = "", entry_ids: Sequence[int] = (),
                     ) -> list[Sighting]:
    """The sightings this partner's feedback may touch: on its platform, of an entry of a
    bank shared with it (live or withdrawn), matching the URL and/or entries given."""
    if partner.platform_id is None:
        return []
    banks = shared_bank_ids(partner)
    query = Sighting.objects.filter(platform_id=partner.platform_id).exclude(
        status=SightingStatus.REJECTED)
    if url:
        query = query.filter(Q(page_url=url) | Q(media_url=url))
    if entry_ids:
        live_ids = set(BankEntry.objects.filter(pk__in=entry_ids, bank_id__in=banks)
                       .values_list("pk", flat=True))
        gone = set(Tombstone.objects.filter(entry_id__in=entry_ids, bank_id__in=banks)
                   .values_list("entry_id", flat=True))
        query = query.filter(entry_id__in=live_ids | gone)
    else:
        live = BankEntry.objects.filter(bank_id__in=banks).values("pk")
        gone_q = Tombstone.objects.filter(bank_id__in=banks).values("entry_id")
        query = query.filter(Q(entry_id__in=live) | Q(entry_id__in=gone_q))
    return list(query.order_by("pk"))


def _apply(item: PartnerFeedback, sightings: list[Sighting]) -> bool:
    """Through the erasure app's own domain actions (each its own transaction, rows locked),
    so the sighting, the case timeline, the audit and the takedown requests move exactly as
    when a specialist records the answer."""
    from django.core.exceptions import ValidationError

    from anshim.erasure.models import TakedownRequest, TakedownState
    from anshim.erasure.sightings import mark_removed
    from anshim.erasure.takedowns import Why, transition

    note = f"partner {item.partner}: {item.action}"
    platform_id = item.partner.platform_id
    changed = False
    for sighting in sightings:
        if item.action in _REMOVING:
            # "not found" means the content is no longer there to remove.
            changed = mark_removed(sighting, at=item.acted_at,
                                   reason=Why.PARTNER_FEEDBACK) or changed
        elif item.action == FeedbackAction.REFUSED:
            for req in TakedownRequest.objects.filter(
                    items__sighting=sighting, platform_id=platform_id or 0,
                    state__in=[TakedownState.SENT, TakedownState.ACKNOWLEDGED,
                               TakedownState.NO_RESPONSE]).distinct().order_by("pk"):
                try:
                    transition(req, TakedownState.REFUSED, note=note, at=item.acted_at,
                               why=Why.PARTNER_FEEDBACK)
                except ValidationError:
                    # Its state moved on meanwhile (removed, closed): nothing left to refuse.
                    continue
                changed = True
    return changed


def apply_feedback(item: PartnerFeedback, sightings: list[Sighting] | None = None) -> bool:
    """Carry `item` to the sightings and takedown requests in its partner's scope; sets
    `applied_at` when something changed. Returns whether it did."""
    if sightings is None:
        sightings = scoped_sightings(
            item.partner, url=item.url,
            entry_ids=[item.entry_id] if item.entry_id is not None else ())
    applied = _apply(item, sightings) if sightings else False
    if applied:
        item.applied_at = timezone.now()
        item.save(update_fields=["applied_at"])
    feedback_applied.send(PartnerFeedback, feedback=item, sightings=[s.pk for s in sightings])
    return applied


def record_feedback(
    partner: Partner, *, action: str, url: str = "", entry_id: int | None = None,
    reference: str = "", acted_at: dt.datetime,
) -> PartnerFeedback:
    """Store and apply one report about a URL and/or entry; NotInScope when the partner may
    not speak about it."""
    banks = shared_bank_ids(partner)
    if entry_id is not None and not _entry_known(partner, entry_id, banks):
        raise NotInScope(f"entry {entry_id} is not in a bank shared with you")
    if url and not _url_on_platform(partner, url):
        raise NotInScope("no such URL on your platform")
    sightings = scoped_sightings(partner, url=url,
                                 entry_ids=[entry_id] if entry_id is not None else ())
    with transaction.atomic(durable=True):
        item = PartnerFeedback.objects.create(
            partner=partner, action=action, url=url, entry_id=entry_id,
            reference=reference, acted_at=acted_at,
        )
        audit_record(actor=None, action=AUDIT_FEEDBACK, target=item, reason=action)
    apply_feedback(item, sightings)
    return item


@dataclass(frozen=True)
class HashOpinion:
    kind: str
    value: str
    opinion: str  # any key of OPINION_ALIASES
    acted_at: dt.datetime
    reason: str = ""
    reference: str = ""


@dataclass(frozen=True)
class HashOpinionResult:
    status: str  # "recorded" or "not_found"
    entry_ids: tuple[int, ...] = ()
    feedback_ids: tuple[int, ...] = ()


def _entries_of_hash(bank_ids: list[int], kind: str, value: str) -> list[int]:
    if kind == "vpdq":
        from anshim.exchange.lookup import _vpdq_matches

        return sorted({m.entry_id for m in _vpdq_matches(set(bank_ids), [value])[0]})
    live = set(Fingerprint.objects.filter(bank_id__in=bank_ids, kind=kind, value=value.lower())
               .values_list("entry_id", flat=True))
    return sorted(live)


def record_hash_opinions(partner: Partner, opinions: Sequence[HashOpinion],
                         ) -> list[HashOpinionResult]:
    """One result per opinion, in order. A hash in no shared bank is "not_found" (nothing is
    stored for it, and nothing says whether we hold it elsewhere)."""
    banks = shared_bank_ids(partner)
    results: list[HashOpinionResult] = []
    for op in opinions:
        entries = _entries_of_hash(banks, op.kind, op.value) if banks else []
        if not entries:
            results.append(HashOpinionResult("not_found"))
            continue
        action = OPINION_ALIASES[op.opinion]
        # A vPDQ signal is too long to keep; its entries say what it was.
        stored = op.value.lower() if op.kind != "vpdq" else ""
        ids: list[int] = []
        for entry_id in entries:
            with transaction.atomic(durable=True):
                item = PartnerFeedback.objects.create(
                    partner=partner, action=action, entry_id=entry_id, hash_kind=op.kind,
                    hash_value=stored, reason=op.reason[:200], reference=op.reference,
                    acted_at=op.acted_at,
                )
                audit_record(actor=None, action=AUDIT_FEEDBACK, target=item, reason=action)
            apply_feedback(item)
            ids.append(item.pk)
        results.append(HashOpinionResult("recorded", tuple(entries), tuple(ids)))
    return results
