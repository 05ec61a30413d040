from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from anshim.cases import services
from anshim.cases.models import (
    AgeGroup,
    Case,
    CaseStatus,
    ConsentScope,
    HarmType,
    NoteKind,
    RiskLevel,
)
from anshim.cases.triage import TriageFactors

pytestmark = pytest.mark.django_db

LIST = "/staff/cases/"
INTAKE = "/staff/cases/new/"


def detail(case: Case) -> str:
    return reverse("cases:detail", kwargs={"code": case.code})


def test_list_requires_login(client: Client) -> None:
    response = client.get(LIST)
    assert response.status_code == 302


def test_list_needs_totp(client: Client, counselor: Any) -> None:
    client.force_login(counselor)
    response = client.get(LIST)
    assert response.status_code == 302


def test_list_filters(login_client: Any, make_case: Any, counselor: Any,
                      make_user: Any) -> None:
    other = make_user("counselor")
    urgent = make_case(factors=TriageFactors(self_harm_risk=True))
    low = make_case(actor=other, harm_types=[HarmType.UNSOLICITED],
                    age_group=AgeGroup.ADULT)
    closed = make_case(actor=other, harm_types=[HarmType.UNSOLICITED],
                       age_group=AgeGroup.ADULT)
    # Closed through the workflow's approval in tests/cases/test_workflow.py; here the list.
    Case.objects.filter(pk=closed.pk).update(status=CaseStatus.CLOSED)
    Case.objects.filter(pk=low.pk).update(response_due=timezone.now() - dt.timedelta(hours=1))
    c = login_client(counselor)

    def codes(query: str) -> list[str]:
        response = c.get(LIST + query)
        assert response.status_code == 200
        return [row.case.code for row in response.context["rows"]]

    everything = codes("")
    assert everything[0] == urgent.code  # sorted by risk
    assert set(everything) == {urgent.code, low.code, closed.code}
    assert codes("?risk=urgent") == [urgent.code]
    assert codes("?status=closed") == [closed.code]
    assert codes("?mine=on") == [urgent.code]
    assert codes("?overdue=on") == [low.code]
    assert codes("?sort=deadline")[0] in {urgent.code, low.code}
    # Garbage filters: no 500, the form just ignores them (a control character is a 422).
    assert c.get(LIST + "?status=zzz&risk=<script>&sort=zzz").status_code == 200
    assert c.get(LIST + "?status=%00&risk=<script>&sort=zzz").status_code in (200, 422)


def test_prevention_and_admin_cannot_list(login_client: Any, make_user: Any) -> None:
    for role in ("prevention", "admin"):
        assert login_client(make_user(role)).get(LIST).status_code == 403


def test_case_page_assigned_counselor_sees_notes(login_client: Any, make_case: Any,
                                                 counselor: Any) -> None:
    case = make_case(name="홍길순")
    services.add_note(counselor, case, body="Counseling note body X", kind=NoteKind.COUNSELING)
    response = login_client(counselor).get(detail(case))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Counseling note body X" in body
    assert "홍길순" in body
    assert case.code in body


def test_case_page_unassigned_counselor_no_counseling_notes(
        login_client: Any, make_case: Any, counselor: Any, make_user: Any) -> None:
    case = make_case(name="홍길순")
    services.add_note(counselor, case, body="Counseling note body X", kind=NoteKind.COUNSELING)
    response = login_client(make_user("counselor")).get(detail(case))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Counseling note body X" not in body
    assert "홍길순" in body  # counselors see personal data on every case


def test_case_page_erasure_no_personal_data(login_client: Any, make_case: Any,
                                            counselor: Any, make_user: Any) -> None:
    case = make_case(name="홍길순", phone="010-1234-5678", summary="Secret summary text")
    services.add_note(counselor, case, body="Counseling note body X")
    response = login_client(make_user("erasure")).get(detail(case))
    assert response.status_code == 200
    body = response.content.decode()
    for secret in ("홍길순", "010-1234-5678", "Secret summary text", "Counseling note body X"):
        assert secret not in body
    assert case.code in body
    assert 'id="consent-h"' in body


def test_case_page_forbidden_roles(login_client: Any, make_case: Any, make_user: Any) -> None:
    case = make_case()
    assert login_client(make_user("expert")).get(detail(case)).status_code == 403
    assert login_client(make_user("prevention"), Client()).get(detail(case)).status_code == 403


def test_case_page_unknown_code(login_client: Any, counselor: Any) -> None:
    assert login_client(counselor).get("/staff/cases/AN-XXXX-XX/").status_code == 404


def test_case_page_shows_triage_reasons_and_erasure_slot(
        login_client: Any, make_case: Any, counselor: Any) -> None:
    case = make_case(factors=TriageFactors(offline_meeting_planned=True))
    with translation.override("en"):
        c = login_client(counselor)
        body = c.get(detail(case), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="erasure-h"' in body
    assert "risk-urgent" in body


def valid_intake(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "channel": "phone",
        "started_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "duration_minutes": "25",
        "harm_types": ["sextortion", "grooming"],
        "factors": ["threat_to_spread"],
        "age_group": "under14",
        "name": "최가명",
        "birth_date": "2013-04-05",
        "phone": "010-0000-1111",
        "email": "",
        "address": "",
        "contact_preference": "phone",
        "guardian_name": "최보호",
        "guardian_phone": "010-2222-3333",
        "guardian_relationship": "mother",
        "guardian_is_legal": "on",
        "victim_consents": ["keep_data", "contact_platforms"],
        "guardian_consents": ["keep_data"],
        "summary": "Fictitious: caller reports threats to share images.",
    }
    data.update(overrides)
    return data


def test_intake_form_renders_labels(login_client: Any, counselor: Any) -> None:
    response = login_client(counselor).get(INTAKE, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    body = response.content.decode()
    for field in ("channel", "started_at", "duration_minutes", "summary", "age_group", "name"):
        assert f'for="id_{field}"' in body and f'id="id_{field}"' in body
    assert "<script" not in body and "style=" not in body


def test_intake_creates_case_and_redirects(login_client: Any, counselor: Any) -> None:
    c = login_client(counselor)
    response = c.post(INTAKE, valid_intake())
    assert response.status_code == 302, response.content.decode()[:2000]
    case = Case.objects.get()
    assert response["Location"] == detail(case)
    assert case.risk_level == RiskLevel.URGENT
    assert case.person.name == "최가명"
    assert case.person.guardians.get().name == "최보호"
    assert case.consents.count() == 3
    page = c.get(response["Location"]).content.decode()
    assert case.code in page


@pytest.mark.parametrize("garbage", [
    {"channel": "pigeon"},
    {"started_at": "yesterday-ish"},
    {"started_at": "2026-13-45T99:99"},
    {"duration_minutes": "-5"},
    {"duration_minutes": "9" * 40},
    {"duration_minutes": "abc"},
    {"harm_types": []},
    {"harm_types": ["nuclear"]},
    {"factors": ["made_up"]},
    {"age_group": "ancient"},
    {"birth_date": "31/02/2010"},
    {"birth_date": "2999-01-01"},
    {"birth_date": "0001-01-01"},
    {"email": "not-an-email"},
    {"name": "x" * 100_000},
    {"summary": ""},
    {"summary": "y" * 200_000},
    {"name": "nul\x00byte"},
    {"contact_preference": ["phone", "fax"]},
    {"victim_consents": ["all_of_them"]},
    {"guardian_name": "", "guardian_phone": "", "guardian_consents": ["keep_data"]},
])
def test_intake_garbage_never_500(login_client: Any, counselor: Any,
                                  garbage: dict[str, Any]) -> None:
    response = login_client(counselor).post(INTAKE, valid_intake(**garbage))
    # 422: a control character (the NUL byte), refused centrally with the field named.
    assert response.status_code in (400, 422)
    assert Case.objects.count() == 0
    assert b"errorlist" in response.content


def test_intake_missing_everything(login_client: Any, counselor: Any) -> None:
    response = login_client(counselor).post(INTAKE, {})
    assert response.status_code == 400
    assert Case.objects.count() == 0


def test_intake_errors_in_both_languages(login_client: Any, counselor: Any) -> None:
    c = login_client(counselor)
    with translation.override("en"):
        en = c.post(INTAKE, valid_intake(harm_types=[]), HTTP_ACCEPT_LANGUAGE="en")
    assert "This field is required." in en.content.decode()
    ko = Client()
    login_client(counselor, ko)
    response = ko.post(INTAKE, valid_intake(harm_types=[]), HTTP_ACCEPT_LANGUAGE="ko")
    assert "필수 항목입니다" in response.content.decode()


def test_intake_forbidden_for_erasure(login_client: Any, make_user: Any) -> None:
    c = login_client(make_user("erasure"))
    assert c.get(INTAKE).status_code == 403
    assert c.post(INTAKE, valid_intake()).status_code == 403


def test_edit_with_stale_version_keeps_input(login_client: Any, make_case: Any,
                                             counselor: Any, make_user: Any) -> None:
    case = make_case()
    version = case.version
    a = login_client(counselor)
    b = login_client(make_user("counselor"), Client())
    url = reverse("cases:edit", kwargs={"code": case.code})
    ok = a.post(url, {"edit-version": version, "edit-summary": "A's text"})
    assert ok.status_code == 302
    stale = b.post(url, {"edit-version": version, "edit-summary": "B's unsaved text"},
                   HTTP_ACCEPT_LANGUAGE="en")
    assert stale.status_code == 409
    body = stale.content.decode()
    assert "B&#x27;s unsaved text" in body or "B's unsaved text" in body
    case.refresh_from_db()
    assert case.summary == "A's text"


def test_edit_garbage(login_client: Any, make_case: Any, counselor: Any) -> None:
    case = make_case()
    url = reverse("cases:edit", kwargs={"code": case.code})
    c = login_client(counselor)
    for data in ({}, {"edit-version": "x"}, {"edit-version": "1", "edit-status": "zzz"},
                 {"edit-version": "99999999999999999999", "edit-status": "active"}):
        assert c.post(url, data).status_code in (400, 409)
    assert c.get(url).status_code == 405


def test_case_page_posts(login_client: Any, make_case: Any, counselor: Any,
                         supervisor: Any) -> None:
    case = make_case()
    c = login_client(counselor)
    code = case.code
    r = c.post(reverse("cases:contact_add", kwargs={"code": code}), {
        "contact-channel": "chat", "contact-started_at": "2026-11-25T10:00",
        "contact-duration_minutes": "5", "contact-summary": "follow-up"})
    assert r.status_code == 302
    r = c.post(reverse("cases:note_add", kwargs={"code": code}),
               {"note-kind": "case", "note-body": "hello"})
    assert r.status_code == 302
    r = c.post(reverse("cases:consent", kwargs={"code": code}),
               {"scope": "share_police", "given_by": "victim", "action": "grant",
                "method": "verbal", "confirmed": "1"})
    assert r.status_code == 302
    r = c.post(reverse("cases:referral_add", kwargs={"code": code}),
               {"referral-target": "police", "referral-organization": "Police station"})
    assert r.status_code == 302
    referral = case.referrals.get()
    r = c.post(reverse("cases:referral_update", kwargs={"code": code, "referral_id": referral.pk}),
               {f"ref{referral.pk}-status": "completed", f"ref{referral.pk}-outcome": "done"})
    assert r.status_code == 302
    r = c.post(reverse("cases:reassess", kwargs={"code": code}),
               {"reassess-factors": ["content_spreading"]})
    assert r.status_code == 302
    # Counselors cannot override; supervisors can.
    url = reverse("cases:override", kwargs={"code": code})
    assert c.post(url, {"override-level": "low", "override-reason": "x"}).status_code == 403
    s = login_client(supervisor, Client())
    assert s.post(url, {"override-level": "low", "override-reason": "Known situation"}
                  ).status_code == 302
    case.refresh_from_db()
    assert case.risk_level == RiskLevel.LOW
    page = s.get(detail(case)).content.decode()
    assert "Known situation" in page
    # Garbage to every form: 400 with the page, no 500.
    for name, data in [("contact_add", {"contact-channel": "x"}),
                       ("note_add", {"note-body": ""}),
                       ("consent", {"scope": "zzz"}),
                       ("referral_add", {"referral-target": "moon"})]:
        assert c.post(reverse(f"cases:{name}", kwargs={"code": code}), data).status_code == 400


def test_consent_missing_shown_on_page(login_client: Any, make_case: Any,
                                       counselor: Any) -> None:
    case = make_case(age_group=AgeGroup.UNDER_14)
    c = login_client(counselor)
    c.post(reverse("cases:consent", kwargs={"code": case.code}),
           {"scope": ConsentScope.SHARE_POLICE, "given_by": "victim", "action": "grant",
            "method": "verbal", "confirmed": "1"})
    r = c.post(reverse("cases:referral_add", kwargs={"code": case.code}),
               {"referral-target": "police", "referral-organization": "Police"},
               HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 400
    assert "legal guardian" in r.content.decode()
    assert case.referrals.count() == 0


def test_reads_and_writes_are_audited(login_client: Any, make_case: Any,
                                      counselor: Any) -> None:
    from anshim.security.models import AuditEntry

    case = make_case()
    assert AuditEntry.objects.filter(action="case.create", case_id=case.pk).exists()
    login_client(counselor).get(detail(case))
    actions = set(AuditEntry.objects.filter(case_id=case.pk).values_list("action", flat=True))
    assert {"case.view", "case.view_personal_data"} <= actions


def test_expert_with_assignment_sees_header_only(login_client: Any, make_case: Any,
                                                 make_user: Any) -> None:
    from anshim.experts.models import Assignment, Expert

    case = make_case(name="홍길순", summary="Secret summary text")
    user = make_user("expert")
    expert = Expert.objects.create(user=user, kind="legal")
    Assignment.objects.create(case=case, expert=expert, specialty="criminal_complaint",
                              brief="Brief for the lawyer")
    response = login_client(user).get(detail(case))
    assert response.status_code == 200
    body = response.content.decode()
    assert case.code in body
    assert "홍길순" not in body and "Secret summary text" not in body


def test_korean_is_the_default_language(login_client: Any, counselor: Any) -> None:
    body = login_client(counselor).get(INTAKE).content.decode()
    assert "접수 경로" in body and "피해 유형" in body  # Channel, Harm types
    body_en = login_client(counselor).get(INTAKE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert ">Channel" in body_en and "Harm types" in body_en


def test_case_list_in_korean(login_client: Any, counselor: Any, make_case: Any) -> None:
    make_case(factors=TriageFactors(self_harm_risk=True))
    body = login_client(counselor).get(LIST).content.decode()
    assert "긴급" in body  # Urgent


def test_case_page_ids_unique_and_no_inline_code(login_client: Any, make_case: Any,
                                                 supervisor: Any, counselor: Any) -> None:
    import re
    from collections import Counter

    case = make_case(age_group=AgeGroup.UNDER_14)
    services.create_referral(counselor, case, target="hospital", organization="H1")
    services.create_referral(counselor, case, target="school", organization="S1")
    body = login_client(supervisor).get(detail(case)).content.decode()
    ids = Counter(re.findall(r'\sid="([^"]+)"', body))
    assert [i for i, n in ids.items() if n > 1] == []
    for target in re.findall(r'<label for="([^"]+)"', body):
        assert target in ids, target
    assert "<script" not in body and " style=" not in body


def test_assigning_staff_from_the_case_page(make_user: Any, login_client: Any,
                                            make_case: Any) -> None:
    from anshim.security.models import User

    supervisor = make_user("supervisor")
    lead = make_user("counselor")
    other = make_user("counselor")
    eraser = make_user("erasure")
    case = make_case()
    client = login_client(supervisor)
    url = f"/staff/cases/{case.code}/edit/"
    response = client.post(url, {
        "edit-version": case.version, "edit-status": case.status, "edit-staff_fields": "1",
        "edit-lead_counselor": lead.pk, "edit-counselors": [other.pk],
        "edit-erasure_specialists": [eraser.pk],
    })
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.lead_counselor == lead
    assert list(case.counselors.all()) == [other]
    assert list(case.erasure_specialists.all()) == [eraser]
    # A post without the staff fields shown leaves the assignments alone.
    client.post(url, {"edit-version": case.version, "edit-summary": "more"})
    case.refresh_from_db()
    assert case.summary == "more" and list(case.counselors.all()) == [other]
    # Someone in the wrong role cannot be put on the case.
    response = client.post(url, {
        "edit-version": case.version, "edit-status": case.status, "edit-staff_fields": "1",
        "edit-erasure_specialists": [lead.pk],
    })
    assert response.status_code == 400
    assert User.objects.get(pk=lead.pk).erasure_cases.count() == 0
