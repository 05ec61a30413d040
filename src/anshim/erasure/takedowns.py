"""Takedown requests: drafting per platform, one-step approval and sending, the state machine,
re-sending unanswered requests, escalation, partner feedback, and stopping everything when the
victim withdraws the consent to contact platforms.

States: draft → sent → acknowledged → removed | refused | no response → escalated; any request
that could still send a notice (draft or open) → withdrawn when the consent goes. Every
transition is a `TakedownEvent`, a case timeline event and an audit entry (an event type and a
reason code: typed notes stay in the encrypted `TakedownEvent.note`, never in the audit row or
the timeline data).

Sending is a side effect after commit: the transaction that decides to send (approval, a
re-send) locks the request row, checks state and consent, changes them and creates a
`TakedownDelivery` with its own idempotency key; once it commits, the task queue delivers it.
The worker claims the delivery under a lock (pending → sending, committed), sends outside any
transaction, then records the outcome; a failure is retried with exponential backoff, a claim
left by a dead worker is taken over after `STALE_CLAIM` with the same key. Every send, first or
repeated, checks the consent again. Lock order: see `anshim.erasure.changelog`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass
from email.utils import formataddr
from enum import StrEnum
from smtplib import SMTPException
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from anshim.cases.consent import has_consent, require_consent
from anshim.cases.models import Case, ConsentScope
from anshim.cases.services import add_event, audit
from anshim.erasure.models import (
    DeliveryState,
    EscalationTarget,
    Jurisdiction,
    Platform,
    Sighting,
    SightingStatus,
    TakedownChannel,
    TakedownDelivery,
    TakedownEvent,
    TakedownItem,
    TakedownRequest,
    TakedownState,
)
from anshim.erasure.notices import Center, render_notice
from anshim.erasure.services import actor_or_none, require_manage_erasure
from anshim.security.signing import signed_headers

logger = logging.getLogger(__name__)

S = TakedownState
D = DeliveryState
RESEND_EVERY = dt.timedelta(hours=24)
OPEN_STATES = (S.SENT, S.ACKNOWLEDGED, S.NO_RESPONSE, S.REFUSED)
#: Requests that could still send a notice: withdrawing the consent stops all of them.
STOPPABLE_STATES = (S.DRAFT, *OPEN_STATES)
TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.SENT, S.WITHDRAWN}),
    S.SENT: frozenset({S.ACKNOWLEDGED, S.REMOVED, S.REFUSED, S.NO_RESPONSE, S.ESCALATED,
                       S.WITHDRAWN}),
    S.ACKNOWLEDGED: frozenset({S.REMOVED, S.REFUSED, S.NO_RESPONSE, S.ESCALATED, S.WITHDRAWN}),
    S.NO_RESPONSE: frozenset({S.ACKNOWLEDGED, S.REMOVED, S.REFUSED, S.ESCALATED, S.WITHDRAWN}),
    S.REFUSED: frozenset({S.REMOVED, S.ESCALATED, S.WITHDRAWN}),
    S.ESCALATED: frozenset({S.REMOVED}),
    S.REMOVED: frozenset(),
    S.WITHDRAWN: frozenset(),
}
#: States that end a request (closed_at is set).
CLOSING_STATES = frozenset({S.REMOVED, S.ESCALATED, S.WITHDRAWN})
_EVENT_MESSAGES: dict[str, str] = {
    S.DRAFT: gettext_noop("Takedown request drafted"),
    S.SENT: gettext_noop("Takedown request sent"),
    S.ACKNOWLEDGED: gettext_noop("Platform acknowledged the takedown request"),
    S.REMOVED: gettext_noop("Platform removed the content"),
    S.REFUSED: gettext_noop("Platform refused the takedown request"),
    S.NO_RESPONSE: gettext_noop("No response to the takedown request"),
    S.ESCALATED: gettext_noop("Takedown request escalated"),
    S.WITHDRAWN: gettext_noop("Takedown request stopped: the consent to contact platforms was "
                              "withdrawn"),
}

# Delivery: retries with exponential backoff (1, 2, 4, ... minutes), like partner webhooks.
MAX_ATTEMPTS = 8
BASE_DELAY = dt.timedelta(minutes=1)
#: A delivery claimed longer ago than this belongs to a worker that died mid-send.
STALE_CLAIM = dt.timedelta(minutes=15)
#: A pending first attempt whose task never ran (lost with a crash) is queued again after this.
LOST_TASK = dt.timedelta(minutes=5)
TIMEOUT_SECONDS = 20
IDEMPOTENCY_HEADER = "Idempotency-Key"


class Why(StrEnum):
    """Why a request changed: the reason code of its audit row and timeline data."""

    DRAFTED = "drafted"
    APPROVED = "approved"
    PLATFORM_ANSWER = "platform_answer"
    DEADLINE_PASSED = "deadline_passed"
    STILL_ONLINE = "still_online_past_deadline"
    ESCALATED = "escalated"
    ALL_URLS_GONE = "all_urls_gone"
    PARTNER_FEEDBACK = "partner_feedback"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    RESENT = "resent"
    EDITED = "edited"


def backoff(attempts: int) -> dt.timedelta:
    """Delay before the next try after `attempts` failed ones: 1, 2, 4, ... minutes."""
    return BASE_DELAY * (2 ** max(0, attempts - 1))


# --- The state machine ------------------------------------------------------------------------


def _lock(req: TakedownRequest | int) -> TakedownRequest:
    """The request's row, locked until the transaction ends (no_key: inserting an item or a
    delivery that points at the request must not wait for it)."""
    pk = req if isinstance(req, int) else req.pk
    return (TakedownRequest.objects.select_for_update(no_key=True, of=("self",))
            .select_related("platform", "case").get(pk=pk))


def _copy_back(target: TakedownRequest, source: TakedownRequest) -> None:
    """Give the caller's instance the state the locked row ended with."""
    for f in ("state", "closed_at", "approved_by_id", "sent_at", "last_sent_at", "send_count",
              "due_at", "escalation"):
        setattr(target, f, getattr(source, f))


def _log(req: TakedownRequest, from_state: str, to_state: str, actor: Any, note: str,
         at: dt.datetime, why: str) -> None:
    TakedownEvent.objects.create(request=req, from_state=from_state, to_state=to_state, at=at,
                                 actor=actor_or_none(actor), note=note[:300], why=why)
    add_event(req.case, f"erasure.takedown_{to_state}", _EVENT_MESSAGES[to_state],
              actor_or_none(actor), {"request": req.reference, "platform": req.platform.name,
                                     "from": from_state, "why": why})
    audit(actor=actor_or_none(actor), action=f"takedown.{to_state}", target=req, case=req.case,
          reason=why)


def _check(req: TakedownRequest, to_state: str) -> None:
    if to_state not in TRANSITIONS.get(req.state, frozenset()):
        raise ValidationError(
            _("A request in state “%(from)s” cannot become “%(to)s”."), code="bad_transition",
            params={"from": S(req.state).label, "to": S(to_state).label})


def _change(req: TakedownRequest, to_state: str, *, actor: Any, note: str, at: dt.datetime,
            why: str) -> None:
    """Move a request whose row this transaction has locked (`_lock`)."""
    _check(req, to_state)
    from_state = req.state
    req.state = to_state
    fields = ["state"]
    if to_state in CLOSING_STATES:
        req.closed_at = at
        fields.append("closed_at")
    req.save(update_fields=fields)
    _log(req, from_state, to_state, actor, note, at, why)


def transition(req: TakedownRequest, to_state: str, *, actor: Any = None, note: str = "",
               at: dt.datetime | None = None, why: str = Why.PLATFORM_ANSWER,
               ) -> TakedownRequest:
    """Move `req` to `to_state` (ValidationError when the state machine does not allow it).

    The row is locked and its state read again inside the transaction: two people recording
    answers at once are serialised, and the second sees the first one's state."""
    at = at or timezone.now()
    with transaction.atomic():
        locked = _lock(req)
        _change(locked, to_state, actor=actor, note=note, at=at, why=why)
    _copy_back(req, locked)
    return req


# --- Drafting ---------------------------------------------------------------------------------


def center_from_settings() -> Center:
    """The center as the settings describe it (ANSHIM_CENTER_*)."""
    return Center(name_ko=settings.ANSHIM_CENTER_NAME, name_en=settings.ANSHIM_CENTER_NAME_EN,
                  phone=settings.ANSHIM_CENTER_PHONE, signature=settings.ANSHIM_CENTER_SIGNATURE)


def sender_address() -> str:
    """The From of a notice: the center's name and its takedown address (or the default one)."""
    address = settings.ANSHIM_TAKEDOWN_FROM_EMAIL or settings.DEFAULT_FROM_EMAIL
    if "<" in address:
        return address  # already "Name <address>"
    return formataddr((settings.ANSHIM_CENTER_NAME, address))


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
        custom_template=custom, center=center_from_settings())
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
    drafts = []
    with transaction.atomic():
        pending = (Sighting.objects.filter(case=case, status=SightingStatus.CONFIRMED,
                                           platform__isnull=False)
                   .exclude(requests__request__state__in=[S.DRAFT, *OPEN_STATES])
                   .select_related("platform"))
        by_platform: dict[int, list[Sighting]] = defaultdict(list)
        for sighting in pending:
            assert sighting.platform_id is not None
            by_platform[sighting.platform_id].append(sighting)
        for platform_id, sightings in sorted(by_platform.items()):
            platform = Platform.objects.get(pk=platform_id)
            req = TakedownRequest.objects.create(
                case=case, platform=platform, language=language or platform.notice_language,
                subject="-", body="-", created_by=actor_or_none(actor))
            TakedownItem.objects.bulk_create(TakedownItem(request=req, sighting=s)
                                             for s in sightings)
            _fill(req)
            _log(req, "", S.DRAFT, actor, f"{len(sightings)} URL(s)", timezone.now(),
                 Why.DRAFTED)
            drafts.append(req)
    return drafts


MAX_SUBJECT = 300
MAX_BODY = 20_000


def edit_draft(req: TakedownRequest, *, subject: str, body: str, actor: Any,
               request: Any = None) -> TakedownRequest:
    """Change a draft's wording before it is approved (ValidationError once it is not a draft).

    The editor counts as an author: with a second approver required, they cannot approve it."""
    require_manage_erasure(actor)
    subject, body = subject.strip(), body.strip()
    if not subject or not body:
        raise ValidationError(_("A notice needs a subject and a text."), code="empty")
    if len(subject) > MAX_SUBJECT or len(body) > MAX_BODY:
        raise ValidationError(_("The notice is too long."), code="too_long")
    if req.reference not in subject and req.reference not in body:
        # The platform quotes it in its answer: without it the answer cannot be matched.
        raise ValidationError(_("Keep the request number %(ref)s in the subject or the text."),
                              code="no_reference", params={"ref": req.reference})
    at = timezone.now()
    with transaction.atomic(durable=True):
        locked = _lock(req)
        if locked.state != S.DRAFT:
            raise ValidationError(_("Only a draft can be edited."), code="not_draft")
        if (locked.subject, locked.body) == (subject, body):
            return req
        locked.subject, locked.body = subject, body
        locked.edited_by, locked.edited_at = actor_or_none(actor), at
        locked.save(update_fields=["subject", "body", "edited_by", "edited_at"])
        TakedownEvent.objects.create(request=locked, from_state=S.DRAFT, to_state=S.DRAFT, at=at,
                                     actor=actor_or_none(actor), why=Why.EDITED)
        audit(actor=actor, action="takedown.edited", target=locked, case=locked.case,
              request=request, reason=Why.EDITED)
    req.subject, req.body = locked.subject, locked.body
    req.edited_by_id, req.edited_at = locked.edited_by_id, locked.edited_at
    return req


def approval_problem(req: TakedownRequest, actor: Any) -> str | None:
    """Why `actor` may not approve the draft `req` (None: they may)."""
    if req.state != S.DRAFT:
        return gettext_noop("Only a draft can be approved.")
    actor_id = getattr(actor, "pk", None)
    if (settings.ANSHIM_TAKEDOWN_SECOND_APPROVER and actor_id is not None
            and actor_id in (req.created_by_id, req.edited_by_id)):
        return gettext_noop("A second person approves: whoever drafted or edited a notice "
                            "cannot approve it.")
    return None


# --- Sending ----------------------------------------------------------------------------------


def channel_problem(req: TakedownRequest) -> str | None:
    """Why the request cannot be handed to its platform's channel (None: it can)."""
    channel = req.platform.channel
    if channel == TakedownChannel.EMAIL and not req.recipient:
        return gettext_noop("The platform has no takedown e-mail address.")
    if channel == TakedownChannel.PARTNER_API:
        if not req.recipient.startswith(("http://", "https://")):
            return gettext_noop("The platform has no http(s) webhook URL.")
        if not req.platform.webhook_secret:
            return gettext_noop("The platform has no webhook signing secret: save the "
                                "platform once to create one.")
    return None


def _require_channel(req: TakedownRequest) -> None:
    problem = channel_problem(req)
    if problem is not None:
        raise ValidationError(_(problem), code="channel")


def _new_delivery(req: TakedownRequest, number: int) -> TakedownDelivery:
    """A delivery of notice `number`, handed to the task queue once the transaction commits."""
    delivery = TakedownDelivery.objects.create(request=req, number=number,
                                               idempotency_key=uuid.uuid4().hex)
    transaction.on_commit(lambda: enqueue_delivery(delivery.pk))
    return delivery


def enqueue_delivery(delivery_id: int, *, run_after: dt.datetime | None = None) -> None:
    from anshim.erasure.tasks import deliver_takedown

    task = deliver_takedown
    if run_after is not None:
        if not task.get_backend().supports_defer:
            return  # `requeue_deliveries` (the periodic job) queues it once it is due
        task = task.using(run_after=run_after)
    task.enqueue(delivery_id)


def approve_and_send(req: TakedownRequest, *, actor: Any, request: Any = None,
                     at: dt.datetime | None = None) -> TakedownRequest:
    """Approve the draft and send it: by a second person (not whoever drafted or edited it)
    unless ANSHIM_TAKEDOWN_SECOND_APPROVER is off.

    A double click or two specialists at once: the second finds the request no longer a draft
    (ValidationError) and nothing is sent twice."""
    require_manage_erasure(actor)
    at = at or timezone.now()
    with transaction.atomic(durable=True):
        locked = _lock(req)
        problem = approval_problem(locked, actor)
        if problem is not None:
            raise ValidationError(_(problem), code="not_draft" if locked.state != S.DRAFT
                                  else "second_approver")
        require_consent(locked.case, ConsentScope.CONTACT_PLATFORMS)
        _require_channel(locked)
        locked.approved_by = actor_or_none(actor)
        locked.sent_at = locked.last_sent_at = at
        locked.send_count = 1
        locked.due_at = at + dt.timedelta(hours=locked.platform.expected_response_hours)
        locked.save(update_fields=["approved_by", "sent_at", "last_sent_at", "send_count",
                                   "due_at"])
        _new_delivery(locked, 1)
        _change(locked, S.SENT, actor=actor, note=f"notice 1 queued ({locked.platform.channel})",
                at=at, why=Why.APPROVED)
    _copy_back(req, locked)
    return req


def resend_due_requests(*, now: dt.datetime | None = None) -> list[TakedownRequest]:
    """Re-send every unanswered request whose last notice is 24 hours old; a request past its
    deadline without an answer becomes "no response" (verification escalates it).

    Each request is its own transaction with its row locked and its state, timing and consent
    checked again there: two schedulers running at once send one notice, and a request whose
    consent is gone is stopped instead of re-sent."""
    now = now or timezone.now()
    due = Q(state__in=[S.SENT, S.NO_RESPONSE], last_sent_at__lte=now - RESEND_EVERY)
    resent = []
    for pk in TakedownRequest.objects.filter(due).order_by("pk").values_list("pk", flat=True):
        with transaction.atomic(durable=True):
            locked = (TakedownRequest.objects.select_for_update(no_key=True, of=("self",))
                      .select_related("platform", "case").filter(due, pk=pk).first())
            if locked is None:
                continue  # answered, stopped or re-sent by someone else meanwhile
            if not has_consent(locked.case, ConsentScope.CONTACT_PLATFORMS):
                _stop(locked, at=now)
                continue
            if locked.state == S.SENT and locked.due_at is not None and locked.due_at <= now:
                _change(locked, S.NO_RESPONSE, actor=None, note="deadline passed", at=now,
                        why=Why.DEADLINE_PASSED)
            locked.send_count += 1
            locked.last_sent_at = now
            locked.save(update_fields=["send_count", "last_sent_at"])
            # A notice still waiting for its retry is superseded by the new one.
            for old in (TakedownDelivery.objects.select_for_update()
                        .filter(request=locked, status=D.PENDING).order_by("pk")):
                _cancel(old, f"superseded by notice {locked.send_count}")
            _new_delivery(locked, locked.send_count)
            TakedownEvent.objects.create(request=locked, from_state=locked.state,
                                         to_state=locked.state, at=now,
                                         note=f"notice {locked.send_count} queued",
                                         why=Why.RESENT)
            add_event(locked.case, "erasure.takedown_resent",
                      gettext_noop("Takedown request sent again"), None,
                      {"request": locked.reference, "count": locked.send_count})
            audit(actor=None, action="takedown.resend", target=locked, case=locked.case,
                  reason=Why.RESENT)
        resent.append(locked)
    requeue_deliveries(now=now)
    return resent


def requeue_deliveries(*, now: dt.datetime | None = None) -> int:
    """Queue again the deliveries whose task is lost: due retries (on a task backend that
    cannot defer), first attempts whose task never ran, claims of workers that died."""
    now = now or timezone.now()
    ids = list(TakedownDelivery.objects.filter(
        Q(status=D.PENDING, next_attempt_at__lte=now)
        | Q(status=D.PENDING, next_attempt_at__isnull=True, created_at__lte=now - LOST_TASK)
        | Q(status=D.SENDING, claimed_at__lte=now - STALE_CLAIM)).values_list("pk", flat=True))
    for pk in ids:
        enqueue_delivery(pk)
    return len(ids)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    note: str
    status_code: int | None = None
    #: Retrying cannot help (the platform is misconfigured or refused the request as such).
    permanent: bool = False


def _send_email(req: TakedownRequest, delivery: TakedownDelivery) -> Outcome:
    key = delivery.idempotency_key
    message = EmailMessage(req.subject, req.body, from_email=sender_address(),
                           to=[req.recipient], headers={
        "X-Anshim-Reference": req.reference, "X-Anshim-Idempotency-Key": key,
        # One Message-ID per delivery: a copy re-sent after a crash is the same message.
        "Message-ID": f"<{key}@{req.reference.lower()}.anshim.invalid>"})
    try:
        message.send()
    except (SMTPException, OSError) as exc:
        return Outcome(False, f"e-mail failed: {exc}"[:300])
    return Outcome(True, f"e-mail to {req.recipient}")


def notice_payload(req: TakedownRequest, delivery: TakedownDelivery) -> bytes:
    """The JSON body POSTed to a partner's webhook."""
    return json.dumps({
        "event": "takedown.notice", "reference": req.reference, "notice": delivery.number,
        "idempotency_key": delivery.idempotency_key, "subject": req.subject, "body": req.body,
        "urls": [i.sighting.page_url for i in req.items.select_related("sighting")],
    }, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _send_webhook(req: TakedownRequest, delivery: TakedownDelivery) -> Outcome:
    body = notice_payload(req, delivery)
    http = urllib.request.Request(  # noqa: S310 (http(s) checked by channel_problem)
        req.recipient, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "Anshim-Takedown/1",
            IDEMPOTENCY_HEADER: delivery.idempotency_key,
            **signed_headers(req.platform.webhook_secret, body)})
    try:
        with urllib.request.urlopen(http, timeout=TIMEOUT_SECONDS) as resp:  # noqa: S310
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        # 408 and 429 say "later"; any other 4xx will not change by retrying.
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 429)
        return Outcome(False, f"webhook {exc.code}", exc.code, permanent)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Outcome(False, f"webhook failed: {exc}"[:300])
    if not 200 <= status < 300:
        return Outcome(False, f"webhook {status}", status)
    return Outcome(True, f"webhook {status}", status)


def _send(req: TakedownRequest, delivery: TakedownDelivery) -> Outcome:
    problem = channel_problem(req)
    if problem is not None:
        return Outcome(False, problem, permanent=True)
    channel = req.platform.channel
    if channel == TakedownChannel.EMAIL:
        return _send_email(req, delivery)
    if channel == TakedownChannel.PARTNER_API:
        return _send_webhook(req, delivery)
    # A web form is filled in by the specialist, who approved once it was submitted.
    return Outcome(True, f"web form {req.recipient}")


def _claim(delivery_id: int, now: dt.datetime) -> tuple[TakedownDelivery, TakedownRequest] | str:
    """Pending → sending, in its own committed transaction; or why not (a result string)."""
    request_id = (TakedownDelivery.objects.filter(pk=delivery_id)
                  .values_list("request_id", flat=True).first())
    if request_id is None:
        return "gone"
    with transaction.atomic(durable=True):
        # Request row first, then the delivery: the order every other writer uses.
        req = _lock(request_id)
        delivery = TakedownDelivery.objects.select_for_update().get(pk=delivery_id)
        stale = (delivery.status == D.SENDING and delivery.claimed_at is not None
                 and delivery.claimed_at <= now - STALE_CLAIM)
        if delivery.status != D.PENDING and not stale:
            return "done" if delivery.status == D.DELIVERED else str(delivery.status)
        if not has_consent(req.case, ConsentScope.CONTACT_PLATFORMS):
            # Every send checks the consent, however it was withdrawn.
            if req.state in STOPPABLE_STATES:
                _stop(req, at=now)
            else:
                _cancel(delivery, "consent withdrawn")
            return "cancelled"
        if req.state not in OPEN_STATES:
            _cancel(delivery, f"request {req.state}")
            return "cancelled"
        delivery.status = D.SENDING
        delivery.claimed_at = now
        delivery.attempts += 1
        delivery.save(update_fields=["status", "claimed_at", "attempts"])
    return delivery, req


def _cancel(delivery: TakedownDelivery, why: str) -> None:
    delivery.status = D.CANCELLED
    delivery.next_attempt_at = None
    delivery.last_error = why[:300]
    delivery.save(update_fields=["status", "next_attempt_at", "last_error"])


def run_delivery(delivery_id: int, *, now: dt.datetime | None = None) -> str:
    """Send one delivery at most once at a time; returns what happened ("delivered",
    "retrying", "failed", "cancelled", or why nothing was done)."""
    claimed = _claim(delivery_id, now or timezone.now())
    if isinstance(claimed, str):
        return claimed
    delivery, req = claimed
    outcome = _send(req, delivery)  # outside any transaction: no lock is held while waiting
    done_at = timezone.now()
    with transaction.atomic(durable=True):
        req = _lock(req.pk)
        current = TakedownDelivery.objects.select_for_update().get(pk=delivery.pk)
        if current.status != D.SENDING or current.claimed_at != delivery.claimed_at:
            return "superseded"  # taken over as stale meanwhile: that worker records it
        current.last_status_code = outcome.status_code
        if outcome.ok:
            current.status, current.delivered_at, current.last_error = D.DELIVERED, done_at, ""
            current.next_attempt_at = None
            result = "delivered"
        elif outcome.permanent or current.attempts >= MAX_ATTEMPTS:
            current.status, current.next_attempt_at = D.FAILED, None
            current.last_error = outcome.note[:300]
            result = "failed"
        else:
            current.status = D.PENDING
            current.next_attempt_at = done_at + backoff(current.attempts)
            current.last_error = outcome.note[:300]
            retry_at = current.next_attempt_at
            transaction.on_commit(lambda: enqueue_delivery(current.pk, run_after=retry_at))
            result = "retrying"
        current.save(update_fields=["status", "delivered_at", "next_attempt_at", "last_error",
                                    "last_status_code"])
        TakedownEvent.objects.create(
            request=req, from_state=req.state, to_state=req.state, at=done_at,
            why=f"delivery_{result}", note=(outcome.note if result == "delivered"
                  else f"notice {current.number}, attempt {current.attempts}: {outcome.note}"
                  )[:300])
        if result == "failed":
            add_event(req.case, "erasure.takedown_delivery_failed",
                      gettext_noop("A takedown notice could not be delivered"), None,
                      {"request": req.reference, "notice": current.number,
                       "attempts": current.attempts})
            logger.warning("takedown delivery %s of %s failed for good", current.pk,
                           req.reference)
        audit(actor=None, action=f"takedown.delivery_{result}", target=req, case=req.case,
              reason=f"{req.platform.channel}:{current.number}")
    return result


# --- Stopping on withdrawn consent ------------------------------------------------------------


def _stop(req: TakedownRequest, *, at: dt.datetime) -> None:
    """Stop a locked request for good: no notice goes out any more, queued ones are cancelled."""
    _change(req, S.WITHDRAWN, actor=None, note="consent to contact platforms withdrawn", at=at,
            why=Why.CONSENT_WITHDRAWN)
    for delivery in (TakedownDelivery.objects.select_for_update()
                     .filter(request=req, status=D.PENDING).order_by("pk")):
        _cancel(delivery, "consent withdrawn")


def stop_requests_without_consent(case: Case, *, at: dt.datetime | None = None,
                                  ) -> list[TakedownRequest]:
    """Stop every request of `case` that could still send a notice, unless the consent to
    contact platforms is (still or again) given. Runs in the caller's transaction: the
    withdrawal and the stop commit together."""
    at = at or timezone.now()
    with transaction.atomic():
        if has_consent(case, ConsentScope.CONTACT_PLATFORMS):
            return []
        stopped = list(TakedownRequest.objects.select_for_update(no_key=True, of=("self",))
                       .select_related("platform", "case")
                       .filter(case=case, state__in=STOPPABLE_STATES).order_by("pk"))
        for req in stopped:
            _stop(req, at=at)
    return stopped


# --- Answers, escalation, closing -------------------------------------------------------------


def escalation_target_for(req: TakedownRequest) -> str:
    # Overseas platforms are out of reach of a domestic removal order: the regulator's
    # blocking route; domestic platforms that ignore the law: a referral to police.
    return (EscalationTarget.REGULATOR if req.platform.jurisdiction == Jurisdiction.OVERSEAS
            else EscalationTarget.POLICE)


def escalate(req: TakedownRequest, *, target: str | None = None, actor: Any = None,
             note: str = "", at: dt.datetime | None = None, why: str = Why.ESCALATED,
             ) -> TakedownRequest:
    at = at or timezone.now()
    with transaction.atomic():
        locked = _lock(req)
        _check(locked, S.ESCALATED)  # before the save: a refused escalation changes nothing
        locked.escalation = target or escalation_target_for(locked)
        locked.save(update_fields=["escalation"])
        _change(locked, S.ESCALATED, actor=actor,
                note=note or f"escalated: {locked.escalation}", at=at, why=why)
    _copy_back(req, locked)
    return req


def record_response(req: TakedownRequest, state: str, *, actor: Any, note: str = "",
                    request: Any = None) -> TakedownRequest:
    """A specialist records the platform's answer (acknowledged, removed, refused)."""
    require_manage_erasure(actor)
    if state not in (S.ACKNOWLEDGED, S.REMOVED, S.REFUSED, S.ESCALATED):
        raise ValidationError(_("Not a platform answer."), code="bad_state")
    with transaction.atomic(durable=True):  # a staff action: its own transaction
        if state == S.ESCALATED:
            return escalate(req, actor=actor, note=note)
        return transition(req, state, actor=actor, note=note, why=Why.PLATFORM_ANSWER)


def close_requests_if_all_removed(sighting: Sighting, *, actor: Any = None,
                                  at: dt.datetime | None = None) -> list[TakedownRequest]:
    """A request whose every URL is gone is done (in the caller's transaction: the removal of
    the last URL and the closing of its requests commit together)."""
    at = at or timezone.now()
    closed = []
    with transaction.atomic():
        open_requests = list(
            TakedownRequest.objects.select_for_update(no_key=True, of=("self",))
            .select_related("platform", "case")
            .filter(pk__in=TakedownItem.objects.filter(sighting=sighting).values("request_id"),
                    state__in=[*OPEN_STATES, S.ESCALATED]).order_by("pk"))
        for req in open_requests:
            if not req.items.exclude(sighting__status=SightingStatus.REMOVED).exists():
                _change(req, S.REMOVED, actor=actor, note="all URLs gone", at=at,
                        why=Why.ALL_URLS_GONE)
                closed.append(req)
    return closed
