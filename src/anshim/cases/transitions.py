"""Status moves of a case along the workflow (`anshim.cases.workflow`): the domain actions.

Every action locks the case row (SELECT ... FOR UPDATE), checks the status the caller saw
(`expected`) against the current one, so a stale page or a second click is refused with a
clear message instead of silently overwriting someone else's move, and records a StatusChange,
a timeline event and an audit entry (event type below, reason "from->to") in one transaction.

The actions staff take (move, request closure, approve, reject, reopen) are durable
transactions of their own. `imply()` is the move another action implies (a triage, a referral,
an expert assignment, a confirmed sighting): it joins the caller's transaction, so the move
commits or rolls back with the action that implied it. Higher apps (experts, erasure) call it
from their own receivers: this module imports nothing above the cases app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from anshim.cases import workflow
from anshim.cases.models import (
    Case,
    CaseStatus,
    Notification,
    StatusChange,
    StatusChangeKind,
    TimelineEvent,
)
from anshim.cases.workflow import Implied
from anshim.security.audit import record as audit_record
from anshim.security.policy import Action, require

# Audit event types (the reason holds "from->to", codes only; the target is the StatusChange).
CASE_STATUS_MOVE = "case.status_move"
CASE_STATUS_IMPLIED = "case.status_implied"
CASE_CLOSURE_REQUEST = "case.closure_request"
CASE_CLOSURE_APPROVE = "case.closure_approve"
CASE_CLOSURE_REJECT = "case.closure_reject"
CASE_REOPEN = "case.reopen"

# Timeline messages (msgids, translated on display; the statuses are in the event's data).
_TIMELINE: dict[str, tuple[str, str]] = {
    StatusChangeKind.MOVE: ("case.status_moved", gettext_noop("Status changed")),
    StatusChangeKind.IMPLIED: ("case.status_implied",
                               gettext_noop("Status changed by the workflow")),
    StatusChangeKind.CLOSURE_REQUESTED: (
        "case.closure_requested", gettext_noop("Closure requested; a supervisor decides")),
    StatusChangeKind.CLOSURE_APPROVED: ("case.closed",
                                        gettext_noop("Closure approved; the case is closed")),
    StatusChangeKind.CLOSURE_REJECTED: (
        "case.closure_rejected", gettext_noop("Closure rejected; the case went back")),
    StatusChangeKind.REOPENED: ("case.reopened", gettext_noop("Case reopened")),
}

REASON_MAX = 2000


class StaleStatus(Exception):
    """The case is no longer in the status the user saw: someone moved it meanwhile (or the
    form was sent twice). Nothing was changed."""

    code = "stale_status"

    def __init__(self, case: Case, expected: str) -> None:
        self.case = case
        self.expected = expected
        self.current = case.status
        super().__init__(self.text)

    @property
    def text(self) -> str:
        return str(_(
            "This case is now \u201c%(current)s\u201d, not \u201c%(expected)s\u201d: someone "
            "changed its status meanwhile, or the form was sent twice. Nothing was changed; "
            "look at the case again before you decide."
        ) % {"current": _label(self.current), "expected": _label(self.expected)})


def _label(status: str) -> str:
    try:
        return str(CaseStatus(status).label)
    except ValueError:
        return status


class OwnClosureRequest(PermissionDenied):
    """Four eyes: whoever asked for a closure (a supervisor too) does not decide it."""

    code = "own_closure_request"

    @property
    def text(self) -> str:
        return str(_("You asked for this closure: another supervisor decides it."))


@dataclass(frozen=True)
class ClosureRequest:
    """The pending closure of a case in "closing": who asked, when, and where a rejection
    returns the case."""

    change: StatusChange
    back_to: str


# --- Helpers ----------------------------------------------------------------------------------


def _actor_or_none(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def _lock(case: Case, expected: str | None) -> Case:
    locked = Case.objects.select_for_update().get(pk=case.pk)
    if expected is not None and locked.status != expected:
        raise StaleStatus(locked, expected)
    return locked


def _reason(text: str, *, required: bool, field: str = "reason") -> str:
    text = (text or "").strip()
    if required and not text:
        raise ValidationError({field: [_("Give a reason.")]}, code="reason_required")
    if len(text) > REASON_MAX:
        raise ValidationError({field: [_("At most %(n)d characters.") % {"n": REASON_MAX}]},
                              code="reason_too_long")
    return text


def _record(locked: Case, to: str, *, actor: Any, kind: str, audit_action: str,
            cause: str = "", reason: str = "", request: HttpRequest | None = None,
            case: Case | None = None) -> StatusChange:
    """Write the move: the case row, the StatusChange, the timeline and the audit entry."""
    actor = _actor_or_none(actor)
    from_status = locked.status
    now = timezone.now()
    values: dict[str, Any] = {"status": to, "version": F("version") + 1, "updated_at": now}
    if to == CaseStatus.CLOSED:
        values["closed_at"] = now
    elif from_status == CaseStatus.CLOSED:
        values["closed_at"] = None
    Case.objects.filter(pk=locked.pk).update(**values)
    change = StatusChange.objects.create(case=locked, actor=actor, kind=kind,
                                         from_status=from_status, to_status=to, cause=cause,
                                         reason=reason)
    event_kind, message = _TIMELINE[kind]
    data: dict[str, Any] = {"from": from_status, "to": to, "change": change.pk}
    if cause:
        data["cause"] = cause
    TimelineEvent.objects.create(case=locked, kind=event_kind, message=message, actor=actor,
                                 data=data)
    audit_record(actor=actor, action=audit_action, target=change, case=locked, request=request,
                 reason=f"{from_status}->{to}")
    for target in (locked, case):
        if target is not None:
            target.refresh_from_db(fields=["status", "version", "updated_at", "closed_at"])
    return change


def _notify(recipients: list[Any], case: Case, text: Any, link: str) -> None:
    """In-app notifications (e-mailed by the background task), in the center's language:
    notifications are stored as text."""
    if not recipients:
        return
    with translation.override(settings.LANGUAGE_CODE):
        message = str(text)[:300]
    Notification.objects.bulk_create(
        Notification(recipient=u, message=message, link=link) for u in recipients)


def _supervisors(exclude: Any = None) -> list[Any]:
    from django.contrib.auth import get_user_model

    qs = get_user_model().objects.filter(role="supervisor", is_active=True)
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return list(qs)


# --- Staff actions ----------------------------------------------------------------------------


def move(actor: Any, case: Case, to: str, *, expected: str,
         request: HttpRequest | None = None) -> StatusChange:
    """A move by hand along the workflow (not closing: that is `request_closure`)."""
    require(actor, Action.MOVE_CASE_STATUS, case)
    if to == CaseStatus.CLOSING:
        return request_closure(actor, case, expected=expected, request=request)
    flow = workflow.get()
    with transaction.atomic(durable=True):
        locked = _lock(case, expected)
        if not flow.allows(locked.status, to):
            raise ValidationError(
                _("A case that is \u201c%(from)s\u201d cannot be moved to \u201c%(to)s\u201d.")
                % {"from": _label(locked.status), "to": _label(to)}, code="illegal_move")
        return _record(locked, to, actor=actor, kind=StatusChangeKind.MOVE,
                       audit_action=CASE_STATUS_MOVE, request=request, case=case)


def request_closure(actor: Any, case: Case, *, expected: str, note: str = "",
                    request: HttpRequest | None = None) -> StatusChange:
    """The counselor asks to close the case: it waits in "closing" for a supervisor."""
    require(actor, Action.MOVE_CASE_STATUS, case)
    note = _reason(note, required=False, field="note")
    with transaction.atomic(durable=True):
        locked = _lock(case, expected)
        if not workflow.get().allows(locked.status, CaseStatus.CLOSING):
            raise ValidationError(
                _("A case that is \u201c%(from)s\u201d cannot be put forward for closure.")
                % {"from": _label(locked.status)}, code="illegal_move")
        change = _record(locked, CaseStatus.CLOSING, actor=actor,
                         kind=StatusChangeKind.CLOSURE_REQUESTED,
                         audit_action=CASE_CLOSURE_REQUEST, reason=note, request=request,
                         case=case)
        _notify(_supervisors(exclude=_actor_or_none(actor)), locked,
                _("%(code)s: closure requested; approve or reject it.") % {"code": locked.code},
                reverse("cases:closure_queue"))
    return change


def pending_closure(case: Case) -> ClosureRequest | None:
    """The closure request of a case in "closing" (None otherwise)."""
    if case.status != CaseStatus.CLOSING:
        return None
    change = (case.status_changes.filter(kind=StatusChangeKind.CLOSURE_REQUESTED)
              .select_related("actor").order_by("-at", "-id").first())
    if change is None:  # pragma: no cover - only a hand-edited database has no request
        return None
    return ClosureRequest(change, change.from_status)


def _decide(actor: Any, case: Case) -> tuple[Case, ClosureRequest]:
    require(actor, Action.APPROVE_CASE_CLOSURE, case)
    locked = _lock(case, CaseStatus.CLOSING)
    pending = pending_closure(locked)
    if pending is None:  # pragma: no cover - see pending_closure
        raise StaleStatus(locked, CaseStatus.CLOSING)
    if pending.change.actor_id is not None and pending.change.actor_id == getattr(actor, "pk", 0):
        raise OwnClosureRequest()
    return locked, pending


def approve_closure(actor: Any, case: Case, *,
                    request: HttpRequest | None = None) -> StatusChange:
    """A supervisor approves: the case is closed. A second approval finds it closed already
    and is refused (StaleStatus), never applied twice."""
    with transaction.atomic(durable=True):
        locked, pending = _decide(actor, case)
        change = _record(locked, CaseStatus.CLOSED, actor=actor,
                         kind=StatusChangeKind.CLOSURE_APPROVED,
                         audit_action=CASE_CLOSURE_APPROVE, request=request, case=case)
        requester = pending.change.actor
        _notify([requester] if requester is not None else [], locked,
                _("%(code)s: the closure was approved; the case is closed.")
                % {"code": locked.code}, reverse("cases:detail", kwargs={"code": locked.code}))
    return change


def reject_closure(actor: Any, case: Case, *, reason: str,
                   request: HttpRequest | None = None) -> StatusChange:
    """A supervisor rejects, with a reason: the case goes back to where it was."""
    reason = _reason(reason, required=True)
    with transaction.atomic(durable=True):
        locked, pending = _decide(actor, case)
        back = pending.back_to
        if back in (CaseStatus.CLOSING, CaseStatus.CLOSED) or back not in workflow.get().statuses:
            back = workflow.get().reopen_to[0]
        change = _record(locked, back, actor=actor, kind=StatusChangeKind.CLOSURE_REJECTED,
                         audit_action=CASE_CLOSURE_REJECT, reason=reason, request=request,
                         case=case)
        requester = pending.change.actor
        _notify([requester] if requester is not None else [], locked,
                _("%(code)s: the closure was rejected; see the reason on the case.")
                % {"code": locked.code}, reverse("cases:detail", kwargs={"code": locked.code}))
    return change


def reopen(actor: Any, case: Case, to: str, *, reason: str,
           request: HttpRequest | None = None) -> StatusChange:
    """A closed case reopens (to one of the workflow's reopen_to statuses), with a reason."""
    require(actor, Action.MOVE_CASE_STATUS, case)
    reason = _reason(reason, required=True)
    flow = workflow.get()
    if to not in flow.reopen_to:
        raise ValidationError(_("A closed case reopens as one of: %(to)s.")
                              % {"to": ", ".join(_label(s) for s in flow.reopen_to)},
                              code="illegal_move")
    with transaction.atomic(durable=True):
        locked = _lock(case, CaseStatus.CLOSED)
        return _record(locked, to, actor=actor, kind=StatusChangeKind.REOPENED,
                       audit_action=CASE_REOPEN, reason=reason, request=request, case=case)


# --- Implied moves ----------------------------------------------------------------------------


def imply(case: Case | int, event: Implied, *, actor: Any = None,
          request: HttpRequest | None = None) -> StatusChange | None:
    """The move `event` implies for the case, if the workflow says so from its current status
    (None when it stays put). Joins the caller's transaction (a savepoint when there is one)."""
    pk = case if isinstance(case, int) else case.pk
    with transaction.atomic():
        locked = Case.objects.select_for_update().get(pk=pk)
        to = workflow.get().implied_target(event, locked.status)
        if to is None:
            return None
        return _record(locked, to, actor=actor, kind=StatusChangeKind.IMPLIED,
                       audit_action=CASE_STATUS_IMPLIED, cause=event.value, request=request,
                       case=None if isinstance(case, int) else case)


# --- What the case page offers ---------------------------------------------------------------


@dataclass(frozen=True)
class NextMove:
    to: str
    label: str
    # Closing and reopening ask once more (and for a note or reason) before anything happens.
    confirm: bool


def next_moves(case: Case) -> list[NextMove]:
    """The moves a counselor may make by hand from the case's status (buttons)."""
    flow = workflow.get()
    if case.status == CaseStatus.CLOSED:
        return [NextMove(s, str(_("Reopen as \u201c%(s)s\u201d") % {"s": _label(s)}), True)
                for s in flow.reopen_to]
    out = []
    for s in flow.manual_moves(case.status):
        if s == CaseStatus.CLOSING:
            out.append(NextMove(s, str(_("Request closure")), True))
        else:
            out.append(NextMove(s, str(_("Move to \u201c%(s)s\u201d") % {"s": _label(s)}), False))
    return out
