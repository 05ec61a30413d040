"""The role matrix: every staff view and every staff API operation x every role (and the
assigned/unassigned variants that need-to-know depends on) → allowed or denied, exactly as
`anshim.security.policy` says.

Each row names the view or operation, how to call it, and the policy rule that decides it. A
completeness test fails when a view or API operation exists that the matrix does not cover, so a
new endpoint cannot ship without its row.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from anshim.security.policy import Action, can

PRINCIPALS = (
    "counselor_lead", "counselor_other", "erasure", "prevention",
    "expert_assigned", "expert_other", "supervisor", "admin",
)


@dataclass
class World:
    users: dict[str, Any]
    case: Any
    referral: Any
    assignment: Any
    appointment: Any
    expert_profile: Any
    sighting: Any = None
    takedown: Any = None

    def kwargs(self, names: tuple[str, ...]) -> dict[str, Any]:
        values = {"code": self.case.code, "case_code": self.case.code,
                  "referral_id": self.referral.pk}
        return {n: values[n] for n in names}


def build_world() -> World:
    from anshim.cases.models import Case, Person, Referral
    from anshim.experts.models import (
        Appointment,
        Assignment,
        Expert,
        SessionLog,
        WeeklyAvailability,
    )
    from anshim.security.models import User

    def user(name: str, role: str) -> Any:
        u = User(username=name, role=role, display_name=name)
        u.set_unusable_password()
        u.save()
        return u

    users = {p: user(p, p.split("_")[0]) for p in PRINCIPALS}
    person = Person.objects.create(name="Matrix Person", age_group="14to17")
    case = Case.objects.create(code="AN-MTRX-7A", person=person, channel="phone",
                               lead_counselor=users["counselor_lead"])
    referral = Referral.objects.create(case=case, target="hospital", organization="Clinic")
    profiles = {}
    for key in ("expert_assigned", "expert_other"):
        profiles[key] = Expert.objects.create(
            user=users[key], kind="therapy", specialties=["trauma"], languages=["ko"],
            regions=["Mapo-gu"], weekly_capacity=10)
        for weekday in range(7):
            WeeklyAvailability.objects.create(expert=profiles[key], weekday=weekday,
                                              start_time=dt.time(0, 0), end_time=dt.time(23, 45))
    assignment = Assignment.objects.create(case=case, expert=profiles["expert_assigned"],
                                           specialty="trauma")
    start = (timezone.now() + dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    appointment = Appointment.objects.create(
        assignment=assignment, expert=profiles["expert_assigned"], starts_at=start,
        ends_at=start + dt.timedelta(hours=1))
    SessionLog.objects.create(appointment=appointment, author=users["expert_assigned"],
                              summary="matrix session")
    from anshim.erasure.models import Platform, Sighting, TakedownRequest

    platform = Platform.objects.create(name="Matrix Social", domains="social.test")
    now = timezone.now()
    sighting = Sighting.objects.create(
        page_url="http://127.0.0.1:9/page", media_url="http://127.0.0.1:9/a.png",
        platform=platform, entry_id=1, bank_name="victims", case=case, match_kind="pdq",
        distance=4, first_seen=now, last_seen=now)
    takedown = TakedownRequest.objects.create(case=case, platform=platform, subject="s", body="b")
    return World(users, case, referral, assignment, appointment, profiles["expert_assigned"],
                 sighting, takedown)


# --- The rules -------------------------------------------------------------------------------

Rule = Callable[[Any, World], bool]


def on_case(action: Action) -> Rule:
    return lambda user, w: can(user, action, w.case)


def globally(action: Action) -> Rule:
    return lambda user, w: can(user, action)


def opens_assignment(user: Any, w: World) -> bool:
    """Staff who manage the case or read its session logs, or the assigned expert."""
    return (can(user, Action.ASSIGN_EXPERT, w.case) or can(user, Action.VIEW_SESSION_LOGS, w.case)
            or (can(user, Action.VIEW_ASSIGNMENT, w.case)
                and w.assignment.expert.user_id == user.pk))


def opens_assignment_and(action: Action) -> Rule:
    return lambda user, w: opens_assignment(user, w) and can(user, action, w.case)


def own_session_log(user: Any, w: World) -> bool:
    return can(user, Action.WRITE_SESSION_LOG, w.case) and w.appointment.expert.user_id == user.pk


def is_expert(user: Any, w: World) -> bool:
    return hasattr(user, "expert_profile")


def signed_in(user: Any, w: World) -> bool:
    return True


@dataclass(frozen=True)
class Row:
    name: str  # URL name, or "METHOD /api/v1/path" for API operations
    method: str
    path: Callable[[World], str]
    rule: Rule
    body: Callable[[World], dict[str, Any]] | None = None


def view(name: str, method: str, rule: Rule, *kw: str) -> Row:
    return Row(name, method, lambda w: reverse(name, kwargs=w.kwargs(kw)), rule)


def api(method: str, template: str, rule: Rule, fill: Callable[[World], str],
        body: Callable[[World], dict[str, Any]] | None = None) -> Row:
    return Row(f"{method} {template}", method, fill, rule, body)


def _account_url(name: str, w: World) -> str:
    return reverse(name, args=[w.users["counselor_other"].pk])


def _account_request(w: World) -> Any:
    """A pending role change for counselor_other, proposed by the admin."""
    from anshim.security.models import AccountRequest

    return AccountRequest.objects.get_or_create(
        kind="role_change", target=w.users["counselor_other"], status="pending",
        defaults={"old_role": "counselor", "new_role": "supervisor",
                  "requested_by": w.users["admin"]})[0]


def _request_url(name: str, w: World) -> str:
    return reverse(name, args=[_account_request(w).pk])


def _source(w: World) -> Any:
    from anshim.erasure.models import MonitoredSource

    return MonitoredSource.objects.get_or_create(
        name="Matrix source", defaults={"seeds": "http://127.0.0.1:9/", "depth": 0})[0]


def _scan_run(w: World) -> Any:
    from anshim.erasure.models import ScanKind, ScanRun

    return ScanRun.objects.get_or_create(kind=ScanKind.SOURCE, source=_source(w))[0]


def _unblurred(w: World) -> Any:
    """The erasure specialist's viewing of the world's sighting."""
    from anshim.erasure.models import UnblurRecord

    return UnblurRecord.objects.get_or_create(sighting=w.sighting, actor=w.users["erasure"])[0]


def own_viewing(user: Any, w: World) -> bool:
    """Only the reviewer who unblurred the picture reports how long it was shown."""
    return can(user, Action.MANAGE_ERASURE) and _unblurred(w).actor_id == user.pk


def second_person(user: Any, w: World) -> bool:
    return (can(user, Action.APPROVE_ACCOUNT_CHANGES)
            and user.pk not in (w.users["admin"].pk, w.users["counselor_other"].pk))


VIEWS = [
    view("staff:home", "GET", signed_in),
    view("cases:list", "GET", globally(Action.VIEW_CASE_LIST)),
    view("cases:intake", "GET", globally(Action.CREATE_CASE)),
    view("cases:detail", "GET", on_case(Action.VIEW_CASE), "code"),
    view("cases:edit", "POST", on_case(Action.EDIT_CASE), "code"),
    view("cases:contact_add", "POST", on_case(Action.EDIT_CASE), "code"),
    view("cases:note_add", "POST", on_case(Action.ADD_NOTE), "code"),
    view("cases:reassess", "POST", on_case(Action.TRIAGE), "code"),
    view("cases:override", "POST", on_case(Action.OVERRIDE_TRIAGE), "code"),
    view("cases:consent", "POST", on_case(Action.MANAGE_CONSENT), "code"),
    view("cases:referral_add", "POST", on_case(Action.MANAGE_REFERRALS), "code"),
    view("cases:referral_update", "POST", on_case(Action.MANAGE_REFERRALS), "code",
         "referral_id"),
    # The case workflow: moves (closure requests, reopening) and the supervisors' decisions.
    view("cases:status_move", "POST", on_case(Action.MOVE_CASE_STATUS), "code"),
    view("cases:closure_decide", "POST", on_case(Action.APPROVE_CASE_CLOSURE), "code"),
    view("cases:closure_queue", "GET", globally(Action.APPROVE_CASE_CLOSURE)),
    view("cases:inbox", "GET", globally(Action.VIEW_PORTAL_INBOX)),
    view("cases:message_reply", "POST", on_case(Action.REPLY_PORTAL_MESSAGES), "code"),
    view("cases:portal_passphrase", "POST", on_case(Action.ISSUE_PORTAL_PASSPHRASE), "code"),
    Row("cases:portal_passphrase (confirmation)", "GET",
        lambda w: reverse("cases:portal_passphrase", kwargs={"code": w.case.code}),
        on_case(Action.ISSUE_PORTAL_PASSPHRASE)),
    view("experts:list", "GET", globally(Action.VIEW_EXPERTS)),
    view("experts:my", "GET", is_expert),
    view("experts:assign", "GET", on_case(Action.ASSIGN_EXPERT), "case_code"),
    Row("experts:detail", "GET", lambda w: reverse("experts:detail", args=[w.expert_profile.pk]),
        globally(Action.VIEW_EXPERTS)),
    Row("experts:edit", "GET", lambda w: reverse("experts:edit", args=[w.expert_profile.pk]),
        globally(Action.MANAGE_EXPERTS)),
    Row("experts:assignment", "GET",
        lambda w: reverse("experts:assignment", args=[w.assignment.pk]), opens_assignment),
    Row("experts:end", "POST", lambda w: reverse("experts:end", args=[w.assignment.pk]),
        opens_assignment_and(Action.ASSIGN_EXPERT)),
    Row("experts:book", "GET", lambda w: reverse("experts:book", args=[w.assignment.pk]),
        opens_assignment_and(Action.MANAGE_APPOINTMENTS)),
    Row("experts:held", "GET", lambda w: reverse("experts:held", args=[w.assignment.pk]),
        lambda u, w: (opens_assignment(u, w) and can(u, Action.WRITE_SESSION_LOG, w.case)
                      and w.assignment.expert.user_id == u.pk)),
    Row("experts:reschedule", "GET",
        lambda w: reverse("experts:reschedule", args=[w.appointment.pk]),
        opens_assignment_and(Action.MANAGE_APPOINTMENTS)),
    Row("experts:cancel", "POST", lambda w: reverse("experts:cancel", args=[w.appointment.pk]),
        opens_assignment_and(Action.MANAGE_APPOINTMENTS)),
    Row("experts:outcome", "POST", lambda w: reverse("experts:outcome", args=[w.appointment.pk]),
        opens_assignment_and(Action.MANAGE_APPOINTMENTS)),
    view("erasure:index", "GET", globally(Action.MANAGE_ERASURE)),
    view("erasure:sightings", "GET", globally(Action.MANAGE_ERASURE)),
    # Dashboards and reports (case-derived figures): supervisors only (issue 14).
    view("reports:dashboard", "GET", globally(Action.VIEW_DASHBOARDS)),
    view("reports:annual", "GET", globally(Action.VIEW_DASHBOARDS)),
    view("reports:monthly", "GET", globally(Action.VIEW_DASHBOARDS)),
    view("erasure:draft", "POST", on_case(Action.MANAGE_ERASURE), "code"),
    Row("erasure:review", "POST", lambda w: reverse("erasure:review", args=[w.sighting.pk]),
        on_case(Action.MANAGE_ERASURE)),
    Row("erasure:preview", "GET", lambda w: reverse("erasure:preview", args=[w.sighting.pk]),
        on_case(Action.MANAGE_ERASURE)),
    Row("erasure:unblur", "POST", lambda w: reverse("erasure:unblur", args=[w.sighting.pk]),
        on_case(Action.MANAGE_ERASURE)),
    Row("erasure:unblur_viewed", "POST",
        lambda w: reverse("erasure:unblur_viewed", args=[_unblurred(w).pk]), own_viewing,
        lambda w: {"seconds": "1"}),
    Row("erasure:request", "GET", lambda w: reverse("erasure:request", args=[w.takedown.pk]),
        on_case(Action.MANAGE_ERASURE)),
    Row("erasure:approve", "POST", lambda w: reverse("erasure:approve", args=[w.takedown.pk]),
        on_case(Action.MANAGE_ERASURE)),
    Row("erasure:respond", "POST", lambda w: reverse("erasure:respond", args=[w.takedown.pk]),
        on_case(Action.MANAGE_ERASURE)),
    Row("erasure:approve (confirmation)", "GET",
        lambda w: reverse("erasure:approve", args=[w.takedown.pk]),
        on_case(Action.MANAGE_ERASURE)),
    Row("erasure:edit", "GET", lambda w: reverse("erasure:edit", args=[w.takedown.pk]),
        on_case(Action.MANAGE_ERASURE)),
    Row("erasure:edit (save)", "POST", lambda w: reverse("erasure:edit", args=[w.takedown.pk]),
        on_case(Action.MANAGE_ERASURE)),
    view("erasure:case", "GET", on_case(Action.MANAGE_ERASURE), "code"),
    Row("erasure:case (add a link)", "POST",
        lambda w: reverse("erasure:case", kwargs={"code": w.case.code}),
        on_case(Action.MANAGE_ERASURE)),
    view("erasure:scan_case", "POST", on_case(Action.MANAGE_ERASURE), "code"),
    view("erasure:register", "GET", on_case(Action.REGISTER_ON_DEVICE), "code"),
    view("erasure:register_fingerprints", "POST", on_case(Action.REGISTER_ON_DEVICE), "code"),
    # Erasure set-up: platforms and monitored sources (issue 19).
    view("erasure:platforms", "GET", globally(Action.CONFIGURE_ERASURE)),
    view("erasure:platform_new", "GET", globally(Action.CONFIGURE_ERASURE)),
    Row("erasure:platform", "GET",
        lambda w: reverse("erasure:platform", args=[w.takedown.platform_id]),
        globally(Action.CONFIGURE_ERASURE)),
    view("erasure:sources", "GET", globally(Action.CONFIGURE_ERASURE)),
    view("erasure:source_new", "GET", globally(Action.CONFIGURE_ERASURE)),
    Row("erasure:source", "GET", lambda w: reverse("erasure:source", args=[_source(w).pk]),
        globally(Action.CONFIGURE_ERASURE)),
    Row("erasure:scan_source", "POST",
        lambda w: reverse("erasure:scan_source", args=[_source(w).pk]),
        globally(Action.MANAGE_ERASURE)),
    Row("erasure:scan", "GET", lambda w: reverse("erasure:scan", args=[_scan_run(w).pk]),
        globally(Action.MANAGE_ERASURE)),
    # Staff accounts: admins and supervisors propose; a second person (a supervisor who is
    # neither the proposer nor the account holder) decides.
    view("staff:accounts", "GET", globally(Action.MANAGE_ACCOUNTS)),
    view("staff:password_change", "GET", signed_in),
    view("staff:backup_codes", "GET", signed_in),
    Row("staff:account", "GET", lambda w: _account_url("staff:account", w),
        globally(Action.MANAGE_ACCOUNTS)),
    Row("staff:account_role", "POST", lambda w: _account_url("staff:account_role", w),
        globally(Action.MANAGE_ACCOUNTS)),
    Row("staff:account_recovery", "POST", lambda w: _account_url("staff:account_recovery", w),
        globally(Action.MANAGE_ACCOUNTS)),
    Row("staff:account_approve", "POST", lambda w: _request_url("staff:account_approve", w),
        second_person),
    Row("staff:account_reject", "POST", lambda w: _request_url("staff:account_reject", w),
        second_person),
    Row("staff:account_cancel", "POST", lambda w: _request_url("staff:account_cancel", w),
        globally(Action.MANAGE_ACCOUNTS)),
    Row("experts:log", "GET", lambda w: reverse("experts:log", args=[w.appointment.pk]),
        lambda u, w: opens_assignment(u, w) and own_session_log(u, w)),
    # Putting a counselor on a case (here: counselor_other, who would then read its notes) is
    # a supervisor's decision, whoever sends the edit form.
    Row("cases:edit (assign a counselor)", "POST",
        lambda w: reverse("cases:edit", kwargs={"code": w.case.code}),
        lambda u, w: can(u, Action.EDIT_CASE, w.case) and can(u, Action.ASSIGN_COUNSELORS,
                                                               w.case),
        lambda w: {"edit-version": w.case.version, "edit-status": w.case.status,
                   "edit-staff_fields": "1", "edit-lead_counselor": w.case.lead_counselor_id,
                   "edit-counselors": [w.users["counselor_other"].pk]}),
]

# Views outside the matrix, and why.
EXEMPT_VIEWS = {
    "staff:login": "public: the sign-in page",
    "staff:logout": "any session may end itself",
    "staff:otp": "second sign-in step, before any role applies",
    "staff:otp_setup": "second-factor enrolment, before any role applies",
    "staff:recover": "public: a single-use recovery link that a second person approved",
}

_C = "/api/v1/cases"
_E = "/api/v1/experts"


def _future(w: World) -> str:
    return (w.appointment.starts_at + dt.timedelta(days=1)).isoformat()


API = [
    api("GET", f"{_C}/", globally(Action.VIEW_CASE_LIST), lambda w: f"{_C}/"),
    api("POST", f"{_C}/", globally(Action.CREATE_CASE), lambda w: f"{_C}/",
        lambda w: {"channel": "phone", "started_at": timezone.now().isoformat(),
                   "harm_types": ["grooming"]}),
    api("GET", f"{_C}/{{code}}", on_case(Action.VIEW_CASE), lambda w: f"{_C}/{w.case.code}"),
    api("PATCH", f"{_C}/{{code}}", on_case(Action.EDIT_CASE), lambda w: f"{_C}/{w.case.code}",
        # The current status: a plain edit never moves it (the workflow's own views do).
        lambda w: {"version": w.case.version, "status": w.case.status}),
    api("POST", f"{_C}/{{code}}/contacts", on_case(Action.EDIT_CASE),
        lambda w: f"{_C}/{w.case.code}/contacts",
        lambda w: {"channel": "phone", "started_at": timezone.now().isoformat()}),
    api("POST", f"{_C}/{{code}}/triage", on_case(Action.TRIAGE),
        lambda w: f"{_C}/{w.case.code}/triage", lambda w: {"self_harm_risk": True}),
    api("POST", f"{_C}/{{code}}/triage/override", on_case(Action.OVERRIDE_TRIAGE),
        lambda w: f"{_C}/{w.case.code}/triage/override",
        lambda w: {"level": "high", "reason": "matrix"}),
    api("POST", f"{_C}/{{code}}/consents", on_case(Action.MANAGE_CONSENT),
        lambda w: f"{_C}/{w.case.code}/consents",
        lambda w: {"scope": "keep_data", "given_by": "victim"}),
    api("POST", f"{_C}/{{code}}/consents/withdraw", on_case(Action.MANAGE_CONSENT),
        lambda w: f"{_C}/{w.case.code}/consents/withdraw", lambda w: {"scope": "keep_data"}),
    api("GET", f"{_C}/{{code}}/notes", on_case(Action.VIEW_CASE),
        lambda w: f"{_C}/{w.case.code}/notes"),
    api("POST", f"{_C}/{{code}}/notes", on_case(Action.ADD_NOTE),
        lambda w: f"{_C}/{w.case.code}/notes", lambda w: {"body": "matrix note"}),
    api("GET", f"{_C}/{{code}}/referrals", on_case(Action.MANAGE_REFERRALS),
        lambda w: f"{_C}/{w.case.code}/referrals"),
    api("POST", f"{_C}/{{code}}/referrals", on_case(Action.MANAGE_REFERRALS),
        lambda w: f"{_C}/{w.case.code}/referrals",
        lambda w: {"target": "hospital", "organization": "Clinic"}),
    api("PATCH", f"{_C}/{{code}}/referrals/{{referral_id}}", on_case(Action.MANAGE_REFERRALS),
        lambda w: f"{_C}/{w.case.code}/referrals/{w.referral.pk}",
        lambda w: {"status": "sent"}),
    api("GET", f"{_E}/", globally(Action.VIEW_EXPERTS), lambda w: f"{_E}/"),
    api("GET", f"{_E}/suggestions", on_case(Action.ASSIGN_EXPERT),
        lambda w: f"{_E}/suggestions?case_code={w.case.code}&need=trauma"),
    api("GET", f"{_E}/assignments",
        lambda u, w: can(u, Action.ASSIGN_EXPERT, w.case) or can(u, Action.VIEW_ASSIGNMENT, w.case),
        lambda w: f"{_E}/assignments?case_code={w.case.code}"),
    api("POST", f"{_E}/assignments", on_case(Action.ASSIGN_EXPERT), lambda w: f"{_E}/assignments",
        lambda w: {"case_code": w.case.code, "expert_id": w.users["expert_other"].expert_profile.pk,
                   "need": "trauma"}),
    api("POST", f"{_E}/assignments/{{pk}}/end", opens_assignment_and(Action.ASSIGN_EXPERT),
        lambda w: f"{_E}/assignments/{w.assignment.pk}/end", lambda w: {}),
    api("GET", f"{_E}/assignments/{{pk}}/appointments", opens_assignment,
        lambda w: f"{_E}/assignments/{w.assignment.pk}/appointments"),
    api("POST", f"{_E}/assignments/{{pk}}/appointments",
        opens_assignment_and(Action.MANAGE_APPOINTMENTS),
        lambda w: f"{_E}/assignments/{w.assignment.pk}/appointments",
        lambda w: {"starts_at": _future(w), "duration_minutes": 60}),
    api("POST", f"{_E}/appointments/{{pk}}/cancel",
        opens_assignment_and(Action.MANAGE_APPOINTMENTS),
        lambda w: f"{_E}/appointments/{w.appointment.pk}/cancel", lambda w: {}),
    api("GET", f"{_E}/appointments/{{pk}}/log",
        lambda u, w: opens_assignment(u, w) and (own_session_log(u, w)
                                                 or can(u, Action.VIEW_SESSION_LOGS, w.case)),
        lambda w: f"{_E}/appointments/{w.appointment.pk}/log"),
    api("PUT", f"{_E}/appointments/{{pk}}/log", own_session_log,
        lambda w: f"{_E}/appointments/{w.appointment.pk}/log", lambda w: {"summary": "matrix"}),
]


# --- Running a row -------------------------------------------------------------------------

DENIED = {401, 403, 404}


def _call(client: Any, row: Row, w: World) -> Any:
    path = row.path(w)
    if row.name.startswith(("GET ", "POST ", "PATCH ", "PUT ", "DELETE ")):
        body = json.dumps(row.body(w)) if row.body else None
        return client.generic(row.method, path, body or "", content_type="application/json")
    if row.method == "GET":
        return client.get(path)
    return client.post(path, row.body(w) if row.body else {})


def rolled_back() -> Any:
    """A transaction each row's world lives in and is rolled back with. Marked like the test
    case's own blocks, so that domain actions (durable transactions) run inside it."""
    block = transaction.atomic()
    block._from_testcase = True  # type: ignore[attr-defined]
    return block


def _check(row: Row, login_client: Callable[..., Any], client_factory: Callable[[], Any]) -> None:
    outcomes = []
    for principal in PRINCIPALS:
        with rolled_back():
            w = build_world()
            user = w.users[principal]
            client = login_client(user, client_factory())
            expected = row.rule(user, w)
            response = _call(client, row, w)
            status = response.status_code
            assert status < 500, f"{row.name} as {principal}: server error {status}"
            allowed = status not in DENIED
            outcomes.append((principal, expected, allowed, status))
            transaction.set_rollback(True)
    wrong = [o for o in outcomes if o[1] != o[2]]
    assert not wrong, f"{row.name}: (principal, policy says, got allowed, status) {wrong}"


@pytest.fixture
def client_factory() -> Callable[[], Any]:
    from django.test import Client

    return Client


@pytest.mark.django_db
@pytest.mark.parametrize("row", VIEWS, ids=[r.name for r in VIEWS])
def test_view_matrix(row: Row, login_client: Any, client_factory: Any) -> None:
    _check(row, login_client, client_factory)


@pytest.mark.django_db
@pytest.mark.parametrize("row", API, ids=[r.name for r in API])
def test_api_matrix(row: Row, login_client: Any, client_factory: Any) -> None:
    _check(row, login_client, client_factory)


@pytest.mark.django_db
@pytest.mark.parametrize("row", VIEWS + API, ids=[r.name for r in VIEWS + API])
def test_anonymous_is_refused_everywhere(row: Row, client: Any) -> None:
    with rolled_back():
        w = build_world()
        response = _call(client, row, w)
        transaction.set_rollback(True)
    if row.name.startswith(("GET ", "POST ", "PATCH ", "PUT ")):
        assert response.status_code == 401
    else:
        assert response.status_code == 302 and "/staff/login/" in response["Location"]


# --- Completeness ----------------------------------------------------------------------------

STAFF_NAMESPACES = {"staff", "cases", "experts", "erasure", "reports"}


def _named_views(resolver: URLResolver, prefix: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            ns = pattern.namespace
            names |= _named_views(pattern, f"{prefix}{ns}:" if ns else prefix)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(prefix + pattern.name)
    return names


def test_every_staff_view_is_in_the_matrix() -> None:
    staff = {n for n in _named_views(get_resolver()) if n.split(":")[0] in STAFF_NAMESPACES}
    covered = {r.name for r in VIEWS} | set(EXEMPT_VIEWS)
    assert staff - covered == set(), "add these views to the role matrix"


def test_every_staff_api_operation_is_in_the_matrix() -> None:
    from anshim.config.api import api as ninja_api

    schema = ninja_api.get_openapi_schema()
    operations = {
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method in item
        if path.startswith(("/api/v1/cases", "/api/v1/experts"))
    }
    covered = {r.name.replace("{pk}", "{pk}") for r in API}
    assert operations - covered == set(), "add these API operations to the role matrix"


# --- The Django admin (configuration): the admin role only, and never an account takeover ----

ADMIN_PAGES: list[tuple[str, str, Callable[[World], str], Rule]] = [
    ("admin:index", "GET", lambda w: "/staff/admin/", globally(Action.ADMIN_CONFIG)),
    ("admin:user list", "GET", lambda w: "/staff/admin/security/user/",
     globally(Action.ADMIN_CONFIG)),
    ("admin:user change", "GET",
     lambda w: f"/staff/admin/security/user/{w.users['counselor_other'].pk}/change/",
     globally(Action.ADMIN_CONFIG)),
    ("admin:account requests", "GET", lambda w: "/staff/admin/security/accountrequest/",
     globally(Action.ADMIN_CONFIG)),
    ("admin:audit log", "GET", lambda w: "/staff/admin/security/auditentry/",
     lambda u, w: can(u, Action.ADMIN_CONFIG) and can(u, Action.VIEW_AUDIT)),
    # Never for anyone: second-factor secrets and setting someone's password.
    ("admin:totp devices", "GET", lambda w: "/staff/admin/otp_totp/totpdevice/",
     lambda u, w: False),
    ("admin:static devices", "GET", lambda w: "/staff/admin/otp_static/staticdevice/",
     lambda u, w: False),
]


@pytest.mark.django_db
@pytest.mark.parametrize("page", ADMIN_PAGES, ids=[p[0] for p in ADMIN_PAGES])
def test_admin_matrix(page: tuple[str, str, Callable[[World], str], Rule],
                      login_client: Any, client_factory: Any) -> None:
    name, method, path, rule = page
    wrong = []
    for principal in PRINCIPALS:
        with rolled_back():
            w = build_world()
            user = w.users[principal]
            client = login_client(user, client_factory())
            response = client.generic(method, path(w))
            assert response.status_code < 500, f"{name} as {principal}"
            # Outside the admin role the site sends people to the staff sign-in (302).
            allowed = response.status_code == 200
            if allowed != rule(user, w):
                wrong.append((principal, rule(user, w), response.status_code))
            transaction.set_rollback(True)
    assert not wrong, f"{name}: (principal, policy says, status) {wrong}"
