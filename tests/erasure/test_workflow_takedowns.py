"""Takedown requests: consent, drafting per platform, templates in four languages, the state
machine, SMTP sending, re-sending every 24 hours, escalation, partner feedback, the views."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import override_settings
from django.utils import timezone

from anshim.cases.consent import ConsentMissing
from anshim.cases.models import Consent, ConsentGiver, ConsentScope, TimelineEvent
from anshim.erasure.matcher import MatchResult
from anshim.erasure.models import (
    EscalationTarget,
    Jurisdiction,
    Platform,
    Sighting,
    SightingStatus,
    TakedownRequest,
    TakedownState,
)
from anshim.erasure.notices import render_notice
from anshim.erasure.sightings import Observation, record_sighting, review_queue, review_sighting
from anshim.erasure.summary import case_summary
from anshim.erasure.takedowns import (
    approve_and_send,
    draft_requests,
    escalate,
    resend_due_requests,
    transition,
)
from anshim.erasure.verification import verify_open_sightings

from .workflow_support import body_text, smtp_server

pytestmark = pytest.mark.django_db
S = TakedownState


@pytest.fixture(autouse=True)
def evidence_key(settings: Any, tmp_path: Path) -> None:
    settings.ANSHIM_EVIDENCE_KEY_FILE = str(tmp_path / "evidence.pem")


@pytest.fixture(autouse=True)
def immediate_tasks(settings: Any) -> None:
    # Notices are delivered by the task queue once the sending transaction commits.
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Any:
    """Run what a block leaves for after commit (the test's own transaction never commits)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def platforms(db: Any) -> tuple[Platform, Platform]:
    return (Platform.objects.create(name="Domestic", domains="dom.test", contact_email="a@dom.test",
                                    expected_response_hours=24),
            Platform.objects.create(name="Overseas", domains="over.test\ncdn.over.test",
                                    contact_email="legal@over.test", notice_language="en",
                                    jurisdiction=Jurisdiction.OVERSEAS))


@pytest.fixture
def case(make_case: Any) -> Any:
    case = make_case()
    Consent.objects.create(case=case, scope=ConsentScope.CONTACT_PLATFORMS,
                           given_by=ConsentGiver.VICTIM, granted_at=timezone.now())
    return case


def sighting(case: Any, page: str, entry: int = 1, confirm: bool = True, actor: Any = None
             ) -> Sighting:
    match = MatchResult(bank="victims", bank_id=1, entry_id=entry, case_code=case.code,
                        distance=4, kind="pdq")
    s, _ = record_sighting(Observation(page, page.rsplit("/", 1)[0] + "/m.jpg",
                                       http_status=200, page_html="<p>x</p>"), match)
    if confirm:
        review_sighting(s, confirm=True, actor=actor)
    return s


def test_one_draft_per_platform_with_urls_and_evidence(case: Any, platforms: Any,
                                                       make_user: Any) -> None:
    user = make_user("erasure")
    sighting(case, "http://dom.test/p/1", entry=1, actor=user)
    sighting(case, "http://www.dom.test/p/2", entry=2, actor=user)
    sighting(case, "https://cdn.over.test/x/3", entry=3, actor=user)
    sighting(case, "http://dom.test/p/9", entry=4, confirm=False)  # not reviewed: left out
    drafts = draft_requests(case, actor=user)
    assert [(d.platform.name, d.items.count()) for d in drafts] == [("Domestic", 2),
                                                                    ("Overseas", 1)]
    dom, over = drafts
    assert "http://www.dom.test/p/2" in dom.body and "EV-" in dom.body
    assert dom.language == "ko" and "삭제" in dom.subject
    assert over.language == "en" and "Removal request" in over.subject
    assert draft_requests(case, actor=user) == []  # already in a request


def test_drafting_needs_consent_to_contact_platforms(make_case: Any, platforms: Any,
                                                     make_user: Any) -> None:
    case = make_case()
    sighting(case, "http://dom.test/p/1")
    with pytest.raises(ConsentMissing):
        draft_requests(case, actor=make_user("erasure"))


def test_counselor_may_not_draft(case: Any, platforms: Any, make_user: Any) -> None:
    with pytest.raises(PermissionDenied):
        draft_requests(case, actor=make_user("counselor"))


@pytest.mark.parametrize("lang, word", [("ko", "삭제 대상 URL"), ("en", "URLs to remove"),
                                        ("ja", "削除対象URL"), ("zh", "需删除的网址")])
def test_notice_templates_in_four_languages(lang: str, word: str) -> None:
    subject, body = render_notice(lang, platform="P", legal_basis="", reference="TR-000001",
                                  urls=["http://a.test/1"], evidence=["EV-000001"],
                                  deadline="2026-01-01")
    assert word in body and "TR-000001" in subject and "http://a.test/1" in body
    assert "$" not in body


def test_send_by_smtp_resend_every_24h_then_escalate(case: Any, platforms: Any,
                                                     make_user: Any, committed: Any) -> None:
    user = make_user("erasure")
    sighting(case, "http://dom.test/p/1", actor=user)
    [req] = draft_requests(case, actor=user)
    t0 = timezone.now()
    with smtp_server() as (inbox, mailers), override_settings(MAILERS=mailers):
        with committed():
            approve_and_send(req, actor=user, at=t0)
        assert resend_due_requests(now=t0 + dt.timedelta(hours=23)) == []
        with committed():
            resent = resend_due_requests(now=t0 + dt.timedelta(hours=25))
        assert [r.pk for r in resent] == [req.pk]
    assert len(inbox.messages) == 2
    assert "http://dom.test/p/1" in body_text(inbox.messages[0])
    assert inbox.messages[0]["X-Envelope-To"] == "a@dom.test"
    req.refresh_from_db()
    assert req.send_count == 2 and req.state == S.NO_RESPONSE  # 24 h deadline passed
    with pytest.raises(ValidationError):
        transition(req, S.DRAFT)
    escalate(req, at=t0 + dt.timedelta(hours=26))
    req.refresh_from_db()
    assert req.state == S.ESCALATED and req.escalation == EscalationTarget.POLICE
    states = list(req.events.values_list("to_state", flat=True))
    assert states[:2] == [S.DRAFT, S.SENT] and states[-1] == S.ESCALATED
    assert TimelineEvent.objects.filter(case=case, kind="erasure.takedown_escalated").exists()


def test_verification_escalates_content_still_online_past_deadline(
        case: Any, platforms: Any, make_user: Any, monkeypatch: Any) -> None:
    from anshim.erasure import verification

    user = make_user("erasure")
    s = sighting(case, "https://cdn.over.test/p/1", actor=user)
    [req] = draft_requests(case, actor=user)
    approve_and_send(req, actor=user, at=timezone.now() - dt.timedelta(days=5))
    html = f'<html><body><img src="{s.media_url}"></body></html>'.encode()
    monkeypatch.setattr(verification, "fetch", lambda url, limit, timeout=20.0, **kw:
                        verification.Fetched(200, html, "text/html"))
    monkeypatch.setattr(verification, "_media_gone", lambda sighting, policy=None: False)
    report = verify_open_sightings()
    assert report.still_there == [s.pk] and report.escalated == [req.pk]
    req.refresh_from_db()
    assert req.state == S.ESCALATED and req.escalation == EscalationTarget.REGULATOR


def test_reupload_goes_first_and_summary(case: Any, platforms: Any, make_user: Any) -> None:
    user = make_user("erasure")
    s1 = sighting(case, "http://dom.test/p/1", entry=5, actor=user)
    from anshim.erasure.sightings import mark_removed

    mark_removed(s1)
    sighting(case, "http://dom.test/p/2", entry=6, confirm=False)
    again = sighting(case, "http://dom.test/p/3", entry=5, confirm=False)
    assert again.is_reupload
    assert next(iter(review_queue())) == again
    summary = case_summary(case)
    assert summary == {"found": 3, "confirmed": 1, "requests_sent": 0, "removed": 1,
                       "reuploads": 1, "median_hours_to_removal": 0.0}


def test_summary_is_none_without_activity(make_case: Any) -> None:
    assert case_summary(make_case()) is None


# --- views -------------------------------------------------------------------------------------


def test_views_review_draft_approve(client: Any, case: Any, platforms: Any, make_user: Any,
                                    login_client: Any, settings: Any, committed: Any) -> None:
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    user = make_user("erasure")
    c = login_client(user)
    s = sighting(case, "http://dom.test/p/1", confirm=False)
    page = c.get("/staff/erasure/")
    assert page.status_code == 200 and f"sighting-{s.pk}".encode() in page.content
    assert c.post(f"/staff/erasure/sightings/{s.pk}/review/", {"decision": "bogus"}
                  ).status_code == 302
    c.post(f"/staff/erasure/sightings/{s.pk}/review/", {"decision": "confirm"})
    s.refresh_from_db()
    assert s.status == SightingStatus.CONFIRMED
    c.post(f"/staff/erasure/cases/{case.code}/draft/", {"language": "zh"})
    req = TakedownRequest.objects.get()
    assert req.language == "zh"
    detail = c.get(f"/staff/erasure/requests/{req.pk}/")
    assert detail.status_code == 200 and "http://dom.test/p/1" in detail.content.decode()
    with committed():
        c.post(f"/staff/erasure/requests/{req.pk}/approve/")
    req.refresh_from_db()
    assert req.state == S.SENT and len(mail.outbox) == 1
    c.post(f"/staff/erasure/requests/{req.pk}/respond/", {"state": "acknowledged"})
    req.refresh_from_db()
    assert req.state == S.ACKNOWLEDGED
    # A second approval is refused with a message, not a 500.
    assert c.post(f"/staff/erasure/requests/{req.pk}/approve/").status_code == 302


def test_views_refuse_other_roles(client: Any, make_user: Any, login_client: Any) -> None:
    c = login_client(make_user("counselor"))
    assert c.get("/staff/erasure/").status_code == 403


def test_preview_is_blurred_and_unblur_is_audited(client: Any, case: Any, platforms: Any,
                                                  make_user: Any, login_client: Any,
                                                  monkeypatch: Any) -> None:
    from anshim.erasure import preview as preview_mod
    from anshim.security.models import AuditEntry

    from .media import picture_bytes

    monkeypatch.setattr(preview_mod, "fetch", lambda url, limit, **kw: preview_mod_fetched(
        picture_bytes(3)))
    c = login_client(make_user("erasure"))
    s = sighting(case, "http://dom.test/p/1", confirm=False)
    blurred = c.get(f"/staff/erasure/sightings/{s.pk}/preview.png")
    assert blurred.status_code == 200 and blurred["Cache-Control"].startswith("no-store")
    assert c.get(f"/staff/erasure/sightings/{s.pk}/unblur/").status_code == 405
    clear = c.post(f"/staff/erasure/sightings/{s.pk}/unblur/")
    assert clear.status_code == 200 and clear.content != blurred.content
    assert AuditEntry.objects.filter(action="sighting.unblur").count() == 1


def preview_mod_fetched(data: bytes) -> Any:
    from anshim.erasure.verification import Fetched

    return Fetched(200, data, "image/png")


def test_case_page_shows_the_summary(client: Any, case: Any, platforms: Any, make_user: Any,
                                     login_client: Any) -> None:
    sighting(case, "http://dom.test/p/1", confirm=False)
    c = login_client(make_user("erasure"))
    page = c.get(f"/staff/cases/{case.code}/").content.decode()
    assert 'id="erasure-found">1<' in page and f"/staff/erasure/cases/{case.code}/draft/" in page


def test_partner_webhook_channel(case: Any, make_user: Any, committed: Any) -> None:
    import http.server
    import json
    import threading

    from anshim.erasure.models import TakedownChannel

    received: list[dict[str, Any]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        Platform.objects.create(name="Partner", domains="partner.test",
                                channel=TakedownChannel.PARTNER_API,
                                webhook_url=f"http://127.0.0.1:{server.server_address[1]}/hook")
        user = make_user("erasure")
        sighting(case, "http://partner.test/v/1", actor=user)
        [req] = draft_requests(case, actor=user)
        with committed():
            approve_and_send(req, actor=user)
    finally:
        server.shutdown()
        server.server_close()
    assert received[0]["reference"] == req.reference
    assert received[0]["urls"] == ["http://partner.test/v/1"]
    assert req.events.last().note == "webhook 202"  # type: ignore[union-attr]
