"""Takedown requests: drafting per platform, one-step approval and sending, the state machine,
re-sending unanswered requests, escalation and partner feedback.

States: draft → sent → acknowledged → removed | refused | no response → escalated. Every
transition is a `TakedownEvent`, a case timeline event and an audit entry.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections import defaultdict
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from anshim.cases.consent import require_consent
from anshim.cases.models import Case, ConsentScope
from anshim.cases.services import add_event, audit
from anshim.erasure.models import (
    EscalationTarget,
    Jurisdiction,
    Platform,
    Sighting,
    SightingStatus,
    TakedownChannel,
    TakedownEvent,
    TakedownItem,
    TakedownRequest,
    TakedownState,
)
from anshim.erasure.notices import render_notice
from anshim.erasure.services import actor_or_none, require_manage_erasure

S = TakedownState
RESEND_EVERY = dt.timedelta(hours=24)
OPEN_STATES = (S.SENT, S.ACKNOWLEDGED, S.NO_RESPONSE, S.REFUSED)
TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.SENT}),
    S.SENT: frozenset({S.ACKNOWLEDGED, S.REMOVED, S.REFUSED, S.NO_RESPONSE, S.ESCALATED}),
    S.ACKNOWLEDGED: frozenset({S.REMOVED, S.REFUSED, S.NO_RESPONSE, S.ESCALATED}),
    S.NO_RESPONSE: frozenset({S.ACKNOWLEDGED, S.REMOVED, S.REFUSED, S.ESCALATED}),
    S.REFUSED: frozenset({S.REMOVED, S.ESCALATED}),
    S.ESCALATED: frozenset({S.REMOVED}),
    S.REMOVED: frozenset(),
}
_EVENT_MESSAGES: dict[str, str] = {
    S.DRAFT: gettext_noop("Takedown request drafted"),
    S.SENT: gettext_noop("Takedown request sent"),
    S.ACKNOWLEDGED: gettext_noop("Platform acknowledged the takedown request"),
    S.REMOVED: gettext_noop("Platform removed the content"),
    S.REFUSED: gettext_noop("Platform refused the takedown request"),
    S.NO_RESPONSE: gettext_noop("No response to the takedown request"),
    S.ESCALATED: gettext_noop("Takedown request escalated"),
}


class DeliveryFailed(RuntimeError):
    """The notice could not be handed to the platform's channel."""


def _log(req: TakedownRequest, from_state: str, to_state: str, actor: Any, note: str,
         at: dt.datetime) -> None:
    TakedownEvent.objects.create(request=req, from_state=from_state, to_state=to_state, at=at,
                                 actor=actor_or_none(actor), note=note[:300])
    add_event(req.case, f"erasure.takedown_{to_state}", _EVENT_MESSAGES[to_state],
              actor_or_none(actor), {"request": req.reference, "platform": req.platform.name,
                                     "from": from_state, "note": note[:100]})
    audit(actor=actor_or_none(actor), action=f"takedown.{to_state}", target=req, case=req.case,
          reason=note)


def transition(req: TakedownRequest, to_state: str, *, actor: Any = None, note: str = "",
               at: dt.datetime | None = None) -> TakedownRequest:
    """Move `req` to `to_state` (ValidationError when the state machine does not allow it)."""
    at = at or timezone.now()
    if to_state not in TRANSITIONS.get(req.state, frozenset()):
        raise ValidationError(
            _("A request in state “%(from)s” cannot become “%(to)s”."), code="bad_transition",
            params={"from": S(req.state).label, "to": S(to_state).label})
    with transaction.atomic():
        from_state = req.state
        req.state = to_state
        fields = ["state"]
        if to_state in (S.REMOVED, S.ESCALATED):
            req.closed_at = at
            fields.append("closed_at")
        req.save(update_fields=fields)
        _log(req, from_state, to_state, actor, note, at)
    return req


# --- Drafting ---------------------------------------------------------------------------------


def _fill(req: TakedownRequest) -> None:
    platform = req.platform
    sightings = [item.sighting for item in req.items.select_related("sighting")]
    urls = sorted({s.page_url for s in sightings} | {s.media_url for s in sightings})
    refs = [ev.reference for s in sightings for ev in s.evidence.all()]
    deadline = timezone.localtime(timezone.now() + dt.timedelta(
        hours=platform.expected_response_hours)).strftime("%Y-%m-%d %H:%M %Z")
    custom = {"ko": platform.notice_template_ko, "en": platform.notice_template_en}.get(
        req.language, "")
    req.subject, req.body = render_notice(
        req.language, platform=platform.name, legal_basis=platform.legal_basis,
        reference=req.reference, urls=urls, evidence=refs, deadline=deadline,
        custom_template=custom)
    req.recipient = {TakedownChannel.EMAIL: platform.contact_email,
                     TakedownChannel.WEB_FORM: platform.form_url,
                     TakedownChannel.PARTNER_API: platform.webhook_url}[
        TakedownChannel(platform.channel)]
    req.save(update_fields=["subject", "body", "recipient"])


def draft_requests(case: Case, *, actor: Any, language: str | None = None,
                   ) -> list[TakedownRequest]:
    """One draft per platform from the case's confirmed sightings not yet in a request.

    The case's consent to contact platforms is checked first (ConsentMissing otherwise).
    """
    require_manage_erasure(actor)
    require_consent(case, ConsentScope.CONTACT_PLATFORMS)
    pending = (Sighting.objects.filter(case=case, status=SightingStatus.CONFIRMED,
                                       platform__isnull=False)
               .exclude(requests__request__state__in=[S.DRAFT, *OPEN_STATES])
               .select_related("platform"))
    by_platform: dict[int, list[Sighting]] = defaultdict(list)
    for sighting in pending:
        assert sighting.platform_id is not None
        by_platform[sighting.platform_id].append(sighting)
    drafts = []
    with transaction.atomic():
        for platform_id, sightings in sorted(by_platform.items()):
            platform = Platform.objects.get(pk=platform_id)
            req = TakedownRequest.objects.create(
                case=case, platform=platform, language=language or platform.notice_language,
                subject="-", body="-", created_by=actor_or_none(actor))
            TakedownItem.objects.bulk_create(TakedownItem(request=req, sighting=s)
                                             for s in sightings)
            _fill(req)
            _log(req, "", S.DRAFT, actor, f"{len(sightings)} URL(s)", timezone.now())
            drafts.append(req)
    return drafts


# --- Sending ----------------------------------------------------------------------------------


def deliver(req: TakedownRequest) -> str:
    """Hand the notice to the platform's channel; returns a note for the log."""
    channel = req.platform.channel
    if channel == TakedownChannel.EMAIL:
        if not req.recipient:
            raise DeliveryFailed("the platform has no takedown e-mail address")
        EmailMessage(req.subject, req.body, to=[req.recipient],
                     headers={"X-Anshim-Reference": req.reference}).send()
        return f"e-mail to {req.recipient}"
    if channel == TakedownChannel.PARTNER_API:
        if not req.recipient:
            raise DeliveryFailed("the platform has no webhook URL")
        payload = json.dumps({
            "reference": req.reference, "subject": req.subject, "body": req.body,
            "urls": [i.sighting.page_url for i in req.items.select_related("sighting")],
        }).encode()
        if not req.recipient.startswith(("http://", "https://")):
            raise DeliveryFailed("the webhook URL is not http(s)")
        http = urllib.request.Request(  # noqa: S310 (http(s) checked above)
            req.recipient, data=payload, method="POST",
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(http, timeout=20) as resp:  # noqa: S310 (admin-set URL)
                status = resp.status
        except OSError as exc:
            raise DeliveryFailed(str(exc)) from exc
        return f"webhook {status}"
    # A web form is filled in by the specialist, who approves once it is submitted.
    return f"web form {req.recipient}"


def approve_and_send(req: TakedownRequest, *, actor: Any, request: Any = None,
                     at: dt.datetime | None = None) -> TakedownRequest:
    """The specialist's one step: approve the draft and send it."""
    require_manage_erasure(actor)
    if req.state != S.DRAFT:
        raise ValidationError(_("Only a draft can be approved."), code="not_draft")
    require_consent(req.case, ConsentScope.CONTACT_PLATFORMS)
    at = at or timezone.now()
    note = deliver(req)
    with transaction.atomic():
        req.approved_by = actor_or_none(actor)
        req.sent_at = req.last_sent_at = at
        req.send_count = 1
        req.due_at = at + dt.timedelta(hours=req.platform.expected_response_hours)
        req.save(update_fields=["approved_by", "sent_at", "last_sent_at", "send_count",
                                "due_at"])
        transition(req, S.SENT, actor=actor, note=note, at=at)
    return req


def resend_due_requests(*, now: dt.datetime | None = None) -> list[TakedownRequest]:
    """Re-send every unanswered request whose last notice is 24 hours old; a request past its
    deadline without an answer becomes "no response" (verification escalates it)."""
    now = now or timezone.now()
    resent = []
    for req in TakedownRequest.objects.filter(state__in=[S.SENT, S.NO_RESPONSE],
                                              last_sent_at__lte=now - RESEND_EVERY):
        if req.state == S.SENT and req.due_at is not None and req.due_at <= now:
            transition(req, S.NO_RESPONSE, note="deadline passed", at=now)
        try:
            note = deliver(req)
        except (DeliveryFailed, OSError) as exc:
            note = f"resend failed: {exc}"
        else:
            req.send_count += 1
            req.last_sent_at = now
            req.save(update_fields=["send_count", "last_sent_at"])
            resent.append(req)
        TakedownEvent.objects.create(request=req, from_state=req.state, to_state=req.state,
                                     at=now, note=note[:300])
        add_event(req.case, "erasure.takedown_resent",
                  gettext_noop("Takedown request sent again"), None,
                  {"request": req.reference, "count": req.send_count})
    return resent


def escalation_target_for(req: TakedownRequest) -> str:
    # Overseas platforms are out of reach of a domestic removal order: the regulator's
    # blocking route; domestic platforms that ignore the law: a referral to police.
    return (EscalationTarget.REGULATOR if req.platform.jurisdiction == Jurisdiction.OVERSEAS
            else EscalationTarget.POLICE)


def escalate(req: TakedownRequest, *, target: str | None = None, actor: Any = None,
             note: str = "", at: dt.datetime | None = None) -> TakedownRequest:
    req.escalation = target or escalation_target_for(req)
    req.save(update_fields=["escalation"])
    return transition(req, S.ESCALATED, actor=actor,
                      note=note or f"escalated: {req.escalation}", at=at)


def record_response(req: TakedownRequest, state: str, *, actor: Any, note: str = "",
                    request: Any = None) -> TakedownRequest:
    """A specialist records the platform's answer (acknowledged, removed, refused)."""
    require_manage_erasure(actor)
    if state not in (S.ACKNOWLEDGED, S.REMOVED, S.REFUSED, S.ESCALATED):
        raise ValidationError(_("Not a platform answer."), code="bad_state")
    if state == S.ESCALATED:
        return escalate(req, actor=actor, note=note)
    return transition(req, state, actor=actor, note=note)


def close_requests_if_all_removed(sighting: Sighting, *, actor: Any = None,
                                  at: dt.datetime | None = None) -> None:
    """A request whose every URL is gone is done."""
    open_requests = TakedownRequest.objects.filter(
        items__sighting=sighting, state__in=[*OPEN_STATES, S.ESCALATED]).distinct()
    for req in open_requests:
        if not req.items.exclude(sighting__status=SightingStatus.REMOVED).exists():
            transition(req, S.REMOVED, actor=actor, note="all URLs gone", at=at)


# --- Partner feedback (the exchange app's hook) ------------------------------------------------


def apply_partner_feedback(*, url: str | None = None, entry_id: int | None = None, action: str,
                           at: dt.datetime, partner_name: str) -> bool:
    """A partner reports what it did about a URL or an entry: "removed", "refused" or
    "not_found". Returns whether any sighting or request was updated."""
    from anshim.erasure.sightings import mark_removed

    sightings = Sighting.objects.exclude(status=SightingStatus.REJECTED)
    if url:
        from django.db.models import Q

        sightings = sightings.filter(Q(page_url=url) | Q(media_url=url))
    elif entry_id is not None:
        sightings = sightings.filter(entry_id=entry_id)
    else:
        return False
    found = list(sightings)
    if not found:
        return False
    note = f"partner {partner_name}: {action}"
    for sighting in found:
        if action in ("removed", "not_found"):
            # "not found" means the content is no longer there to remove.
            mark_removed(sighting, at=at, reason=note)
        elif action == "refused":
            for req in TakedownRequest.objects.filter(items__sighting=sighting,
                                                      state__in=[S.SENT, S.ACKNOWLEDGED,
                                                                 S.NO_RESPONSE]).distinct():
                transition(req, S.REFUSED, note=note, at=at)
    return True


def feedback_handler(feedback: Any) -> bool:
    """Adapter for `anshim.exchange.feedback.register_feedback_handler`."""
    return apply_partner_feedback(url=feedback.url or None, entry_id=feedback.entry_id,
                                  action=feedback.action, at=feedback.acted_at,
                                  partner_name=str(feedback.partner))
