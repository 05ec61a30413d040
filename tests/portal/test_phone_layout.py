"""The portal on a phone (issue 19 item 12), in Chromium at 390 x 844 with Korean: the hotline bar
takes at most 15% of the first screen and shows the center's number from settings; the status
speaks to a young person; the register button waits for the consent box; the withdrawal page tells
registered items apart (number, day, short id) and "withdraw everything" asks first."""

from __future__ import annotations

from typing import Any

import pytest

from anshim.portal import services

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
PDQ_A = "f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22"
PDQ_B = "0a0b0c0d" + "1" * 56


@pytest.fixture
def phone(browser_context: Any) -> Any:
    page = browser_context.new_page()
    page.set_viewport_size(PHONE)
    page.set_default_timeout(30_000)
    return page


def _sign_in(page: Any, base: str, code: str, passphrase: str) -> None:
    page.goto(base + "/status/sign-in/")
    page.fill("input[name=code]", code)
    page.fill("input[name=passphrase]", passphrase)
    page.click("form.portal-form button[type=submit]")
    assert page.url.endswith("/status/")


@pytest.mark.parametrize("path", ["/", "/report/", "/status/sign-in/"])
def test_hotline_bar_is_small_on_a_phone_and_has_the_centers_number(
        live_server: Any, phone: Any, settings: Any, path: str) -> None:
    settings.ANSHIM_CENTER_PHONE = "02-815-0382"
    phone.goto(live_server.url + path)
    bar = phone.locator("nav.emergency").bounding_box()
    assert bar is not None and bar["height"] <= 0.15 * PHONE["height"], bar
    # Every number stays reachable (a tap target each), the center's from settings.
    links = phone.locator("nav.emergency a")
    assert links.count() == 4
    assert phone.locator("nav.emergency a[href='tel:02-815-0382']").count() == 1
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        assert box is not None and box["height"] >= 44
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_no_placeholder_number_when_the_center_has_none(
        live_server: Any, phone: Any, settings: Any) -> None:
    settings.ANSHIM_CENTER_PHONE = ""
    phone.goto(live_server.url + "/")
    hrefs = phone.locator("nav.emergency a").evaluate_all("links => links.map(a => a.href)")
    assert hrefs == ["tel:112", "tel:117", "tel:1366"]


def test_status_consent_and_withdraw_on_a_phone(
        live_server: Any, phone: Any, flushable_audit_log: Any, tmp_path: Any) -> None:
    from PIL import Image, ImageDraw

    picture = tmp_path / "drawing.png"  # a benign generated picture
    img = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(img).ellipse((10, 10, 80, 70), fill="navy")
    img.save(picture)
    new = services.submit_report({
        "harm_types": ["distribution"], "in_danger": "no", "age_group": "14to17",
        "contact_preference": "portal", "consent_keep_data": True, "urls": []})
    base = live_server.url
    _sign_in(phone, base, new.case.code, new.passphrase)
    status = phone.inner_text("main")
    assert "분류 완료" not in status and "상담사" in status

    phone.goto(base + "/status/fingerprint/")
    phone.set_input_files("#fp-files", [str(picture)])
    phone.wait_for_function("() => document.getElementById('fp-progress').value === 100")
    assert phone.locator("#fp-submit").is_disabled()  # a photo is ready, the box is not ticked
    assert "ID " in phone.inner_text("#fp-list")  # the short id the withdrawal page shows too
    phone.check("#fp-consent")
    assert phone.locator("#fp-submit").is_enabled()

    # Two photos registered the same day: told apart by number and short id.
    services.register_from_device(new.case, {"consent": True, "items": [
        {"kind": "image", "md5": "a" * 32, "pdq": PDQ_A, "quality": 90},
        {"kind": "image", "md5": "b" * 32, "pdq": PDQ_B, "quality": 90}]})
    phone.goto(base + "/status/withdraw/")
    labels = phone.locator("input[name=entry] + label").all_inner_texts()
    assert len(labels) == 2
    assert "사진 1" in labels[0] and "F8F8F0CC" in labels[0]
    assert "사진 2" in labels[1] and "0A0B0C0D" in labels[1]
    phone.click("#withdraw-everything")
    assert phone.locator("#confirm-everything").is_visible()
    assert len(services.entries_for(new.case)) == 2  # nothing withdrawn before the yes
    phone.click("#withdraw-everything-confirm")
    assert phone.locator("#no-entries").is_visible()
