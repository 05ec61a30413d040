"""Sightings: recording what a scan found, re-upload flags, and the specialists' review."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from anshim.cases.models import Case
from anshim.cases.services import add_event, audit
from anshim.erasure import evidence as evidence_mod
from anshim.erasure.matcher import MatchResult
from anshim.erasure.models import Evidence, Sighting, SightingStatus
from anshim.erasure.platforms import platform_for_url
from anshim.erasure.services import actor_or_none, require_manage_erasure


@dataclass
class Observation:
    """One media URL seen on one page, with what the crawl learned about it."""

    page_url: str
    media_url: str
    http_status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    sha256: str = ""
    fingerprint: str = ""
    page_html: str = ""


def record_sighting(obs: Observation, match: MatchResult, *,
                    now: dt.datetime | None = None) -> tuple[Sighting, bool]:
    """Create or refresh the sighting of `match.entry_id` at these URLs; add an evidence record.

    Returns (sighting, created). A new sighting of an entry already removed elsewhere is a
    re-upload: flagged, and first in the review queue.
    """
    now = now or timezone.now()
    case = Case.objects.filter(code=match.case_code).first() if match.case_code else None
    with transaction.atomic():
        sighting, created = Sighting.objects.select_for_update().get_or_create(
            page_url=obs.page_url[:2000], media_url=obs.media_url[:2000], entry_id=match.entry_id,
            defaults={
                "platform": platform_for_url(obs.page_url), "bank_name": match.bank,
                "case": case, "match_kind": match.kind, "distance": match.distance,
                "strategy": match.strategy,
                "media_sha256": obs.sha256, "first_seen": now, "last_seen": now,
            },
        )
        announce = created
        if created:
            sighting.is_reupload = Sighting.objects.filter(
                entry_id=match.entry_id, status=SightingStatus.REMOVED).exclude(
                pk=sighting.pk).exists()
            if sighting.is_reupload:
                sighting.save(update_fields=["is_reupload"])
        else:
            sighting.last_seen = now
            sighting.distance = match.distance
            sighting.strategy = match.strategy
            fields = ["last_seen", "distance", "strategy"]
            if sighting.status == SightingStatus.REMOVED:
                # Back at the same URL after removal: a re-upload, to review again.
                sighting.status = SightingStatus.NEW
                sighting.is_reupload = True
                sighting.removed_at = None
                fields += ["status", "is_reupload", "removed_at"]
                announce = True
            sighting.save(update_fields=fields)
        ev = Evidence.objects.create(
            sighting=sighting, captured_at=now, page_url=obs.page_url[:2000],
            media_url=obs.media_url[:2000], http_status=obs.http_status,
            headers=dict(obs.headers), media_sha256=obs.sha256, fingerprint=obs.fingerprint,
            distance=match.distance, page_html=obs.page_html,
        )
        evidence_mod.seal(ev)
        if case is not None and announce:
            add_event(case, "erasure.reupload" if sighting.is_reupload else "erasure.sighting",
                      gettext_noop("Re-upload found") if sighting.is_reupload
                      else gettext_noop("Copy found online"), None,
                      {"sighting": sighting.pk, "entry": match.entry_id,
                       "distance": match.distance, "strategy": match.strategy})
        if created:
            audit(actor=None, action="sighting.create", target=sighting, case=case)
    return sighting, created


def review_queue() -> QuerySet[Sighting]:
    """Sightings waiting for review: re-uploads first, then oldest first."""
    return (Sighting.objects.filter(status=SightingStatus.NEW)
            .select_related("platform", "case").order_by("-is_reupload", "first_seen", "id"))


def review_sighting(sighting: Sighting, *, confirm: bool, actor: Any,
                    request: Any = None, leaks_personal_info: bool = False) -> Sighting:
    """Confirm (a real copy: request its removal) or reject (a false match); a confirmed
    copy may be marked as posted with the victim's personal information."""
    require_manage_erasure(actor)
    with transaction.atomic():
        # Two reviewers at once: the second finds it reviewed, nothing is decided twice.
        current = (Sighting.objects.select_for_update(no_key=True, of=("self",))
                   .values_list("status", flat=True).get(pk=sighting.pk))
        if current != SightingStatus.NEW:
            raise ValidationError(_("This sighting was already reviewed."), code="reviewed")
        sighting.status = SightingStatus.CONFIRMED if confirm else SightingStatus.REJECTED
        sighting.reviewed_by = actor_or_none(actor)
        sighting.reviewed_at = timezone.now()
        sighting.leaks_personal_info = confirm and leaks_personal_info
        sighting.save(update_fields=["status", "reviewed_by", "reviewed_at",
                                     "leaks_personal_info"])
        if sighting.case is not None:
            add_event(sighting.case, f"erasure.sighting_{sighting.status}",
                      gettext_noop("Sighting confirmed") if confirm
                      else gettext_noop("Sighting rejected"), actor_or_none(actor),
                      {"sighting": sighting.pk})
        audit(actor=actor_or_none(actor), action=f"sighting.{sighting.status}", target=sighting,
              case=sighting.case, request=request)
    return sighting


def mark_removed(sighting: Sighting, *, at: dt.datetime | None = None, actor: Any = None,
                 reason: str = "") -> bool:
    """The content is gone; returns False if it was already marked removed or rejected.

    One transaction with the sighting's row locked: the status is checked there (two
    verifiers at once remove it once), and the requests whose last URL this was are closed in
    the same commit, so a crash never leaves a request open and re-noticed for content that is
    gone. `reason` is a short code (what showed the removal), never typed text."""
    from anshim.erasure.takedowns import close_requests_if_all_removed

    at = at or timezone.now()
    with transaction.atomic():
        locked = (Sighting.objects.select_for_update(no_key=True, of=("self",))
                  .select_related("case").get(pk=sighting.pk))
        if locked.status in (SightingStatus.REMOVED, SightingStatus.REJECTED):
            sighting.status = locked.status
            return False
        locked.status = SightingStatus.REMOVED
        locked.removed_at = at
        locked.last_checked = at
        locked.save(update_fields=["status", "removed_at", "last_checked"])
        if locked.case is not None:
            add_event(locked.case, "erasure.removed", gettext_noop("Copy removed"),
                      actor_or_none(actor), {"sighting": locked.pk, "reason": reason[:80],
                                             "hours": round(locked.hours_to_removal or 0, 2)})
        # Request rows before the audit head (the lock order of anshim.erasure.changelog).
        close_requests_if_all_removed(locked, actor=actor, at=at)
        audit(actor=actor_or_none(actor), action="sighting.removed", target=locked,
              case=locked.case, reason=reason[:80])
    for name in ("status", "removed_at", "last_checked"):
        setattr(sighting, name, getattr(locked, name))
    return True
