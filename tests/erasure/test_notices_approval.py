"""Notices (issue 19 item 6): Korean particles by the final consonant, the center's name, phone
and signature from settings, a proper sender, editing before approval, approval by a second
person with a confirmation step, and the history in the staff language."""

from __future__ import annotations

from email.header import decode_header, make_header
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from anshim.cases.models import Consent, ConsentGiver, ConsentScope
from anshim.erasure.matcher import MatchResult
from anshim.erasure.models import Platform, TakedownEvent, TakedownRequest, TakedownState
from anshim.erasure.notices import Center, final_consonant, fix_particles, render_notice
from anshim.erasure.sightings import Observation, record_sighting, review_sighting
from anshim.erasure.takedowns import approve_and_send, draft_requests, edit_draft
from anshim.security.models import AuditEntry

from .workflow_support import body_text, smtp_server

pytestmark = pytest.mark.django_db
S = TakedownState


@pytest.mark.parametrize("word, expected", [
    ("지원센터", "지원센터는"), ("서울", "서울은"), ("TR-000001", "TR-000001은"),
    ("TR-000002", "TR-000002는"), ("TR-000010", "TR-000010은"), ("TR-000006", "TR-000006은"),
    ("TR-000009", "TR-000009는"), ("SNS", "SNS는"), ("URL", "URL은")])
def test_topic_particle_follows_the_final_consonant(word: str, expected: str) -> None:
    assert fix_particles(f"{word}은(는)") == expected
    assert fix_particles(f"{word}는(은)") == expected


def test_other_particles() -> None:
    assert fix_particles("TR-000001을(를) 센터을(를)") == "TR-000001을 센터를"
    assert fix_particles("플랫폼이(가) 센터이(가)") == "플랫폼이 센터가"
    # (으)로: ㄹ takes 로 like a vowel.
    assert fix_particles("서울(으)로 TR-000001(으)로 TR-000003(으)로 센터(으)로") == \
        "서울로 TR-000001로 TR-000003으로 센터로"
    assert final_consonant("") == "" and fix_particles("은(는)") == "은(는)"


def test_korean_notice_reads_right_with_the_center_from_settings() -> None:
    center = Center(name_ko="서울 디지털성범죄 안심지원센터", phone="02-815-0382",
                    signature="삭제지원팀 드림")
    _, body = render_notice("ko", platform="P", legal_basis="", reference="TR-000001",
                                  urls=["http://a.test/1"], evidence=[], deadline="2026-12-03",
                                  center=center)
    assert "서울 디지털성범죄 안심지원센터는 디지털 성범죄" in body
    assert "요청번호 TR-000001을" in body and "(는)" not in body and "(를)" not in body
    assert "2026-12-03까지" in body
    assert body.rstrip().endswith(
        "서울 디지털성범죄 안심지원센터\n전화: 02-815-0382\n삭제지원팀 드림")
    _, en = render_notice("en", platform="P", legal_basis="", reference="TR-000002", urls=[],
                          evidence=[], deadline="x", center=center)
    assert "Anshim one-stop support center\nPhone: 02-815-0382" in en


# --- The workflow -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def setup(settings: Any, tmp_path: Path) -> None:
    settings.ANSHIM_EVIDENCE_KEY_FILE = str(tmp_path / "evidence.pem")
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    settings.ANSHIM_TAKEDOWN_SECOND_APPROVER = True  # the default (conftest turns it off)
    settings.ANSHIM_CENTER_NAME = "서울 안심지원센터"
    settings.ANSHIM_CENTER_PHONE = "02-815-0382"
    settings.ANSHIM_CENTER_SIGNATURE = "삭제지원팀"
    settings.ANSHIM_TAKEDOWN_FROM_EMAIL = "takedown@center.test"


@pytest.fixture
def draft(make_case: Any, make_user: Any) -> tuple[TakedownRequest, Any]:
    case = make_case()
    Consent.objects.create(case=case, scope=ConsentScope.CONTACT_PLATFORMS,
                           given_by=ConsentGiver.VICTIM, granted_at=timezone.now())
    Platform.objects.create(name="Domestic", domains="dom.test", contact_email="a@dom.test")
    author = make_user("erasure", display_name="김작성")
    match = MatchResult(bank="victims", bank_id=1, entry_id=1, case_code=case.code, distance=4,
                        kind="pdq")
    s, _ = record_sighting(Observation("http://dom.test/p/1", "http://dom.test/p/m.jpg",
                                       http_status=200, page_html="<p>x</p>"), match)
    review_sighting(s, confirm=True, actor=author)
    [req] = draft_requests(case, actor=author)
    return req, author


def test_drafted_notice_uses_the_settings(draft: Any) -> None:
    req, _ = draft
    assert "서울 안심지원센터는" in req.body and f"{req.reference}을" in req.body
    assert "전화: 02-815-0382" in req.body and "삭제지원팀" in req.body


def test_the_drafter_cannot_approve_a_second_person_can(draft: Any, make_user: Any,
                                                        settings: Any,
                                                        django_capture_on_commit_callbacks: Any,
                                                        ) -> None:
    req, author = draft
    with pytest.raises(ValidationError) as exc:
        approve_and_send(req, actor=author)
    assert exc.value.code == "second_approver"
    req.refresh_from_db()
    assert req.state == S.DRAFT and not req.deliveries.exists()
    # An editor counts as an author too.
    editor = make_user("erasure")
    edit_draft(req, subject=req.subject, body=req.body + "\n추가 문장", actor=editor)
    with pytest.raises(ValidationError):
        approve_and_send(req, actor=editor)
    approver = make_user("supervisor")
    with smtp_server() as (inbox, mailers):
        settings.MAILERS = mailers
        with django_capture_on_commit_callbacks(execute=True):
            approve_and_send(req, actor=approver)
        [msg] = inbox.messages
    req.refresh_from_db()
    assert req.state == S.SENT and req.approved_by == approver
    _, address = parseaddr(str(msg["From"]))
    assert address == "takedown@center.test"
    assert str(make_header(decode_header(str(msg["From"])))).startswith("서울 안심지원센터")
    assert "추가 문장" in body_text(msg)


def test_one_person_approval_when_configured(draft: Any, settings: Any) -> None:
    settings.ANSHIM_TAKEDOWN_SECOND_APPROVER = False
    req, author = draft
    approve_and_send(req, actor=author)
    assert req.state == S.SENT


def test_edit_refuses_bad_input_and_non_drafts(draft: Any, make_user: Any) -> None:
    req, author = draft
    for subject, body in (("", "x"), ("제목", "   "), ("제목", "번호 없는 본문")):
        with pytest.raises(ValidationError):
            edit_draft(req, subject=subject, body=body, actor=author)
    req.refresh_from_db()
    assert req.reference in req.subject and req.edited_by is None
    approve_and_send(req, actor=make_user("erasure"))
    with pytest.raises(ValidationError) as exc:
        edit_draft(req, subject=req.subject, body=req.body + "x", actor=author)
    assert exc.value.code == "not_draft"


def test_pages_edit_confirm_approve_history(draft: Any, make_user: Any, login_client: Any,
                                            settings: Any) -> None:
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    req, author = draft
    c = login_client(author)
    url = f"/staff/erasure/requests/{req.pk}/"
    page = c.get(url).content.decode()
    assert "승인은 다른 사람이 합니다" in page and 'id="approve-notice"' not in page
    # The drafter edits before approval.
    edit = c.get(url + "edit/")
    assert edit.status_code == 200 and "요청서 수정" in edit.content.decode()
    r = c.post(url + "edit/", {"subject": "제목", "body": "번호 없음"})
    assert r.status_code == 200 and "요청번호" in r.content.decode()
    r = c.post(url + "edit/", {"subject": req.subject, "body": req.body + "\n수정함"})
    assert r.status_code == 302
    # The drafter's approval is refused with a message.
    r = c.get(url + "approve/", follow=True)
    assert "작성하거나 수정한 사람은 승인할 수 없습니다" in r.content.decode()
    r = c.post(url + "approve/", follow=True)
    req.refresh_from_db()
    assert req.state == S.DRAFT
    # A second specialist: the confirmation page, then the approval.
    other = login_client(make_user("erasure", display_name="이승인"), Client())
    confirm = other.get(url + "approve/")
    body = confirm.content.decode()
    assert confirm.status_code == 200 and "확인하면 게시물 1건" in body and "수정함" in body
    req.refresh_from_db()
    assert req.state == S.DRAFT  # showing the confirmation sends nothing
    r = other.post(url + "approve/", follow=True)
    assert "요청을 승인했습니다" in r.content.decode()
    req.refresh_from_db()
    assert req.state == S.SENT
    # The history: Korean sentences, who did what, no English system notes.
    with CaptureQueriesContext(connection) as q:
        page = other.get(url).content.decode()
    hist = page[page.index('id="history"'):]
    assert "김작성: 요청서 초안을 작성했습니다." in hist
    assert "김작성: 요청서 문구를 수정했습니다." in hist
    assert "이승인: 요청서를 승인했습니다." in hist
    assert "URL(s)" not in hist and "queued" not in hist
    assert TakedownEvent.objects.filter(request=req, why="edited").count() == 1
    assert AuditEntry.objects.filter(action="takedown.edited").count() == 1
    # More events do not cost more queries (actors are joined).
    n = len(q)
    for _ in range(5):
        TakedownEvent.objects.create(request=req, from_state=S.SENT, to_state=S.SENT,
                                     at=timezone.now(), actor=author, why="resent")
    with CaptureQueriesContext(connection) as q2:
        other.get(url)
    assert len(q2) == n
    assert n <= 25
