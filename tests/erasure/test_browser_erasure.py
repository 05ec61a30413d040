"""Browser tests of the erasure staff workflows (issue 19), Korean UI, Debian's Chromium:
an erasure specialist configures a platform and a source, scans now, reviews, drafts; a second
specialist approves after the confirmation step; a counselor registers a hotline victim's image
on the center's device and no media bytes leave the page."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from .media import picture_bytes
from .workflow_support import FakeSite, transformed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-long-test-passphrase"


def _totp(device: Any) -> str:
    from django_otp.oath import totp

    return f"{totp(device.bin_key, step=device.step, digits=device.digits):0{device.digits}d}"


@pytest.fixture
def ko_context(chromium_browser: Any) -> Iterator[Any]:
    context = chromium_browser.new_context(locale="ko-KR")
    try:
        yield context
    finally:
        context.close()


def _user(username: str, role: str) -> Any:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from anshim.security.models import User

    user = User.objects.create_user(username=username, password=PASSWORD, role=role,
                                    display_name=username)
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user


def _sign_in(context: Any, base: str, user: Any) -> Any:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/staff/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/staff/login/'] button[type=submit]")
    page.fill("input[name=token]", _totp(TOTPDevice.objects.get(user=user)))
    page.click("form[action='/staff/otp/'] button[type=submit] >> nth=0")
    page.wait_for_load_state()
    return page


@pytest.fixture
def evidence_key(settings: Any, tmp_path: Path) -> None:
    settings.ANSHIM_EVIDENCE_KEY_FILE = str(tmp_path / "evidence.pem")
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    settings.ANSHIM_SCAN_WORKERS = 1
    settings.ANSHIM_TAKEDOWN_SECOND_APPROVER = True


def test_configure_scan_review_draft_second_person_approves(
        live_server: Any, ko_context: Any, evidence_key: None, tmp_path: Path,
        make_case: Any, bank: Any) -> None:
    from anshim.cases.models import Consent, ConsentGiver, ConsentScope
    from anshim.erasure.models import (
        EntrySource,
        MonitoredSource,
        Platform,
        ScanRun,
        TakedownRequest,
    )
    from anshim.erasure.services import register_fingerprints
    from anshim.fingerprint import fingerprint_bytes

    case = make_case()
    Consent.objects.create(case=case, scope=ConsentScope.CONTACT_PLATFORMS,
                           given_by=ConsentGiver.VICTIM, granted_at=timezone.now())
    register_fingerprints(bank, case=case, source=EntrySource.STAFF_EVIDENCE, actor=None,
                          fingerprints=fingerprint_bytes(picture_bytes(900), dihedral=True))
    first, second = _user("minji", "erasure"), _user("jisoo", "erasure")
    base = live_server.url
    with FakeSite(tmp_path / "site") as site:
        site.put_image("a.jpg", transformed(900, "recompressed"))
        seed = site.put_page("index.html", ["a.jpg"])
        page = _sign_in(ko_context, base, first)
        # A platform for the test site's host, then the source.
        page.goto(f"{base}/staff/erasure/")
        page.click("#erasure-setup a[href='/staff/erasure/platforms/']")
        page.click("#new-platform")
        page.fill("input[name=name]", "테스트SNS")
        page.fill("textarea[name=domains]", "127.0.0.1")
        page.fill("input[name=contact_email]", "legal@sns.test")
        page.fill("input[name=expected_response_hours]", "48")
        page.click("#config-form button[type=submit]")
        assert "저장했습니다" in page.inner_text("main")
        page.goto(f"{base}/staff/erasure/sources/new/")
        page.fill("input[name=name]", "테스트 사이트")
        page.fill("textarea[name=seeds]", seed)
        page.fill("input[name=depth]", "0")
        page.fill("textarea[name=allowed_private_hosts]", "127.0.0.1")
        page.click("#config-form button[type=submit]")
        assert "저장했습니다" in page.inner_text("main")
        source = MonitoredSource.objects.get()
        assert Platform.objects.get().domain_list == ["127.0.0.1"]
        # Scan now: the progress page, then the result on the source.
        page.goto(f"{base}/staff/erasure/sources/{source.pk}/")
        page.click("#scan-source")
        page.wait_for_selector("#scan-progress[data-status=done]", timeout=60_000)
        assert page.inner_text("#scan-matches").strip() == "1"
        assert ScanRun.objects.get().matches == 1
        page.goto(f"{base}/staff/erasure/sources/{source.pk}/")
        assert "일치 1건" in page.inner_text("#last-scan")
        # Review: the row links the case and names the matched media; confirm; a message.
        page.goto(f"{base}/staff/erasure/")
        row = page.locator("tr[id^=sighting-]")
        assert case.code in row.inner_text() and "a.jpg" in row.inner_text()
        row.locator("button[value=confirm]").click()
        assert "확인했습니다" in page.inner_text("main")
    # Draft from the case's erasure page.
    page.goto(f"{base}/staff/erasure/cases/{case.code}/")
    page.click("#draft-requests")
    page.wait_for_url("**/staff/erasure/requests/*/")
    req = TakedownRequest.objects.get()
    page.goto(f"{base}/staff/erasure/requests/{req.pk}/")
    assert page.locator("#approve-notice").count() == 0
    assert "승인은 다른 사람이 합니다" in page.inner_text("#approval-problem")
    body = page.inner_text("pre.notice")
    assert "는 디지털 성범죄" in body and f"{req.reference}을" in body
    # The second specialist approves after the confirmation step.
    other = _sign_in(ko_context.browser.new_context(locale="ko-KR"), base, second)
    other.goto(f"{base}/staff/erasure/requests/{req.pk}/")
    other.click("#approve-notice")
    assert "발송 후에는 취소할 수 없습니다" in other.inner_text("#approve-summary")
    req.refresh_from_db()
    assert req.state == "draft"
    other.click("#confirm-approve")
    assert "요청을 승인했습니다" in other.inner_text("main")
    req.refresh_from_db()
    assert req.state == "sent" and req.approved_by == second
    history = other.inner_text("#history")
    assert "minji: 요청서 초안을 작성했습니다." in history
    assert "jisoo: 요청서를 승인했습니다." in history


def test_counselor_registers_on_the_center_device_no_media_leaves(
        live_server: Any, ko_context: Any, make_case: Any, tmp_path: Path) -> None:
    from anshim.erasure.models import BankEntry, Fingerprint, FingerprintKind

    case = make_case()
    counselor = _user("hana", "counselor")
    image = tmp_path / "benign.png"
    image.write_bytes(picture_bytes(901))
    data = image.read_bytes()
    posted: list[bytes] = []
    ko_context.on("request", lambda r: posted.append(r.post_data_buffer or b"")
                  if r.method != "GET" else None)
    page = _sign_in(ko_context, live_server.url, counselor)
    posted.clear()  # the sign-in forms
    page.goto(f"{live_server.url}/staff/erasure/cases/{case.code}/register/")
    page.set_input_files("#fp-files", [str(image)])
    page.wait_for_function("() => document.querySelectorAll('#fp-list .fp-item').length === 1")
    page.check("#fp-consent")
    page.wait_for_function("() => !document.getElementById('fp-submit').disabled")
    with page.expect_response(lambda r: r.url.endswith("/register/fingerprints/")) as resp:
        page.click("#fp-submit")
    assert resp.value.status == 201, resp.value.text()
    entry = BankEntry.objects.get(case=case)
    md5 = Fingerprint.objects.get(entry=entry, kind=FingerprintKind.MD5).value
    import hashlib

    assert md5 == hashlib.md5(data).hexdigest()
    # Only the JSON of hashes left the page: no request carried the picture's bytes.
    assert len(posted) == 1
    body = json.loads(posted[0])
    assert set(body) == {"consent", "items"} and set(body["items"][0]) == {
        "kind", "md5", "pdq", "quality"}
    assert all(data[:64] not in p and len(p) < len(data) for p in posted)
    assert io.BytesIO(posted[0]).getbuffer().nbytes < 1000
