"""The case workflow (issue 19 item 11): the definition and its checks, every move, the
closure approval, refusals, implied moves, concurrency and the data migration."""

from __future__ import annotations

import importlib
import threading
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.test import override_settings

from anshim.cases import services, transitions, workflow
from anshim.cases.models import (
    Case,
    CaseStatus,
    Notification,
    ReferralTarget,
    StatusChange,
    StatusChangeKind,
    TimelineEvent,
)
from anshim.cases.workflow import Implied
from anshim.security.models import AuditEntry

pytestmark = pytest.mark.django_db

S = CaseStatus


def _set(case: Any, status: str) -> Any:
    Case.objects.filter(pk=case.pk).update(status=status)
    case.refresh_from_db()
    return case


# --- The definition ---------------------------------------------------------------------------


def test_default_workflow_is_the_centers() -> None:
    flow = workflow.build()
    assert flow.statuses == [S.NEW, S.TRIAGED, S.IN_SUPPORT, S.ERASURE, S.ON_HOLD, S.CLOSING,
                             S.CLOSED]
    assert flow.allows(S.TRIAGED, S.IN_SUPPORT) and flow.allows(S.ERASURE, S.CLOSING)
    # Closed only through closing (a supervisor's approval), and nothing by hand from there.
    assert not any(flow.allows(s, S.CLOSED) for s in flow.statuses)
    assert flow.manual_moves(S.CLOSING) == () and flow.manual_moves(S.CLOSED) == ()
    assert flow.reopen_to == (S.IN_SUPPORT, S.TRIAGED)
    assert flow.implied_target(Implied.TRIAGE_DONE, S.NEW) == S.TRIAGED
    assert flow.implied_target(Implied.TRIAGE_DONE, S.IN_SUPPORT) is None
    assert flow.implied_target(Implied.ERASURE_STARTED, S.CLOSING) is None


@pytest.mark.parametrize(("override", "message"), [
    ({"transitions": {**workflow.DEFAULT_WORKFLOW["transitions"], "triaged": ["closed"]}},
     '"triaged" -> "closed"'),
    ({"transitions": {**workflow.DEFAULT_WORKFLOW["transitions"], "triaged": ["bogus"]}},
     'unknown status "bogus"'),
    ({"transitions": {**workflow.DEFAULT_WORKFLOW["transitions"], "on_hold": []}},
     'a case in "on_hold" could never be closed'),
    ({"transitions": {"new": ["closing"], "closing": ["closed"], "closed": [],
                      "on_hold": ["closing"]}, "reopen_to": ["new"],
      "implied": {"triage_done": {"from": [], "to": "new"},
                  "support_started": {"from": [], "to": "new"},
                  "erasure_started": {"from": [], "to": "new"}}},
     '"on_hold" cannot be reached from "new"'),
    ({"transitions": {**workflow.DEFAULT_WORKFLOW["transitions"], "closing": ["triaged"]}},
     '"closing" must move to ["closed"] only'),
    ({"transitions": {**workflow.DEFAULT_WORKFLOW["transitions"], "closed": ["triaged"]}},
     '"closed" must have no moves'),
    ({"implied": {"triage_done": {"from": ["in_support"], "to": "triaged"}}},
     '"triage_done": "in_support" -> "triaged" is not an allowed move'),
    ({"implied": {"erasure_started": {"from": ["closing"], "to": "erasure"}}},
     'may not move a case out of "closing"'),
    ({"implied": {"police_called": {"from": ["new"], "to": "triaged"}}},
     'unknown implied event "police_called"'),
    ({"reopen_to": ["closing"]}, '"reopen_to": "closing" is not an open status'),
    ({"reopen_to": []}, '"reopen_to" must be a non-empty list'),
    ({"colour": "blue"}, "unknown keys ['colour']"),
    ("new->closed", "must be a dict"),
])
def test_an_invalid_workflow_is_refused_with_what_is_wrong(override: Any, message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        workflow.build(override)
    assert message in str(info.value) and "ANSHIM_CASE_WORKFLOW" in str(info.value)


def test_the_start_checks_the_setting() -> None:
    from django.apps import apps

    bad = {"transitions": {**workflow.DEFAULT_WORKFLOW["transitions"], "new": ["closed"]}}
    with override_settings(ANSHIM_CASE_WORKFLOW=bad), pytest.raises(ImproperlyConfigured):
        apps.get_app_config("cases").ready()
    apps.get_app_config("cases").ready()  # the default is fine again


def test_a_configured_workflow_is_used(make_case: Any, counselor: Any) -> None:
    # A center without "on hold", whose referrals do not count as support.
    config = {
        "transitions": {"new": ["triaged", "closing"], "triaged": ["in_support", "closing"],
                        "in_support": ["erasure", "closing"], "erasure": ["closing"],
                        "closing": ["closed"], "closed": []},
        "implied": {"support_started": {"from": [], "to": "in_support"},
                    "erasure_started": {"from": ["in_support"], "to": "erasure"}},
        "reopen_to": ["triaged"],
    }
    with override_settings(ANSHIM_CASE_WORKFLOW=config):
        case = make_case()
        assert case.status == S.TRIAGED
        assert [m.to for m in transitions.next_moves(case)] == [S.IN_SUPPORT, S.CLOSING]
        with pytest.raises(ValidationError):
            transitions.move(counselor, case, S.ON_HOLD, expected=S.TRIAGED)
        services.create_referral(counselor, case, target=ReferralTarget.HOSPITAL,
                                 organization="Clinic")
        assert Case.objects.get(pk=case.pk).status == S.TRIAGED
    assert workflow.get().allows(S.TRIAGED, S.ON_HOLD)  # back to the default


# --- Moves by hand ----------------------------------------------------------------------------

MANUAL = [(f, t) for f, ts in workflow.DEFAULT_WORKFLOW["transitions"].items() for t in ts
          if t not in (S.CLOSING, S.CLOSED) and f != S.CLOSING]


@pytest.mark.parametrize(("start", "to"), MANUAL, ids=[f"{f}->{t}" for f, t in MANUAL])
def test_every_manual_move(make_case: Any, counselor: Any, start: str, to: str) -> None:
    case = _set(make_case(), start)
    version = case.version
    change = transitions.move(counselor, case, to, expected=start)
    case.refresh_from_db()
    assert case.status == to and case.version == version + 1
    assert (change.kind, change.from_status, change.to_status, change.actor) == (
        StatusChangeKind.MOVE, start, to, counselor)
    event = TimelineEvent.objects.filter(case=case).latest("id")
    assert event.kind == "case.status_moved" and event.data["from"] == start
    assert event.data["to"] == to
    entry = AuditEntry.objects.filter(action=transitions.CASE_STATUS_MOVE).latest("seq")
    assert entry.reason == f"{start}->{to}" and entry.case_id == case.pk
    assert entry.target_pk == str(change.pk)


@pytest.mark.parametrize(("start", "to"), [
    (S.NEW, S.ON_HOLD), (S.TRIAGED, S.NEW), (S.IN_SUPPORT, S.CLOSED), (S.CLOSING, S.CLOSED),
    (S.CLOSING, S.IN_SUPPORT), (S.CLOSED, S.IN_SUPPORT),
])
def test_an_illegal_move_is_refused(make_case: Any, counselor: Any, start: str,
                                    to: str) -> None:
    case = _set(make_case(), start)
    with pytest.raises(ValidationError) as info:
        transitions.move(counselor, case, to, expected=start)
    assert info.value.code == "illegal_move"
    assert Case.objects.get(pk=case.pk).status == start
    assert not StatusChange.objects.filter(case=case, kind=StatusChangeKind.MOVE).exists()


def test_a_stale_move_is_refused_and_nothing_changes(make_case: Any, counselor: Any,
                                                     make_user: Any) -> None:
    case = make_case()
    other = make_user("counselor")
    seen_by_b = Case.objects.get(pk=case.pk)
    transitions.move(counselor, case, S.IN_SUPPORT, expected=S.TRIAGED)
    with pytest.raises(transitions.StaleStatus) as info:
        transitions.move(other, seen_by_b, S.ON_HOLD, expected=S.TRIAGED)
    assert Case.objects.get(pk=case.pk).status == S.IN_SUPPORT
    assert info.value.current == S.IN_SUPPORT
    from django.utils import translation

    with translation.override("en"):
        assert "Nothing was changed" in info.value.text and "In support" in info.value.text
    with translation.override("ko"):
        assert "변경되지 않았습니다" in info.value.text


@pytest.mark.parametrize("role", ["erasure", "prevention", "expert", "admin"])
def test_only_counselors_and_supervisors_move_cases(make_case: Any, make_user: Any,
                                                    role: str) -> None:
    case = make_case()
    with pytest.raises(PermissionDenied):
        transitions.move(make_user(role), case, S.IN_SUPPORT, expected=S.TRIAGED)
    with pytest.raises(PermissionDenied):
        transitions.request_closure(make_user(role), case, expected=S.TRIAGED)
    assert Case.objects.get(pk=case.pk).status == S.TRIAGED


# --- Closure ----------------------------------------------------------------------------------


def test_closure_needs_a_supervisor(make_case: Any, counselor: Any, supervisor: Any,
                                    make_user: Any) -> None:
    case = _set(make_case(), S.ERASURE)
    change = transitions.request_closure(counselor, case, expected=S.ERASURE,
                                         note="All links removed; the victim agrees.")
    case.refresh_from_db()
    assert case.status == S.CLOSING and case.closed_at is None
    assert change.kind == StatusChangeKind.CLOSURE_REQUESTED
    # The note may name people: encrypted at rest, never in the audit log.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT reason FROM cases_statuschange WHERE id = %s", [change.pk])
        raw = str(cursor.fetchone()[0])
    assert raw.startswith("enc1:") and "victim" not in raw
    assert StatusChange.objects.get(pk=change.pk).reason.startswith("All links removed")
    assert AuditEntry.objects.get(action=transitions.CASE_CLOSURE_REQUEST).reason == \
        "erasure->closing"
    # Every supervisor hears of it.
    assert Notification.objects.filter(recipient=supervisor, link="/staff/cases/closures/") \
        .exists()
    # The counselor cannot close on their own, by any route.
    with pytest.raises(PermissionDenied):
        transitions.approve_closure(counselor, case)
    with pytest.raises(ValidationError):
        transitions.move(counselor, case, S.CLOSED, expected=S.CLOSING)
    with pytest.raises(ValidationError):
        services.update_case(counselor, case, case.version, {"status": S.CLOSED})
    assert Case.objects.get(pk=case.pk).status == S.CLOSING
    # A second click on "request closure" is refused, not recorded twice.
    with pytest.raises(transitions.StaleStatus):
        transitions.request_closure(counselor, case, expected=S.ERASURE)

    transitions.approve_closure(supervisor, case)
    case.refresh_from_db()
    assert case.status == S.CLOSED and case.closed_at is not None
    assert not services.is_overdue(case)
    assert Notification.objects.filter(recipient=counselor,
                                       link=f"/staff/cases/{case.code}/").exists()
    kinds = list(case.timeline.values_list("kind", flat=True))
    assert "case.closure_requested" in kinds and "case.closed" in kinds
    # A second approval (a double submit, or a second supervisor) finds it closed.
    with pytest.raises(transitions.StaleStatus):
        transitions.approve_closure(make_user("supervisor"), case)
    assert StatusChange.objects.filter(case=case,
                                       kind=StatusChangeKind.CLOSURE_APPROVED).count() == 1


def test_rejection_needs_a_reason_and_returns_the_case(make_case: Any, counselor: Any,
                                                       supervisor: Any) -> None:
    case = _set(make_case(), S.ON_HOLD)
    transitions.request_closure(counselor, case, expected=S.ON_HOLD)
    with pytest.raises(ValidationError):
        transitions.reject_closure(supervisor, case, reason="   ")
    assert Case.objects.get(pk=case.pk).status == S.CLOSING
    change = transitions.reject_closure(supervisor, case, reason="A link is still online.")
    case.refresh_from_db()
    assert case.status == S.ON_HOLD  # where it was before "closing"
    assert change.reason == "A link is still online."
    assert AuditEntry.objects.get(action=transitions.CASE_CLOSURE_REJECT).reason == \
        "closing->on_hold"
    with pytest.raises(transitions.StaleStatus):
        transitions.reject_closure(supervisor, case, reason="again")


def test_whoever_asked_does_not_decide(make_case: Any, supervisor: Any,
                                       make_user: Any) -> None:
    case = make_case()
    transitions.request_closure(supervisor, case, expected=S.TRIAGED)
    assert not Notification.objects.filter(recipient=supervisor).exists()
    with pytest.raises(transitions.OwnClosureRequest):
        transitions.approve_closure(supervisor, case)
    with pytest.raises(transitions.OwnClosureRequest):
        transitions.reject_closure(supervisor, case, reason="changed my mind")
    transitions.approve_closure(make_user("supervisor"), case)
    assert Case.objects.get(pk=case.pk).status == S.CLOSED


def test_reopen_needs_a_reason_and_a_reopen_status(make_case: Any, counselor: Any,
                                                   supervisor: Any) -> None:
    case = make_case()
    transitions.request_closure(counselor, case, expected=S.TRIAGED)
    transitions.approve_closure(supervisor, case)
    case.refresh_from_db()
    with pytest.raises(ValidationError):
        transitions.reopen(counselor, case, S.IN_SUPPORT, reason="")
    with pytest.raises(ValidationError):
        transitions.reopen(counselor, case, S.ERASURE, reason="new upload")
    assert [m.to for m in transitions.next_moves(case)] == [S.IN_SUPPORT, S.TRIAGED]
    transitions.reopen(counselor, case, S.IN_SUPPORT, reason="The image was uploaded again.")
    case.refresh_from_db()
    assert case.status == S.IN_SUPPORT and case.closed_at is None
    # Reopening a case that is open already is stale.
    with pytest.raises(transitions.StaleStatus):
        transitions.reopen(counselor, case, S.TRIAGED, reason="twice")
    assert AuditEntry.objects.get(action=transitions.CASE_REOPEN).reason == "closed->in_support"


def test_a_crash_mid_move_leaves_nothing(make_case: Any, counselor: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    case = make_case()
    version = case.version

    def crash(**kwargs: Any) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(transitions, "audit_record", crash)
    with pytest.raises(RuntimeError):
        transitions.request_closure(counselor, case, expected=S.TRIAGED)
    case = Case.objects.get(pk=case.pk)
    assert case.status == S.TRIAGED and case.version == version
    assert not StatusChange.objects.filter(case=case,
                                           kind=StatusChangeKind.CLOSURE_REQUESTED).exists()
    assert not case.timeline.filter(kind="case.closure_requested").exists()


# --- Implied moves ----------------------------------------------------------------------------


def test_triage_moves_a_new_case(make_case: Any, counselor: Any) -> None:
    case = make_case()
    assert case.status == S.TRIAGED
    change = StatusChange.objects.get(case=case)
    assert (change.kind, change.cause, change.from_status, change.actor) == (
        StatusChangeKind.IMPLIED, Implied.TRIAGE_DONE, S.NEW, counselor)
    assert AuditEntry.objects.get(action=transitions.CASE_STATUS_IMPLIED).reason == \
        "new->triaged"
    # A later assessment does not move it again.
    _set(case, S.IN_SUPPORT)
    from anshim.cases.triage import TriageFactors

    services.reassess(counselor, case, TriageFactors(repeated_contact=True))
    assert Case.objects.get(pk=case.pk).status == S.IN_SUPPORT


def test_a_referral_starts_support(make_case: Any, counselor: Any) -> None:
    case = make_case()
    services.create_referral(counselor, case, target=ReferralTarget.HOSPITAL,
                             organization="Clinic")
    assert Case.objects.get(pk=case.pk).status == S.IN_SUPPORT
    assert StatusChange.objects.filter(case=case, cause=Implied.SUPPORT_STARTED).count() == 1


def _expert(make_user: Any) -> Any:
    from anshim.experts.models import Expert

    return Expert.objects.create(user=make_user("expert"), kind="therapy",
                                 specialties=["trauma"], languages=["ko"], regions=["Mapo-gu"],
                                 weekly_capacity=10)


def test_an_expert_assignment_and_appointment_start_support(make_case: Any, counselor: Any,
                                                            make_user: Any) -> None:
    import datetime as dt

    from django.utils import timezone

    from anshim.experts.models import Appointment, Assignment

    case = make_case()
    assignment = Assignment.objects.create(case=case, expert=_expert(make_user),
                                           specialty="trauma", assigned_by=counselor)
    change = StatusChange.objects.get(case=case, cause=Implied.SUPPORT_STARTED)
    assert change.to_status == S.IN_SUPPORT and change.actor == counselor
    # An appointment on a case already in support changes nothing; on a case on hold it does.
    _set(case, S.ON_HOLD)
    start = timezone.now() + dt.timedelta(days=2)
    Appointment.objects.create(assignment=assignment, expert=assignment.expert, starts_at=start,
                               ends_at=start + dt.timedelta(hours=1))
    assert Case.objects.get(pk=case.pk).status == S.IN_SUPPORT


def _sighting(case: Any) -> Any:
    from django.utils import timezone

    from anshim.erasure.models import Platform, Sighting

    platform = Platform.objects.create(name="Test Social", domains="social.test")
    now = timezone.now()
    return Sighting.objects.create(
        page_url="http://127.0.0.1:9/page", media_url="http://127.0.0.1:9/a.png",
        platform=platform, entry_id=1, bank_name="victims", case=case, match_kind="pdq",
        distance=4, first_seen=now, last_seen=now), platform


def test_erasure_work_moves_the_case(make_case: Any, make_user: Any) -> None:
    from anshim.erasure.models import TakedownRequest
    from anshim.erasure.sightings import review_sighting

    eraser = make_user("erasure")
    case = _set(make_case(), S.IN_SUPPORT)
    sighting, platform = _sighting(case)
    assert Case.objects.get(pk=case.pk).status == S.IN_SUPPORT  # found, not yet confirmed
    review_sighting(sighting, confirm=True, actor=eraser)
    change = StatusChange.objects.get(case=case, cause=Implied.ERASURE_STARTED)
    assert (change.from_status, change.to_status, change.actor) == (
        S.IN_SUPPORT, S.ERASURE, eraser)
    # A notice drafted for a case on hold: erasure work again.
    other = _set(make_case(), S.ON_HOLD)
    TakedownRequest.objects.create(case=other, platform=platform, subject="s", body="b",
                                   created_by=eraser)
    assert Case.objects.get(pk=other.pk).status == S.ERASURE


def test_implied_moves_never_touch_a_closing_or_closed_case(make_case: Any, counselor: Any,
                                                            make_user: Any) -> None:
    from anshim.erasure.sightings import review_sighting

    case = make_case()
    transitions.request_closure(counselor, case, expected=S.TRIAGED)
    sighting, _platform = _sighting(case)
    review_sighting(sighting, confirm=True, actor=make_user("erasure"))
    services.create_referral(counselor, case, target=ReferralTarget.HOSPITAL,
                             organization="Clinic")
    assert Case.objects.get(pk=case.pk).status == S.CLOSING
    assert transitions.imply(case, Implied.TRIAGE_DONE) is None


# --- Concurrency ------------------------------------------------------------------------------


def test_two_approvals_at_once_one_wins(committed_audit: None, make_user: Any) -> None:
    from django.db import connections
    from django.utils import timezone

    counselor = make_user("counselor")
    supervisors = [make_user("supervisor"), make_user("supervisor")]
    case = services.intake(counselor, services.IntakeData(
        channel="phone", started_at=timezone.now(), harm_types=["other"]))
    transitions.request_closure(counselor, case, expected=S.TRIAGED)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def approve(user: Any) -> None:
        try:
            barrier.wait()
            transitions.approve_closure(user, Case.objects.get(pk=case.pk))
            results.append("ok")
        except transitions.StaleStatus:
            results.append("stale")
        except Exception as exc:  # SQLite "database is locked" is a refusal too
            results.append(f"error:{type(exc).__name__}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(u,)) for u in supervisors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1, results
    assert Case.objects.get(pk=case.pk).status == S.CLOSED
    assert StatusChange.objects.filter(case=case,
                                       kind=StatusChangeKind.CLOSURE_APPROVED).count() == 1


# --- The data migration -----------------------------------------------------------------------


def test_the_migration_renames_active_and_keeps_a_record(make_case: Any) -> None:
    from django.apps import apps

    migration = importlib.import_module("anshim.cases.migrations.0005_case_workflow")
    active, held = make_case(), make_case()
    Case.objects.filter(pk=active.pk).update(status="active")
    Case.objects.filter(pk=held.pk).update(status=S.ON_HOLD)
    migration.forwards(apps, None)
    assert Case.objects.get(pk=active.pk).status == S.IN_SUPPORT
    assert Case.objects.get(pk=held.pk).status == S.ON_HOLD  # kept: nothing is lost
    record = StatusChange.objects.get(case=active, kind=StatusChangeKind.MIGRATED)
    assert (record.from_status, record.to_status) == ("active", S.IN_SUPPORT)
    migration.backwards(apps, None)
    assert Case.objects.get(pk=active.pk).status == "active"
