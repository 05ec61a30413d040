"""A counselor takes a hotline call: log in with password and TOTP, fill in the intake form,
and land on a triaged case whose risk and reasons are shown."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _current_totp(device: Any) -> str:
    from django_otp.oath import totp

    return f"{totp(device.bin_key, step=device.step, digits=device.digits):0{device.digits}d}"


def test_hotline_intake_from_login_to_triaged_case(live_server: Any, en_page: Any) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from anshim.cases.models import Case, RiskLevel
    from anshim.security.models import User

    user = User.objects.create_user(
        username="hana", password="a-long-test-passphrase", role="counselor", display_name="Hana"
    )
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    page = en_page

    page.goto(f"{live_server.url}/staff/login/")
    page.get_by_label("Username").fill("hana")
    page.get_by_label("Password").fill("a-long-test-passphrase")
    page.get_by_role("button", name="Sign in").click()

    page.get_by_label("6-digit code from your authenticator app").fill(_current_totp(device))
    page.get_by_role("button", name="Confirm").click()

    page.goto(f"{live_server.url}/staff/cases/new/")
    page.get_by_label("Channel").select_option("phone")
    page.get_by_label("Sextortion", exact=True).check()
    page.get_by_label("Age group").select_option("14to17")
    page.get_by_label("Threat of spreading images, or sextortion under way").check()
    page.get_by_label("Summary").fill("Caller is being threatened with the release of a video.")
    page.get_by_label("Keep case data").first.check()
    page.get_by_role("button", name="Create case").click()

    page.wait_for_url("**/staff/cases/AN-*/")
    case = Case.objects.get()
    assert case.risk_level == RiskLevel.URGENT
    assert case.response_due is not None
    body = page.locator("main").inner_text()
    assert case.code in body
    assert "Urgent" in body
    assert "Sextortion" in body  # the reason is shown with the level
