from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone, translation

from anshim.cases import services
from anshim.cases.consent import ConsentMissing
from anshim.cases.models import (
    AgeGroup,
    Case,
    CaseStatus,
    Consent,
    ConsentGiver,
    ConsentScope,
    Contact,
    Guardian,
    HarmType,
    NoteKind,
    Person,
    ReferralStatus,
    ReferralTarget,
    RiskLevel,
    TimelineEvent,
    TriageAssessment,
)
from anshim.cases.triage import TriageFactors

pytestmark = pytest.mark.django_db


def test_intake_creates_everything(make_case: Any, counselor: Any) -> None:
    case = make_case(
        age_group=AgeGroup.UNDER_14, harm_types=[HarmType.SEXTORTION, HarmType.GROOMING],
        factors=TriageFactors(threat_to_spread=True),
        guardian=services.GuardianData(name="박보호", relationship="mother"),
        victim_consents=[ConsentScope.KEEP_DATA], guardian_consents=[ConsentScope.KEEP_DATA],
    )
    assert case.code.startswith("AN-")
    assert case.status == CaseStatus.TRIAGED
    assert case.risk_level == RiskLevel.URGENT
    assert case.response_due is not None
    assert case.lead_counselor == counselor
    assert sorted(case.harm_types) == ["grooming", "sextortion"]
    assert case.contacts.count() == 1
    assessment = case.assessments.get()
    assert set(assessment.reasons) == {"threat_to_spread", "under_14", "image_harm"}
    assert case.person.guardians.count() == 1
    assert case.consents.count() == 2
    assert case.person.name == "김가명"
    kinds = list(case.timeline.values_list("kind", flat=True))
    assert kinds[0] == "case.created" and "triage.assessed" in kinds


def test_personal_data_encrypted_at_rest(make_case: Any) -> None:
    case = make_case(name="이비밀", phone="010-0000-0000")
    with connection.cursor() as cur:
        cur.execute("SELECT name, phone FROM cases_person WHERE id = %s", [case.person_id])
        name, phone = cur.fetchone()
    assert "이비밀" not in name and name.startswith("enc1:")
    assert phone.startswith("enc1:")


def test_intake_is_atomic(make_case: Any) -> None:
    counts_before = [m.objects.count() for m in (Person, Case, Contact, Guardian, Consent,
                                                  TriageAssessment, TimelineEvent)]
    with mock.patch("anshim.cases.services.consent.grant", side_effect=RuntimeError("boom")), \
            pytest.raises(RuntimeError):
        make_case(victim_consents=[ConsentScope.KEEP_DATA],
                  guardian=services.GuardianData(name="x"))
    counts_after = [m.objects.count() for m in (Person, Case, Contact, Guardian, Consent,
                                                 TriageAssessment, TimelineEvent)]
    assert counts_after == counts_before


def test_intake_validation(counselor: Any) -> None:
    data = services.IntakeData(channel="pigeon", started_at=timezone.now(), harm_types=[],
                               duration_minutes=-1)
    with pytest.raises(ValidationError) as info:
        services.intake(counselor, data)
    assert set(info.value.message_dict) >= {"channel", "harm_types", "duration_minutes"}
    assert Case.objects.count() == 0


def test_intake_requires_policy(make_user: Any) -> None:
    data = services.IntakeData(channel="phone", started_at=timezone.now(),
                               harm_types=[HarmType.OTHER])
    for role in ("erasure", "prevention", "expert", "admin"):
        with pytest.raises(PermissionDenied):
            services.intake(make_user(role), data)


def test_intake_retries_code_collision(make_case: Any) -> None:
    first = make_case()
    codes_iter = iter([first.code, "AN-2345-6X"])
    with mock.patch("anshim.cases.codes.new_unique_code", side_effect=lambda: next(codes_iter)):
        second = make_case()
    assert second.code == "AN-2345-6X"


def test_optimistic_locking(make_case: Any, counselor: Any, make_user: Any) -> None:
    case = make_case()
    other = make_user("counselor")
    read_by_a = Case.objects.get(pk=case.pk)
    read_by_b = Case.objects.get(pk=case.pk)
    services.update_case(counselor, read_by_a, read_by_a.version, {"summary": "A's text"})
    with pytest.raises(services.StaleEdit) as info:
        services.update_case(other, read_by_b, read_by_b.version, {"summary": "B's text"})
    case.refresh_from_db()
    assert case.summary == "A's text"
    assert info.value.current_version == case.version
    with translation.override("en"):
        assert "Someone else changed this case at" in info.value.text
        assert "reload" in info.value.text.lower()


def test_concurrent_updates_only_one_wins(committed_audit: None, make_user: Any) -> None:
    # Real threads, real commits: two staff save the same version at the same moment.
    actor = make_user("counselor")
    data = services.IntakeData(channel="phone", started_at=timezone.now(),
                               harm_types=[HarmType.OTHER])
    case = services.intake(actor, data)
    version = case.version
    results: list[str] = []
    barrier = threading.Barrier(2)

    def edit(summary: str) -> None:
        from django.db import connections
        try:
            barrier.wait()
            services.update_case(actor, Case.objects.get(pk=case.pk), version,
                                 {"summary": summary})
            results.append("ok")
        except services.StaleEdit:
            results.append("stale")
        except Exception as exc:  # e.g. SQLite "database is locked" counts as a refusal too
            results.append(f"error:{type(exc).__name__}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=edit, args=(s,)) for s in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1, results
    case.refresh_from_db()
    assert case.version == version + 1


def test_update_case_summary_and_fields(make_case: Any, counselor: Any) -> None:
    case = make_case()
    services.update_case(counselor, case, case.version, {"summary": "new text"})
    assert Case.objects.get(pk=case.pk).summary == "new text"
    with pytest.raises(ValidationError):
        services.update_case(counselor, case, case.version, {"code": "AN-XXXX-XX"})
    with pytest.raises(ValidationError):
        services.update_case(counselor, case, case.version, {"status": "bogus"})


def test_status_moves_only_through_the_workflow(make_case: Any, counselor: Any) -> None:
    # Closing, reopening and every other move: anshim.cases.transitions (tests/cases/
    # test_workflow.py); a plain edit may resend the current status, never change it.
    case = make_case()
    services.update_case(counselor, case, case.version, {"status": case.status})
    with pytest.raises(ValidationError):
        services.update_case(counselor, case, case.version, {"status": CaseStatus.CLOSED})
    assert Case.objects.get(pk=case.pk).status == CaseStatus.TRIAGED


def test_override_requires_supervisor(make_case: Any, counselor: Any, supervisor: Any) -> None:
    case = make_case()
    with pytest.raises(PermissionDenied):
        services.override_triage(counselor, case, RiskLevel.URGENT, "gut feeling")
    with pytest.raises(ValidationError):
        services.override_triage(supervisor, case, RiskLevel.URGENT, "   ")
    a = services.override_triage(supervisor, case, RiskLevel.URGENT, "Caller sounded at risk")
    assert a.override_level == RiskLevel.URGENT and a.overridden_by == supervisor
    assert a.overridden_at is not None and a.effective_level == RiskLevel.URGENT
    case.refresh_from_db()
    assert case.risk_level == RiskLevel.URGENT


def test_reassess(make_case: Any, counselor: Any) -> None:
    case = make_case()
    services.reassess(counselor, case, TriageFactors(self_harm_risk=True))
    case.refresh_from_db()
    assert case.risk_level == RiskLevel.URGENT
    assert case.assessments.count() == 2


def test_police_referral_needs_consent(make_case: Any, counselor: Any) -> None:
    case = make_case()
    with pytest.raises(ConsentMissing):
        services.create_referral(counselor, case, target=ReferralTarget.POLICE,
                                 organization="Seoul Police")
    services.grant_consent(counselor, case, ConsentScope.SHARE_POLICE, ConsentGiver.VICTIM)
    referral = services.create_referral(counselor, case, target=ReferralTarget.POLICE,
                                        organization="Seoul Police")
    referral = services.update_referral(counselor, referral, status=ReferralStatus.COMPLETED,
                                        outcome="Complaint filed")
    assert referral.status == ReferralStatus.COMPLETED and referral.outcome == "Complaint filed"
    # Withdrawal takes effect for the next action.
    services.withdraw_consent(counselor, case, ConsentScope.SHARE_POLICE)
    with pytest.raises(ConsentMissing):
        services.create_referral(counselor, case, target=ReferralTarget.POLICE,
                                 organization="Seoul Police")


def test_hospital_referral_needs_no_consent(make_case: Any, counselor: Any) -> None:
    case = make_case()
    r = services.create_referral(counselor, case, target=ReferralTarget.HOSPITAL,
                                 organization="Hospital")
    assert r.pk


def test_notes_visibility(make_case: Any, counselor: Any, make_user: Any,
                          supervisor: Any) -> None:
    case = make_case()
    services.add_note(counselor, case, body="counseling", kind=NoteKind.COUNSELING)
    services.add_note(counselor, case, body="case", kind=NoteKind.CASE)
    other = make_user("counselor")
    erasure = make_user("erasure")
    assert {n.body for n in services.visible_notes(counselor, case)} == {"counseling", "case"}
    assert {n.body for n in services.visible_notes(supervisor, case)} == {"counseling", "case"}
    assert {n.body for n in services.visible_notes(other, case)} == {"case"}
    assert services.visible_notes(erasure, case) == []
    with pytest.raises(ValidationError):
        services.add_note(counselor, case, body="  ")


def test_timeline_in_order(make_case: Any, counselor: Any) -> None:
    case = make_case()
    services.add_contact(counselor, case, channel="chat", started_at=timezone.now())
    services.add_note(counselor, case, body="n")
    services.grant_consent(counselor, case, ConsentScope.KEEP_DATA, ConsentGiver.VICTIM)
    events = list(case.timeline.all())
    assert [e.kind for e in events][-3:] == ["contact.added", "note.added", "consent.granted"]
    assert [e.at for e in events] == sorted(e.at for e in events)
    # No personal data in the timeline.
    assert all("김가명" not in e.message and "김가명" not in str(e.data) for e in events)


def test_add_contact_validation(make_case: Any, counselor: Any) -> None:
    case = make_case()
    with pytest.raises(ValidationError):
        services.add_contact(counselor, case, channel="fax", started_at=timezone.now())
    with pytest.raises(ValidationError):
        services.add_contact(counselor, case, channel="chat", started_at=timezone.now(),
                             duration_minutes=99999)
