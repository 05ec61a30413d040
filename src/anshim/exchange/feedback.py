"""Partner feedback: what a platform did about a URL or one of our entries.

`record_feedback` stores the report; `apply_feedback` is the hook that carries it to the
takedown requests and sightings it concerns. Those are built by the erasure workflow (a later
issue), which connects here by replacing the body of `apply_feedback` (or registering a handler
with `register_feedback_handler`); until then feedback is stored and left unapplied
(`applied_at` empty), so nothing is lost when the workflow arrives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from anshim.erasure.models import BankEntry, Tombstone
from anshim.exchange.feed import shared_bank_ids
from anshim.exchange.models import Partner, PartnerFeedback

FeedbackHandler = Callable[[PartnerFeedback], bool]
_handlers: list[FeedbackHandler] = []


class UnknownEntry(LookupError):
    """The entry id is not (and never was) in a bank shared with the partner."""


def register_feedback_handler(handler: FeedbackHandler) -> None:
    """Let the erasure workflow act on feedback. A handler returns True when it applied it."""
    if handler not in _handlers:
        _handlers.append(handler)


def apply_feedback(feedback: PartnerFeedback) -> bool:
    """Update the takedown requests and sightings matching `feedback` (by URL or entry).

    The hook for the erasure workflow: each registered handler gets the feedback; when one
    applied it, `applied_at` is set. Returns whether it was applied.
    """
    applied = False
    for handler in _handlers:
        applied = handler(feedback) or applied
    if applied:
        feedback.applied_at = timezone.now()
        feedback.save(update_fields=["applied_at"])
    return applied


def _check_entry(partner: Partner, entry_id: int) -> None:
    banks = shared_bank_ids(partner)
    known = (BankEntry.objects.filter(pk=entry_id, bank_id__in=banks).exists()
             or Tombstone.objects.filter(entry_id=entry_id, bank_id__in=banks).exists())
    if not known:
        raise UnknownEntry(f"entry {entry_id} is not in a bank shared with you")


def record_feedback(
    partner: Partner, *, action: str, url: str = "", entry_id: int | None = None,
    reference: str = "", acted_at: dt.datetime,
) -> PartnerFeedback:
    if entry_id is not None:
        _check_entry(partner, entry_id)
    with transaction.atomic():
        item = PartnerFeedback.objects.create(
            partner=partner, action=action, url=url, entry_id=entry_id,
            reference=reference, acted_at=acted_at,
        )
        apply_feedback(item)
    return item
