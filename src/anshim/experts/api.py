"""The experts JSON API (mounted at /api/v1/experts).

Authentication: the staff session cookie with the TOTP step passed (401 otherwise).
Authorisation: the access policy (403). Errors are JSON ``{"error": <code>, "detail": ...}``:
403 forbidden, 404 not_found, 409 double_booking / over_capacity / already_assigned / ...,
422 invalid_input / not_aligned / outside_availability / in_the_past.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Router, Schema, Status
from ninja.security import SessionAuth

from anshim.cases.models import Case
from anshim.experts import services
from anshim.experts.models import (
    Appointment,
    AppointmentMode,
    Assignment,
    Expert,
    SessionLog,
    Specialty,
)
from anshim.experts.ranking import suggest_experts
from anshim.security.policy import Action, Refused, can, require
from anshim.security.refusals import record_refusal


class StaffSessionAuth(SessionAuth):
    """Django session auth plus the second factor (django-otp's `is_verified`)."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if not user.is_authenticated or not user.is_active:
            return None
        if settings.ANSHIM_REQUIRE_OTP and not user.is_verified():  # type: ignore[attr-defined]
            return None
        return user


router = Router(auth=StaffSessionAuth(), tags=["experts"])


# --- Schemas ------------------------------------------------------------------------------
class ErrorOut(Schema):
    error: str
    detail: Any


class ExpertOut(Schema):
    id: int
    name: str
    kind: str
    organization: str
    specialties: list[str]
    languages: list[str]
    regions: list[str]
    weekly_capacity: int
    active: bool


class SuggestionOut(Schema):
    expert_id: int
    name: str
    score: float
    reasons: list[str]
    free_slots: int
    load: float


class AssignIn(Schema):
    case_code: str = Field(max_length=16)
    expert_id: int
    need: Specialty
    brief: str = Field("", max_length=4000)


class EndIn(Schema):
    reason: str = Field("", max_length=300)


class AssignmentOut(Schema):
    id: int
    case_code: str
    expert_id: int
    need: str
    status: str
    created_at: dt.datetime
    brief: str | None = None


class AppointmentIn(Schema):
    starts_at: dt.datetime
    duration_minutes: int = Field(60, ge=1, le=24 * 60)
    mode: AppointmentMode = AppointmentMode.IN_PERSON
    # Required in person; may be the family's home, so it is stored encrypted.
    location: str = Field("", max_length=300)


class CancelIn(Schema):
    reason: str = Field("", max_length=300)


class AppointmentOut(Schema):
    id: int
    assignment_id: int
    expert_id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    mode: str
    status: str


class SessionLogIn(Schema):
    summary: str = Field(min_length=1, max_length=20000)
    follow_up_needed: bool = False


class SessionLogOut(Schema):
    appointment_id: int
    summary: str
    follow_up_needed: bool
    created_at: dt.datetime


ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


def typed_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Turn domain exceptions into JSON errors (never a 500)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as exc:
            record_refusal(request, exc)
            return Status(403, {"error": "forbidden", "detail": "You may not do this."})
        except Http404:
            return Status(404, {"error": "not_found", "detail": "No such record."})
        except services.ExpertsError as exc:
            return Status(exc.http_status, {"error": exc.default_code, "detail": exc.text})
        except ValidationError as exc:
            return Status(422, {"error": "invalid_input", "detail": [str(m) for m in exc.messages]})

    return wrapped


# --- Helpers ------------------------------------------------------------------------------
def _expert_out(e: Expert) -> dict[str, Any]:
    return {
        "id": e.pk, "name": str(e.user), "kind": e.kind, "organization": e.organization,
        "specialties": list(e.specialties or []), "languages": list(e.languages or []),
        "regions": list(e.regions or []), "weekly_capacity": e.weekly_capacity,
        "active": e.active,
    }


def _assignment_out(user: Any, a: Assignment, request: HttpRequest | None = None) -> dict[str, Any]:
    from anshim.experts.panels import may_see_brief

    show_brief = may_see_brief(user, a.case)
    if show_brief and request is not None:
        services.audit(actor=user, action="assignment.view", target=a, case=a.case,
                       request=request)
    return {
        "id": a.pk, "case_code": a.case.code, "expert_id": a.expert_id, "need": a.specialty,
        "status": a.status, "created_at": a.created_at,
        "brief": a.brief if show_brief else None,
    }


def _appointment_out(a: Appointment) -> dict[str, Any]:
    return {
        "id": a.pk, "assignment_id": a.assignment_id, "expert_id": a.expert_id,
        "starts_at": a.starts_at, "ends_at": a.ends_at, "mode": a.mode, "status": a.status,
    }


def _assignment(request: HttpRequest, pk: int) -> Assignment:
    from anshim.experts.views import _may_open_assignment

    assignment = get_object_or_404(Assignment.objects.select_related("case", "expert__user"),
                                   pk=pk)
    if not _may_open_assignment(request.user, assignment):
        raise Refused(Action.VIEW_ASSIGNMENT, assignment.case)
    return assignment


def _appointment(request: HttpRequest, pk: int) -> Appointment:
    from anshim.experts.views import _may_open_assignment

    appointment = get_object_or_404(
        Appointment.objects.select_related("assignment__case", "expert__user"), pk=pk)
    if not _may_open_assignment(request.user, appointment.assignment):
        raise Refused(Action.VIEW_ASSIGNMENT, appointment.assignment.case)
    return appointment


# --- Operations ---------------------------------------------------------------------------
@router.get("/", response={200: list[ExpertOut], **ERRORS})
@typed_errors
def list_experts(request: HttpRequest, active: bool | None = None) -> Any:
    require(request.user, Action.VIEW_EXPERTS)
    experts = Expert.objects.select_related("user").order_by("pk")
    if active is not None:
        experts = experts.filter(active=active)
    return Status(200, [_expert_out(e) for e in experts])


@router.get("/suggestions", response={200: list[SuggestionOut], **ERRORS})
@typed_errors
def suggestions(request: HttpRequest, case_code: str, need: Specialty, language: str = "ko",
                region: str | None = None, age_group: str | None = None,
                limit: int = 5) -> Any:
    case = get_object_or_404(Case.objects.select_related("person"), code=case_code.upper())
    require(request.user, Action.ASSIGN_EXPERT, case)
    # The victim's age group from the case unless the caller asks about another.
    age = age_group if age_group is not None else case.person.age_group
    found = suggest_experts(case, need, language[:8], (region or None), max(1, min(limit, 50)),
                            age_group=age[:8] or None)
    names = {e.pk: str(e.user) for e in Expert.objects.select_related("user").filter(
        pk__in=[s.expert_id for s in found])}
    return Status(200, [
        {"expert_id": s.expert_id, "name": names.get(s.expert_id, ""), "score": s.score,
         "reasons": list(s.reasons), "free_slots": s.free_slots, "load": round(s.load, 3)}
        for s in found
    ])


@router.get("/assignments", response={200: list[AssignmentOut], **ERRORS})
@typed_errors
def list_assignments(request: HttpRequest, case_code: str | None = None) -> Any:
    """Staff: the assignments of a case. An expert: their own active assignments."""
    if case_code:
        from anshim.experts.panels import visible_assignments

        case = get_object_or_404(Case, code=case_code.upper())
        items = visible_assignments(request.user, case)
        if not items and not can(request.user, Action.ASSIGN_EXPERT, case):
            raise PermissionDenied
    else:
        expert: Expert | None = getattr(request.user, "expert_profile", None)
        if expert is None:
            raise PermissionDenied
        items = list(expert.assignments.filter(status="active").select_related("case"))
    return Status(200, [_assignment_out(request.user, a, request) for a in items])


@router.post("/assignments", response={201: AssignmentOut, **ERRORS})
@typed_errors
def assign(request: HttpRequest, payload: AssignIn) -> Any:
    case = get_object_or_404(Case, code=payload.case_code.upper())
    require(request.user, Action.ASSIGN_EXPERT, case)
    expert = get_object_or_404(Expert.objects.select_related("user"), pk=payload.expert_id)
    assignment = services.assign_expert(request.user, case, expert, payload.need, payload.brief,
                                       request=request)
    return Status(201, _assignment_out(request.user, assignment))


@router.post("/assignments/{int:pk}/end", response={200: AssignmentOut, **ERRORS})
@typed_errors
def end(request: HttpRequest, pk: int, payload: EndIn) -> Any:
    assignment = _assignment(request, pk)
    services.end_assignment(request.user, assignment, reason=payload.reason, request=request)
    return Status(200, _assignment_out(request.user, assignment))


@router.get("/assignments/{int:pk}/appointments", response={200: list[AppointmentOut], **ERRORS})
@typed_errors
def list_appointments(request: HttpRequest, pk: int) -> Any:
    assignment = _assignment(request, pk)
    appointments = [_appointment_out(a) for a in assignment.appointments.order_by("starts_at")]
    services.audit(actor=request.user, action="appointment.list", target=assignment,
                   case=assignment.case, request=request)
    return Status(200, appointments)


@router.post("/assignments/{int:pk}/appointments", response={201: AppointmentOut, **ERRORS})
@typed_errors
def book(request: HttpRequest, pk: int, payload: AppointmentIn) -> Any:
    assignment = _assignment(request, pk)
    starts_at = payload.starts_at
    if timezone.is_naive(starts_at):
        starts_at = timezone.make_aware(starts_at)
    appointment = services.book_appointment(
        request.user, assignment, starts_at, duration_minutes=payload.duration_minutes,
        mode=payload.mode, location=payload.location, request=request)
    return Status(201, _appointment_out(appointment))


@router.post("/appointments/{int:pk}/cancel", response={200: AppointmentOut, **ERRORS})
@typed_errors
def cancel(request: HttpRequest, pk: int, payload: CancelIn) -> Any:
    appointment = _appointment(request, pk)
    services.cancel_appointment(request.user, appointment, reason=payload.reason,
                               request=request)
    return Status(200, _appointment_out(appointment))


@router.get("/appointments/{int:pk}/log", response={200: SessionLogOut, **ERRORS})
@typed_errors
def get_log(request: HttpRequest, pk: int) -> Any:
    appointment = _appointment(request, pk)
    if not services.can_view_log(request.user, appointment):
        raise PermissionDenied
    log = get_object_or_404(SessionLog, appointment=appointment)
    services.audit(actor=request.user, action="session_log.view", target=log,
                   case=appointment.assignment.case, request=request)
    return Status(200, {"appointment_id": appointment.pk, "summary": log.summary,
                 "follow_up_needed": log.follow_up_needed, "created_at": log.created_at})


@router.put("/appointments/{int:pk}/log", response={200: SessionLogOut, **ERRORS})
@typed_errors
def put_log(request: HttpRequest, pk: int, payload: SessionLogIn) -> Any:
    appointment = _appointment(request, pk)
    log = services.write_session_log(request.user, appointment, payload.summary,
                                     follow_up_needed=payload.follow_up_needed, request=request)
    return Status(200, {"appointment_id": appointment.pk, "summary": log.summary,
                 "follow_up_needed": log.follow_up_needed, "created_at": log.created_at})

