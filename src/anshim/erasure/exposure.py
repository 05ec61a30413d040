"""Reviewer exposure: how long a specialist actually looked at an unblurred picture.

The unblurred page (`erasure/unblurred.html`, `static/erasure/unblur-timer.js`) counts the
seconds the picture was on screen and not hidden (the tab visible, the picture not blurred
again) and reports the running total to `record_viewing`: while it is shown (every
`REPORT_EVERY_SECONDS`), when it is blurred again, when the tab is hidden and when the page
is left. The total only grows, so a repeated or late report never counts twice.

Where no report ever arrives (the browser was closed or crashed before the first one, or
scripts were off) the viewing counts `UNREPORTED_SECONDS`: a fixed, deliberately generous
estimate for a wellbeing measure (over- rather than under-stating exposure). The dashboard's
note says so. This module is the one place that rule lives (`counted_seconds`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from anshim.erasure.models import UnblurRecord

#: how a viewing without any report is counted (seconds)
UNREPORTED_SECONDS = 60
#: the most one viewing can count, whatever its page reports (a tab left open on a picture is
#: not that much more looking at it); the page blurs the picture again by itself at this
#: point, so no picture stays open on an unattended screen past the staff session's idle
#: time (30 minutes by default) — the page's reports would otherwise keep the session alive
MAX_VIEWING_SECONDS = 1800
#: how often the page reports while the picture is shown (so a crash loses at most this)
REPORT_EVERY_SECONDS = 15


class ViewingReportError(ValueError):
    """A report the endpoint refuses (400), with a message for the JSON error."""

    def __init__(self, message: Any) -> None:
        super().__init__(str(message))
        self.message = str(message)


@dataclass(frozen=True, slots=True)
class Viewing:
    """The outcome of a report: the seconds now on the record and whether it grew."""

    record_id: int
    seconds: int
    changed: bool


def counted_seconds() -> Any:
    """The seconds a record counts for, in SQL: the reported time, or the default."""
    return Coalesce("seconds_viewed", Value(UNREPORTED_SECONDS))


def parse_seconds(raw: object) -> float:
    """The reported seconds from the form value: a finite, non-negative number."""
    if not isinstance(raw, str) or not raw.strip():
        raise ViewingReportError(_("Give the seconds the picture was shown."))
    if len(raw) > 32:
        raise ViewingReportError(_("The seconds must be a number."))
    try:
        value = float(raw)
    except ValueError:
        raise ViewingReportError(_("The seconds must be a number.")) from None
    if not math.isfinite(value) or value < 0:
        raise ViewingReportError(_("The seconds must be zero or more."))
    return value


def record_viewing(record_id: int, actor: Any, seconds: float) -> Viewing:
    """Raise the record's viewing time to `seconds` (the page's running total), capped at the
    time since the picture was unblurred and at `MAX_VIEWING_SECONDS`. Only the reviewer who
    unblurred it may report (anyone else: 404, as if there were no such record)."""
    with transaction.atomic(durable=True):
        record = (UnblurRecord.objects.select_for_update()
                  .filter(pk=record_id, actor_id=getattr(actor, "pk", None)).first())
        if record is None or actor is None:
            raise Http404("no such viewing")
        # the page cannot have shown the picture longer than the record exists (one second
        # of slack: the page's clock and ours round differently)
        elapsed = (timezone.now() - record.at).total_seconds() + 1
        capped = int(min(round(seconds), math.floor(elapsed), MAX_VIEWING_SECONDS))
        capped = max(capped, 0)
        if record.seconds_viewed is not None and record.seconds_viewed >= capped:
            return Viewing(record.pk, record.seconds_viewed, changed=False)
        record.seconds_viewed = capped
        # save(), not update(): the reports' summary of a closed month is dropped by the
        # post_save signal when a late report lands in it
        record.save(update_fields=["seconds_viewed"])
        return Viewing(record.pk, capped, changed=True)


def mark_not_shown(record: UnblurRecord) -> None:
    """The picture could not be fetched: nothing was seen, so the default must not count."""
    record.seconds_viewed = 0
    record.save(update_fields=["seconds_viewed"])
