"""A victim writes from the portal on a phone, the counselor sees it in the inbox, replies from
the case page, and the victim reads the reply (issue 16, item 1)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
         "is_mobile": True, "has_touch": True}
VICTIM_TEXT = "Someone posted my photo in a group chat. Please help."
REPLY_TEXT = "I am your counselor. We have asked the site to remove it; you are not alone."


def _current_totp(device: Any) -> str:
    from django_otp.oath import totp

    return f"{totp(device.bin_key, step=device.step, digits=device.digits):0{device.digits}d}"


def _fits_the_screen(page: Any) -> bool:
    return bool(page.evaluate(
        "() => document.documentElement.scrollWidth <= window.innerWidth"))


def test_victim_message_reply_round_trip_on_a_phone(live_server: Any,
                                                    chromium_browser: Any) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from anshim.cases.models import Case
    from anshim.portal import services
    from anshim.portal.models import PortalMessage
    from anshim.security.models import User

    counselor = User.objects.create_user(
        username="mina", password="a-long-test-passphrase", role="counselor",
        display_name="Mina", preferred_language="en")
    device = TOTPDevice.objects.create(user=counselor, name="phone", confirmed=True)
    new = services.submit_report({
        "harm_types": ["distribution"], "in_danger": "no", "age_group": "14to17",
        "contact_preference": "portal", "consent_keep_data": True, "urls": []})
    Case.objects.filter(pk=new.case.pk).update(lead_counselor=counselor)  # a supervisor did

    phone = chromium_browser.new_context(locale="en-US", **PHONE)
    desk = chromium_browser.new_context(locale="en-US")
    try:
        victim = phone.new_page()
        victim.set_default_timeout(15_000)
        base = live_server.url

        # The victim signs in on the phone and writes to the counselor.
        victim.goto(f"{base}/status/sign-in/")
        victim.get_by_label("Case code").fill(new.case.code)
        victim.get_by_label("Passphrase").fill(new.passphrase)
        victim.get_by_role("button", name="Open my case").click()
        victim.wait_for_url("**/status/")
        victim.get_by_label("Message to your counselor").fill(VICTIM_TEXT)
        victim.get_by_role("button", name="Send message").click()
        victim.wait_for_url("**/status/")
        assert "Your message was sent to your counselor." in victim.inner_text("body")
        assert _fits_the_screen(victim)

        # The counselor signs in, finds the case in the inbox and replies from the case page.
        staff = desk.new_page()
        staff.set_default_timeout(15_000)
        staff.goto(f"{base}/staff/login/")
        staff.get_by_label("Username").fill("mina")
        staff.get_by_label("Password").fill("a-long-test-passphrase")
        staff.get_by_role("button", name="Sign in").click()
        staff.get_by_label("6-digit code from your authenticator app").fill(
            _current_totp(device))
        staff.get_by_role("button", name="Confirm").click()
        staff.get_by_role("link", name="Victim messages").first.click()
        staff.wait_for_url("**/staff/cases/inbox/")
        inbox = staff.inner_text("main")
        assert new.case.code in inbox and VICTIM_TEXT not in inbox
        staff.get_by_role("link", name=new.case.code).first.click()
        thread = staff.locator("#messages")
        assert VICTIM_TEXT in thread.inner_text()
        staff.get_by_label("Reply to the victim").fill(REPLY_TEXT)
        staff.get_by_role("button", name="Send reply").click()
        staff.wait_for_url(f"**/staff/cases/{new.case.code}/#messages")
        assert REPLY_TEXT in staff.locator("#messages").inner_text()
        assert "No victim is waiting for an answer." in (
            staff.goto(f"{base}/staff/cases/inbox/") and staff.inner_text("main"))

        # The victim reads the reply on the phone.
        victim.goto(f"{base}/status/")
        messages = victim.locator("#messages-title + ul").inner_text()
        assert VICTIM_TEXT in messages and REPLY_TEXT in messages
        assert "Your counselor" in messages
        assert _fits_the_screen(victim)
        reply = PortalMessage.objects.get(case=new.case, from_victim=False)
        assert reply.author == counselor and reply.read_at is not None
    finally:
        phone.close()
        desk.close()
