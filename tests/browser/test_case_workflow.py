"""The case workflow in a real browser, in the Korean UI (issue 19 item 11): the counselor asks
to close a case, confirming once more with a note; a supervisor finds the request in the
closure queue (linked from the navigation) and approves it after a confirmation."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-passphrase"


def _current_totp(device: Any) -> str:
    from django_otp.oath import totp

    return f"{totp(device.bin_key, step=device.step, digits=device.digits):0{device.digits}d}"


def _sign_in(page: Any, base: str, username: str, device: Any) -> None:
    page.goto(f"{base}/staff/login/")
    page.get_by_label("사용자 이름").fill(username)
    page.get_by_label("비밀번호").fill(PASSWORD)
    page.get_by_role("button", name="로그인").click()
    page.get_by_label("인증 앱에 표시된 6자리 코드").fill(_current_totp(device))
    page.get_by_role("button", name="확인").click()


def test_counselor_requests_closure_and_supervisor_approves(
        live_server: Any, chromium_browser: Any) -> None:
    from django.utils import timezone
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from anshim.cases import services
    from anshim.cases.models import Case, CaseStatus, StatusChange, StatusChangeKind
    from anshim.security.models import User

    counselor = User.objects.create_user(username="jiwoo", password=PASSWORD, role="counselor",
                                         display_name="지우", preferred_language="ko")
    supervisor = User.objects.create_user(username="seoyeon", password=PASSWORD,
                                          role="supervisor", display_name="서연",
                                          preferred_language="ko")
    devices = {u.pk: TOTPDevice.objects.create(user=u, name="phone", confirmed=True)
               for u in (counselor, supervisor)}
    case = services.intake(counselor, services.IntakeData(
        channel="phone", started_at=timezone.now(), harm_types=["distribution"]))
    base = live_server.url

    desk = chromium_browser.new_context(locale="ko-KR")
    office = chromium_browser.new_context(locale="ko-KR")
    try:
        page = desk.new_page()
        page.set_default_timeout(15_000)
        _sign_in(page, base, "jiwoo", devices[counselor.pk])
        page.goto(f"{base}/staff/cases/{case.code}/")
        assert page.locator("#case-status").inner_text() == "분류 완료"
        page.get_by_role("button", name="종결 요청…").click()
        # The confirmation page: nothing has happened yet.
        page.wait_for_url(f"**/staff/cases/{case.code}/status/")
        assert f"사례 {case.code}의 종결을 슈퍼바이저에게 요청할까요?" in page.inner_text("h1")
        assert Case.objects.get(pk=case.pk).status == CaseStatus.TRIAGED
        page.get_by_label("슈퍼바이저에게 남길 메모(선택)").fill(
            "상담을 마쳤고 게시물이 모두 삭제됨.")
        page.get_by_role("button", name="종결 요청", exact=True).click()
        page.wait_for_url(f"**/staff/cases/{case.code}/")
        assert page.locator("#case-status").inner_text() == "종결 승인 대기"
        assert "종결 요청됨" in page.inner_text("main")
        # The counselor has no way to close it themself.
        assert page.get_by_role("button", name="종결 승인").count() == 0

        sup = office.new_page()
        sup.set_default_timeout(15_000)
        _sign_in(sup, base, "seoyeon", devices[supervisor.pk])
        sup.get_by_role("link", name="종결 요청 목록").click()
        sup.wait_for_url("**/staff/cases/closures/")
        row = sup.locator("tr", has_text=case.code)
        assert "지우" in row.inner_text() and "상담을 마쳤고" in row.inner_text()
        row.get_by_role("button", name="종결 승인").click()
        sup.wait_for_url(f"**/staff/cases/{case.code}/closure/")
        assert f"사례({case.code})를 종결할까요?" in sup.inner_text("h1")
        sup.get_by_role("button", name="승인하고 종결").click()
        sup.wait_for_url("**/staff/cases/closures/")
        assert "대기 중인 종결 요청이 없습니다." in sup.inner_text("main")
        assert f"사례({case.code})가 종결되었습니다." in sup.inner_text("body")

        # The counselor's page shows the closed case, its timeline and the reopen choices.
        page.reload()
        assert page.locator("#case-status").inner_text() == "종결"
        timeline = page.locator(".timeline").inner_text()
        assert "종결 승인: 사례가 종결되었습니다: 종결 승인 대기 → 종결" in timeline
        assert page.get_by_role("button", name="“지원 중” 상태로 재개…").count() == 1
    finally:
        desk.close()
        office.close()
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED and case.closed_at is not None
    approved = StatusChange.objects.get(case=case, kind=StatusChangeKind.CLOSURE_APPROVED)
    assert approved.actor == supervisor
