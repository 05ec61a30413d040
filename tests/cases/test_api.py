from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from anshim.cases import services
from anshim.cases.models import AgeGroup, Case, ConsentScope, NoteKind, RiskLevel

pytestmark = pytest.mark.django_db

BASE = "/api/v1/cases"


def post(c: Client, url: str, data: Any, method: str = "post") -> Any:
    return getattr(c, method)(url, data=json.dumps(data), content_type="application/json")


def intake_payload(**overrides: Any) -> dict[str, Any]:
    data = {
        "channel": "chat",
        "started_at": timezone.now().isoformat(),
        "duration_minutes": 12,
        "harm_types": ["distribution"],
        "factors": {"content_spreading": True},
        "age_group": "14to17",
        "name": "정가명",
        "victim_consents": ["keep_data"],
        "summary": "Fictitious API intake",
    }
    data.update(overrides)
    return data


def test_unauthenticated_is_401(client: Client) -> None:
    response = client.get(BASE + "/")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_session_without_totp_is_401(client: Client, counselor: Any) -> None:
    client.force_login(counselor)
    assert client.get(BASE + "/").status_code == 401


def test_policy_denied_is_403(login_client: Any, make_user: Any, make_case: Any) -> None:
    case = make_case()
    c = login_client(make_user("prevention"))
    response = c.get(BASE + "/")
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert c.get(f"{BASE}/{case.code}").status_code == 403
    e = login_client(make_user("expert"), Client())
    assert e.get(f"{BASE}/{case.code}").status_code == 403
    assert e.get(BASE + "/").json() == []


def test_intake_get_and_list(login_client: Any, counselor: Any) -> None:
    c = login_client(counselor)
    response = post(c, BASE + "/", intake_payload())
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["risk_level"] == RiskLevel.URGENT
    assert body["person"]["name"] == "정가명"
    assert body["reasons"]
    code = body["code"]
    got = c.get(f"{BASE}/{code}").json()
    assert got["code"] == code and got["contacts"][0]["duration_minutes"] == 12
    listed = c.get(BASE + "/?risk=urgent").json()
    assert [x["code"] for x in listed] == [code]
    assert c.get(BASE + "/?risk=low").json() == []


def test_intake_validation_is_422(login_client: Any, counselor: Any) -> None:
    c = login_client(counselor)
    for bad in (
        intake_payload(channel="pigeon"),
        intake_payload(harm_types=[]),
        intake_payload(started_at="not a date"),
        intake_payload(duration_minutes=-3),
        intake_payload(age_group="old"),
        intake_payload(name="x" * 5000),
        {"channel": "chat"},
    ):
        response = post(c, BASE + "/", bad)
        assert response.status_code == 422, (bad, response.content)
        assert response.json()["error"] == "invalid_input"
    response = c.post(BASE + "/", data="{not json", content_type="application/json")
    assert response.status_code in (400, 422)
    assert Case.objects.count() == 0


def test_erasure_gets_no_personal_data(login_client: Any, make_user: Any,
                                       make_case: Any) -> None:
    case = make_case(name="숨김이")
    body = login_client(make_user("erasure")).get(f"{BASE}/{case.code}").json()
    assert body["person"] is None and body["summary"] is None and body["contacts"] is None
    assert "숨김이" not in json.dumps(body, ensure_ascii=False)
    assert body["consents"]


def test_update_with_stale_version_is_409(login_client: Any, counselor: Any,
                                          make_case: Any) -> None:
    case = make_case()
    c = login_client(counselor)
    url = f"{BASE}/{case.code}"
    ok = post(c, url, {"version": case.version, "summary": "first"}, "patch")
    assert ok.status_code == 200 and ok.json()["status"] == case.status
    stale = post(c, url, {"version": case.version, "summary": "second"}, "patch")
    assert stale.status_code == 409 and stale.json()["error"] == "stale_edit"
    assert post(c, url, {"summary": "x"}, "patch").status_code == 422
    # The status moves only along the workflow (its own actions), never in a plain edit.
    fresh = post(c, url, {"version": case.version + 1, "status": "closed"}, "patch")
    assert fresh.status_code == 422 and "status" in fresh.json()["detail"]
    assert post(c, url, {"version": 1, "status": "nonsense"}, "patch").status_code == 422


def test_contacts_triage_override(login_client: Any, counselor: Any, supervisor: Any,
                                  make_case: Any) -> None:
    case = make_case()
    c = login_client(counselor)
    r = post(c, f"{BASE}/{case.code}/contacts",
             {"channel": "phone", "started_at": timezone.now().isoformat(),
              "duration_minutes": 3})
    assert r.status_code == 201
    r = post(c, f"{BASE}/{case.code}/triage", {"self_harm_risk": True})
    assert r.status_code == 200 and r.json()["level"] == "urgent"
    assert post(c, f"{BASE}/{case.code}/triage/override",
                {"level": "low", "reason": "x"}).status_code == 403
    s = login_client(supervisor, Client())
    r = post(s, f"{BASE}/{case.code}/triage/override", {"level": "high", "reason": "Reviewed"})
    assert r.status_code == 200 and r.json()["level"] == "high"
    assert post(s, f"{BASE}/{case.code}/triage/override",
                {"level": "high", "reason": ""}).status_code == 422


def test_consent_grant_withdraw_and_referral(login_client: Any, counselor: Any,
                                             make_case: Any) -> None:
    case = make_case(age_group=AgeGroup.UNDER_14)
    c = login_client(counselor)
    ref = {"target": "police", "organization": "Police"}
    r = post(c, f"{BASE}/{case.code}/referrals", ref)
    assert r.status_code == 409 and r.json()["error"] == "consent_missing"
    for giver in ("victim", "guardian"):
        r = post(c, f"{BASE}/{case.code}/consents",
                 {"scope": ConsentScope.SHARE_POLICE, "given_by": giver})
        assert r.status_code == 200
    state = {row["scope"]: row for row in r.json()}
    assert state["share_police"]["given"]
    r = post(c, f"{BASE}/{case.code}/referrals", ref)
    assert r.status_code == 201
    rid = r.json()["id"]
    r = post(c, f"{BASE}/{case.code}/referrals/{rid}",
             {"status": "accepted", "outcome": "Investigation opened"}, "patch")
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert c.get(f"{BASE}/{case.code}/referrals").json()[0]["outcome"] == "Investigation opened"
    r = post(c, f"{BASE}/{case.code}/consents/withdraw", {"scope": "share_police",
                                                          "given_by": "guardian"})
    assert r.status_code == 200
    assert post(c, f"{BASE}/{case.code}/referrals", ref).status_code == 409
    assert post(c, f"{BASE}/{case.code}/consents",
                {"scope": "everything", "given_by": "victim"}).status_code == 422
    assert post(c, f"{BASE}/{case.code}/referrals/999999",
                {"status": "accepted"}, "patch").status_code == 404


def test_notes_api_respects_policy(login_client: Any, counselor: Any, make_user: Any,
                                   make_case: Any) -> None:
    case = make_case()
    c = login_client(counselor)
    r = post(c, f"{BASE}/{case.code}/notes", {"kind": "counseling", "body": "private"})
    assert r.status_code == 201
    assert post(c, f"{BASE}/{case.code}/notes", {"body": ""}).status_code == 422
    other = login_client(make_user("counselor"), Client())
    assert other.get(f"{BASE}/{case.code}/notes").json() == []
    assert [n["body"] for n in c.get(f"{BASE}/{case.code}/notes").json()] == ["private"]
    services.add_note(counselor, case, body="case-level", kind=NoteKind.CASE)
    assert [n["body"] for n in other.get(f"{BASE}/{case.code}/notes").json()] == ["case-level"]


def test_unknown_case_is_404(login_client: Any, counselor: Any) -> None:
    r = login_client(counselor).get(f"{BASE}/AN-ZZZZ-ZZ")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_openapi_documents_errors(client: Client) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    op = schema["paths"]["/api/v1/cases/{code}"]["get"]
    assert {"401", "403", "404", "422"} <= set(op["responses"])


def test_api_reads_and_writes_are_audited(login_client: Any, counselor: Any) -> None:
    from anshim.security.models import AuditEntry

    c = login_client(counselor)
    code = post(c, BASE + "/", intake_payload()).json()["code"]
    case = Case.objects.get(code=code)
    c.get(f"{BASE}/{code}")
    c.get(BASE + "/")
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert "case.create" in actions and "case.list" in actions
    assert AuditEntry.objects.filter(case_id=case.pk, action="case.view").exists()
    assert AuditEntry.objects.filter(case_id=case.pk, action="case.view_personal_data").exists()
