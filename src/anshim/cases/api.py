"""The staff JSON API for cases (mounted at /api/v1/cases).

Authentication: the staff session cookie, and the session must have passed the TOTP step
(401 otherwise). Authorisation: the access policy (403). Errors are typed JSON objects
``{"error": <code>, "detail": <message or field errors>}``: 401 unauthorized, 403 forbidden,
404 not_found, 409 stale_edit / consent_missing, 422 invalid_input.
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
from ninja import Field, Router, Schema, Status
from ninja.security import SessionAuth

from anshim.cases import consent, services
from anshim.cases.consent import ConsentMissing
from anshim.cases.models import (
    AgeGroup,
    Case,
    CaseStatus,
    Channel,
    ConsentGiver,
    ConsentMethod,
    ConsentScope,
    ContactPreference,
    HarmType,
    NoteKind,
    Referral,
    ReferralStatus,
    ReferralTarget,
    RiskLevel,
)
from anshim.cases.triage import TriageFactors, reason_messages
from anshim.security.policy import Action, allowed_actions, require
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


router = Router(auth=StaffSessionAuth(), tags=["cases"])


# --- Schemas ----------------------------------------------------------------------------------


class ErrorOut(Schema):
    error: str = Field(..., examples=["forbidden"])
    detail: Any = Field(..., description="A message, or field → messages for invalid_input")


ERRORS: dict[int, Any] = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut,
                          422: ErrorOut}


class CaseSummaryOut(Schema):
    code: str
    status: str
    risk_level: str
    response_due: dt.datetime | None
    overdue: bool
    harm_types: list[str]
    version: int


class PersonOut(Schema):
    name: str
    birth_date: dt.date | None
    phone: str
    email: str
    address: str
    age_group: str
    contact_preference: str


class ContactOut(Schema):
    id: int
    channel: str
    started_at: dt.datetime
    duration_minutes: int
    summary: str


class ConsentStateOut(Schema):
    scope: str
    given: bool
    victim: bool
    guardian: bool
    missing: list[str]


class TriageOut(Schema):
    level: str
    computed_level: str
    reasons: list[str]
    reason_codes: list[str]
    deadline: dt.datetime | None
    override_reason: str
    created_at: dt.datetime


class NoteOut(Schema):
    id: int
    kind: str
    body: str
    created_at: dt.datetime


class ReferralOut(Schema):
    id: int
    target: str
    organization: str
    status: str
    reason: str
    outcome: str


class TimelineOut(Schema):
    at: dt.datetime
    kind: str
    message: str
    data: dict[str, Any]


class CaseOut(CaseSummaryOut):
    """Fields beyond the header appear only when the policy allows them (null otherwise)."""

    reasons: list[str]
    consents: list[ConsentStateOut]
    person: PersonOut | None = None
    summary: str | None = None
    contacts: list[ContactOut] | None = None
    notes: list[NoteOut] | None = None
    referrals: list[ReferralOut] | None = None
    timeline: list[TimelineOut] | None = None


class FactorsIn(Schema):
    threat_to_spread: bool = False
    content_spreading: bool = False
    self_harm_risk: bool = False
    offline_meeting_planned: bool = False
    content_exists: bool = False
    offender_known: bool = False
    repeated_contact: bool = False


class GuardianIn(Schema):
    name: str = Field("", max_length=200)
    phone: str = Field("", max_length=40)
    email: str = Field("", max_length=200)
    relationship: str = Field("", max_length=40)
    is_legal_guardian: bool = True


class IntakeIn(Schema):
    channel: Channel
    started_at: dt.datetime
    duration_minutes: int = Field(0, ge=0, le=1440)
    harm_types: list[HarmType] = Field(..., min_length=1)
    factors: FactorsIn = FactorsIn()
    age_group: AgeGroup = AgeGroup.UNKNOWN
    name: str = Field("", max_length=200)
    birth_date: dt.date | None = None
    phone: str = Field("", max_length=40)
    email: str = Field("", max_length=200)
    address: str = Field("", max_length=500)
    contact_preference: ContactPreference = ContactPreference.PORTAL
    guardian: GuardianIn | None = None
    victim_consents: list[ConsentScope] = []
    guardian_consents: list[ConsentScope] = []
    summary: str = Field("", max_length=10_000)


class CaseUpdateIn(Schema):
    version: int = Field(..., ge=1, description="The version you read; 409 if it changed since")
    status: CaseStatus | None = None
    summary: str | None = Field(None, max_length=10_000)


class ContactIn(Schema):
    channel: Channel
    started_at: dt.datetime
    duration_minutes: int = Field(0, ge=0, le=1440)
    summary: str = Field("", max_length=10_000)


class OverrideIn(Schema):
    level: RiskLevel
    reason: str = Field(..., min_length=1, max_length=1000)


class ConsentIn(Schema):
    scope: ConsentScope
    given_by: ConsentGiver
    method: ConsentMethod = ConsentMethod.VERBAL  # how the consent reached the center


class ConsentWithdrawIn(Schema):
    scope: ConsentScope
    given_by: ConsentGiver | None = None
    method: ConsentMethod = ConsentMethod.VERBAL


class NoteIn(Schema):
    kind: NoteKind = NoteKind.COUNSELING
    body: str = Field(..., min_length=1, max_length=10_000)


class ReferralIn(Schema):
    target: ReferralTarget
    organization: str = Field(..., min_length=1, max_length=200)
    reason: str = Field("", max_length=10_000)


class ReferralUpdateIn(Schema):
    status: ReferralStatus
    outcome: str = Field("", max_length=10_000)


# --- Errors -----------------------------------------------------------------------------------


def typed_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Turn domain exceptions into the documented JSON errors (never a 500)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as exc:
            record_refusal(request, exc)
            return Status(403, {"error": "forbidden", "detail": "You may not do this."})
        except Http404:
            return Status(404, {"error": "not_found", "detail": "No such case or record."})
        except services.StaleEdit as exc:
            return Status(409, {"error": exc.code, "detail": exc.text})
        except ConsentMissing as exc:
            return Status(409, {"error": "consent_missing", "detail": exc.text})
        except ValidationError as exc:
            detail: Any = (
                {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
                if hasattr(exc, "error_dict") else exc.messages
            )
            return Status(422, {"error": "invalid_input", "detail": detail})

    return wrapped


# --- Helpers ----------------------------------------------------------------------------------


def _case(request: HttpRequest, code: str, action: Action = Action.VIEW_CASE) -> Case:
    case = get_object_or_404(Case.objects.select_related("person"), code=code.upper())
    require(request.user, action, case)
    return case


def _summary(case: Case) -> dict[str, Any]:
    return {
        "code": case.code, "status": case.status, "risk_level": case.risk_level,
        "response_due": case.response_due, "overdue": services.is_overdue(case),
        "harm_types": case.harm_types, "version": case.version,
    }


def _triage_out(a: Any) -> dict[str, Any]:
    return {
        "level": a.effective_level, "computed_level": a.computed_level,
        "reasons": reason_messages(a.reasons), "reason_codes": a.reasons,
        "deadline": a.deadline, "override_reason": a.override_reason, "created_at": a.created_at,
    }


def _case_out(request: HttpRequest, case: Case) -> dict[str, Any]:
    user = request.user
    allowed = allowed_actions(user, case)
    last = case.assessments.order_by("-created_at", "-id").first()
    out = _summary(case) | {
        "reasons": reason_messages(last.reasons) if last else [],
        "consents": consent.consent_state(case),
    }
    if Action.VIEW_PERSONAL_DATA in allowed:
        p = case.person
        out["person"] = {
            "name": p.name, "birth_date": p.birth_date, "phone": p.phone, "email": p.email,
            "address": p.address, "age_group": p.age_group,
            "contact_preference": p.contact_preference,
        }
        out["summary"] = case.summary
        out["contacts"] = list(case.contacts.all())
        out["referrals"] = list(case.referrals.all())
        services.audit(actor=user, action="case.view_personal_data", target=p, case=case,
                       request=request)
    out["notes"] = services.visible_notes(user, case, request) or None
    if Action.VIEW_TIMELINE in allowed:
        out["timeline"] = list(case.timeline.all())
    services.audit(actor=user, action="case.view", target=case, case=case, request=request)
    return out


# --- Operations -------------------------------------------------------------------------------


@router.get("/", response={200: list[CaseSummaryOut], **ERRORS}, summary="List cases")
@typed_errors
def list_cases(request: HttpRequest, status: CaseStatus | None = None,
               risk: RiskLevel | None = None, mine: bool = False, overdue: bool = False,
               sort: str = "risk") -> Any:
    from anshim.cases.views import LIST_LIMIT, filter_cases

    require(request.user, Action.VIEW_CASE_LIST)
    params = {"status": status, "risk": risk, "mine": mine, "overdue": overdue, "sort": sort}
    cases = filter_cases(request.user, params)[:LIST_LIMIT]
    services.audit(actor=request.user, action="case.list", request=request)
    return Status(200, [_summary(c) for c in cases])


@router.post("/", response={201: CaseOut, **ERRORS}, summary="Hotline intake: open a case")
@typed_errors
def create_intake(request: HttpRequest, payload: IntakeIn) -> Any:
    g = payload.guardian
    data = services.IntakeData(
        channel=payload.channel, started_at=payload.started_at,
        duration_minutes=payload.duration_minutes, harm_types=list(payload.harm_types),
        factors=TriageFactors(**payload.factors.dict()), age_group=payload.age_group,
        name=payload.name, birth_date=payload.birth_date, phone=payload.phone,
        email=payload.email, address=payload.address,
        contact_preference=payload.contact_preference,
        guardian=services.GuardianData(**g.dict()) if g else None,
        victim_consents=list(payload.victim_consents),
        guardian_consents=list(payload.guardian_consents), summary=payload.summary,
    )
    case = services.intake(request.user, data, request)
    return Status(201, _case_out(request, case))


@router.get("/{code}", response={200: CaseOut, **ERRORS}, summary="Get a case")
@typed_errors
def get_case(request: HttpRequest, code: str) -> Any:
    return Status(200, _case_out(request, _case(request, code)))


@router.patch("/{code}", response={200: CaseOut, **ERRORS},
              summary="Update a case (optimistic locking: send the version you read)")
@typed_errors
def update_case(request: HttpRequest, code: str, payload: CaseUpdateIn) -> Any:
    case = _case(request, code, Action.EDIT_CASE)
    changes = payload.dict(exclude_unset=True, exclude_none=True)
    version = changes.pop("version")
    if "summary" in changes:
        require(request.user, Action.VIEW_PERSONAL_DATA, case)
    case = services.update_case(request.user, case, version, changes, request)
    return Status(200, _case_out(request, case))


@router.post("/{code}/contacts", response={201: ContactOut, **ERRORS}, summary="Log a contact")
@typed_errors
def add_contact(request: HttpRequest, code: str, payload: ContactIn) -> Any:
    case = _case(request, code, Action.EDIT_CASE)
    contact = services.add_contact(request.user, case, request=request, **payload.dict())
    return Status(201, contact)


@router.post("/{code}/triage", response={200: TriageOut, **ERRORS}, summary="Assess risk again")
@typed_errors
def triage(request: HttpRequest, code: str, payload: FactorsIn) -> Any:
    case = _case(request, code, Action.TRIAGE)
    assessment = services.reassess(request.user, case, TriageFactors(**payload.dict()), request)
    return Status(200, _triage_out(assessment))


@router.post("/{code}/triage/override", response={200: TriageOut, **ERRORS},
             summary="Supervisor override of the risk level")
@typed_errors
def override(request: HttpRequest, code: str, payload: OverrideIn) -> Any:
    case = _case(request, code, Action.OVERRIDE_TRIAGE)
    a = services.override_triage(request.user, case, payload.level, payload.reason, request)
    return Status(200, _triage_out(a))


@router.post("/{code}/consents", response={200: list[ConsentStateOut], **ERRORS},
             summary="Record a consent")
@typed_errors
def grant_consent(request: HttpRequest, code: str, payload: ConsentIn) -> Any:
    case = _case(request, code, Action.MANAGE_CONSENT)
    services.grant_consent(request.user, case, payload.scope, payload.given_by,
                           method=payload.method, request=request)
    return Status(200, consent.consent_state(case))


@router.post("/{code}/consents/withdraw", response={200: list[ConsentStateOut], **ERRORS},
             summary="Withdraw a consent")
@typed_errors
def withdraw_consent(request: HttpRequest, code: str, payload: ConsentWithdrawIn) -> Any:
    case = _case(request, code, Action.MANAGE_CONSENT)
    services.withdraw_consent(request.user, case, payload.scope, payload.given_by,
                              request=request, method=payload.method)
    return Status(200, consent.consent_state(case))


@router.get("/{code}/notes", response={200: list[NoteOut], **ERRORS},
            summary="Notes you may read")
@typed_errors
def list_notes(request: HttpRequest, code: str) -> Any:
    case = _case(request, code)
    return Status(200, services.visible_notes(request.user, case, request))


@router.post("/{code}/notes", response={201: NoteOut, **ERRORS}, summary="Add a note")
@typed_errors
def add_note(request: HttpRequest, code: str, payload: NoteIn) -> Any:
    case = _case(request, code, Action.ADD_NOTE)
    note = services.add_note(request.user, case, request=request, **payload.dict())
    return Status(201, note)


@router.get("/{code}/referrals", response={200: list[ReferralOut], **ERRORS},
            summary="List referrals")
@typed_errors
def list_referrals(request: HttpRequest, code: str) -> Any:
    case = _case(request, code, Action.MANAGE_REFERRALS)
    services.audit(actor=request.user, action="referral.view", case=case, request=request)
    return Status(200, list(case.referrals.all()))


@router.post("/{code}/referrals", response={201: ReferralOut, **ERRORS},
             summary="Refer to police, hospital, shelter, school")
@typed_errors
def add_referral(request: HttpRequest, code: str, payload: ReferralIn) -> Any:
    case = _case(request, code, Action.MANAGE_REFERRALS)
    referral = services.create_referral(request.user, case, request=request, **payload.dict())
    return Status(201, referral)


@router.patch("/{code}/referrals/{referral_id}", response={200: ReferralOut, **ERRORS},
              summary="Update a referral's status and outcome")
@typed_errors
def update_referral(request: HttpRequest, code: str, referral_id: int,
                    payload: ReferralUpdateIn) -> Any:
    case = _case(request, code, Action.MANAGE_REFERRALS)
    referral = get_object_or_404(Referral, pk=referral_id, case=case)
    referral = services.update_referral(request.user, referral, request=request,
                                        **payload.dict())
    return Status(200, referral)
