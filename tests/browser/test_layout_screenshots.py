"""Layout at a desk (1366 px) and on a phone (390 px), in Korean and in English (issue 19 item
14): the case page, the case's erasure page, a takedown notice and the victim's portal status
page. Each view is screenshotted (the path is in any failure message) and its geometry checked
in the DOM: no panel is wider inside than out, tables fit or scroll inside their own wrapper,
no table header wraps per character, the notice's legal-basis line stays in its panel, and the
page never scrolls sideways."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desk": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
LOCALES = {"ko": "ko-KR", "en": "en-US"}
PASSWORD = "a-long-test-passphrase"

# Every rule returns a list of human-readable problems (empty when the layout holds).
GEOMETRY_JS = r"""
() => {
  const problems = [];
  const name = (el) => {
    const id = el.id ? '#' + el.id : '';
    const cls = el.classList.length ? '.' + [...el.classList].join('.') : '';
    const h = el.querySelector && el.querySelector('h2, h1');
    const title = h ? ` ("${h.textContent.trim().slice(0, 30)}")` : '';
    return el.tagName.toLowerCase() + id + cls + title;
  };
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) {
    problems.push(`the page scrolls sideways: ${root.scrollWidth}px > ${root.clientWidth}px`);
  }
  const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const panels = [...document.querySelectorAll('main, .panel, section, .card')];
  for (const panel of panels) {
    if (panel.scrollWidth > panel.clientWidth + 1 && !scrolls(panel)) {
      problems.push(`${name(panel)} is wider inside (${panel.scrollWidth}px)`
                    + ` than its box (${panel.clientWidth}px)`);
    }
    const box = panel.getBoundingClientRect();
    for (const el of panel.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width <= 1 || r.height <= 1) continue;  // hidden, or visually-hidden text
      const wrap = el.closest('.table-wrap');
      if (wrap && panel.contains(wrap) && wrap !== el) continue;  // scrolls in its wrapper
      if (r.right > box.right + 1 || r.left < box.left - 1) {
        const what = (el.textContent || '').trim().slice(0, 40);
        problems.push(`${name(el)} ("${what}") spills out of ${name(panel)}:`
                      + ` [${Math.round(r.left)}, ${Math.round(r.right)}] outside`
                      + ` [${Math.round(box.left)}, ${Math.round(box.right)}]`);
        break;
      }
    }
  }
  for (const table of document.querySelectorAll('main table')) {
    const wrap = table.closest('.table-wrap');
    const parent = table.parentElement.getBoundingClientRect();
    if (wrap) {
      if (!scrolls(wrap)) problems.push(`${name(wrap)} does not scroll sideways`);
    } else if (table.getBoundingClientRect().right > parent.right + 1) {
      problems.push(`a table without a scroll wrapper is wider than its container`);
    }
  }
  for (const th of document.querySelectorAll('main th')) {
    const style = getComputedStyle(th);
    const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.5;
    const inner = th.getBoundingClientRect().height - parseFloat(style.paddingTop)
                  - parseFloat(style.paddingBottom);
    const glyph = parseFloat(style.fontSize) * 0.9;
    const text = th.textContent.trim();
    if (!text) continue;
    if (inner > 2 * line + 1) {
      problems.push(`header "${text}" takes ${Math.round(inner / line)} lines`
                    + ` (${Math.round(inner)}px)`);
    }
    // The narrowest a word may get: wider than one glyph for every word of 2+ characters.
    const range = document.createRange();
    range.selectNodeContents(th);
    const rects = [...range.getClientRects()];
    if (text.length > 1 && rects.length && Math.max(...rects.map(r => r.width)) < glyph * 1.5) {
      problems.push(`header "${text}" is set one character per line`);
    }
  }
  for (const line of document.querySelectorAll('.legal-basis, pre.notice')) {
    const panel = line.closest('.panel');
    if (!panel) { problems.push('the notice is outside a panel'); continue; }
    const r = line.getBoundingClientRect(), box = panel.getBoundingClientRect();
    if (r.right > box.right + 1 || line.scrollWidth > line.clientWidth + 1) {
      problems.push(`the notice's legal-basis line leaves its panel (${Math.round(r.right)}`
                    + ` > ${Math.round(box.right)}, ${line.scrollWidth} > ${line.clientWidth})`);
    }
  }
  return problems;
}
"""


def _current_totp(device: Any) -> str:
    from django_otp.oath import totp

    return f"{totp(device.bin_key, step=device.step, digits=device.digits):0{device.digits}d}"


@pytest.fixture
def layout_data(transactional_db: Any, settings: Any) -> dict[str, Any]:
    """A case with what makes these pages wide: many contacts with long summaries (both
    languages), a guardian, assigned staff, a reported link, a draft notice with the default
    legal basis, and portal access."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from anshim.cases.models import Case, Channel, Consent, ConsentGiver, ConsentScope, Contact
    from anshim.erasure.matcher import MatchResult
    from anshim.erasure.models import Platform, ReportedLink
    from anshim.erasure.sightings import Observation, record_sighting, review_sighting
    from anshim.erasure.takedowns import draft_requests
    from anshim.portal import services as portal
    from anshim.security.models import User

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 "django.contrib.auth.hashers.Argon2PasswordHasher"]
    # One supervisor per width: a TOTP code is accepted once, and both sign in within 30 s.
    users = {w: User.objects.create_user(username=f"layout-{w}", password=PASSWORD,
                                         role="supervisor", display_name="팀장 한솔")
             for w in WIDTHS}
    devices = {w: TOTPDevice.objects.create(user=u, name="p", confirmed=True)
               for w, u in users.items()}
    supervisor = users["desk"]
    new = portal.submit_report({
        "harm_types": ["distribution", "sextortion"], "in_danger": "no", "age_group": "14to17",
        "contact_preference": "portal", "consent_keep_data": True, "urls": []})
    case = new.case
    Case.objects.filter(pk=case.pk).update(lead_counselor=supervisor)
    now = timezone.now()
    Contact.objects.bulk_create(
        Contact(case=case, channel=Channel.PHONE, started_at=now - dt.timedelta(hours=i),
                duration_minutes=35, counselor=supervisor,
                summary=("Called back about the reuploaded picture; https://example.test/a/very"
                         "/long/path/that/would/not/wrap/anywhere/otherwise?with=parameters "
                         "피해자가 재유포된 사진에 대해 다시 연락함") * 2)
        for i in range(6))
    ReportedLink.objects.create(
        case=case, origin="staff",
        url="https://forum.example.test/threads/a-very-long-thread-name-without-breaks-" + "x" * 80)
    Consent.objects.create(case=case, scope=ConsentScope.CONTACT_PLATFORMS,
                           given_by=ConsentGiver.VICTIM, granted_at=now)
    # No legal basis of its own: the notice carries the long default one.
    Platform.objects.create(name="Domestic", domains="dom.test", contact_email="abuse@dom.test",
                            expected_response_hours=24)
    match = MatchResult(bank="victims", bank_id=1, entry_id=1, case_code=case.code,
                        distance=4, kind="pdq")
    sighting, _ = record_sighting(
        Observation("http://dom.test/p/1", "http://dom.test/p/1.jpg", http_status=200), match)
    review_sighting(sighting, confirm=True, actor=supervisor)
    [request] = draft_requests(case, actor=supervisor)
    return {"case": case, "passphrase": new.passphrase, "users": users, "devices": devices,
            "request": request}


def _check(page: Any, label: str, shots: Path) -> list[str]:
    path = shots / f"{label}.png"
    page.screenshot(path=str(path), full_page=True)
    problems = page.evaluate(GEOMETRY_JS)
    return [f"{label}: {p} (screenshot {path})" for p in problems]


@pytest.mark.parametrize("language", list(LOCALES))
def test_layout_at_desk_and_phone_widths(live_server: Any, chromium_browser: Any,
                                         layout_data: dict[str, Any], language: str,
                                         tmp_path: Path) -> None:
    from anshim.security.models import User

    case, req = layout_data["case"], layout_data["request"]
    User.objects.filter(pk__in=[u.pk for u in layout_data["users"].values()]).update(
        preferred_language=language)
    base = live_server.url
    problems: list[str] = []
    for width_name, viewport in WIDTHS.items():
        context = chromium_browser.new_context(
            locale=LOCALES[language], viewport=viewport,
            **({"is_mobile": True, "has_touch": True} if width_name == "phone" else {}))
        try:
            page = context.new_page()
            page.set_default_timeout(15_000)
            # Staff: sign in with the second factor, as a supervisor sees every panel.
            page.goto(f"{base}/staff/login/")
            page.fill("input[name=username]", layout_data["users"][width_name].username)
            page.fill("input[name=password]", PASSWORD)
            page.click("form[action='/staff/login/'] button[type=submit]")
            page.fill("input[name=token]", _current_totp(layout_data["devices"][width_name]))
            page.click("form[action='/staff/otp/'] button[type=submit] >> nth=0")
            page.wait_for_url(lambda u: "/staff/otp/" not in u and "/login/" not in u)
            page.evaluate(f"() => document.cookie = 'django_language={language}; path=/'")
            for label, url in (("case", f"/staff/cases/{case.code}/"),
                               ("erasure", f"/staff/erasure/cases/{case.code}/"),
                               ("notice", f"/staff/erasure/requests/{req.pk}/"),
                               ("case-list", "/staff/cases/")):
                page.goto(base + url)
                assert page.url == base + url, (label, page.url)  # not a sign-in page
                assert page.locator("html").get_attribute("lang") == language, (label, url)
                problems += _check(page, f"{label}-{width_name}-{language}", tmp_path)
            # The victim: a separate context with no staff session.
            victim = context.browser.new_context(
                locale=LOCALES[language], viewport=viewport,
                **({"is_mobile": True, "has_touch": True} if width_name == "phone" else {}))
            try:
                vp = victim.new_page()
                vp.set_default_timeout(15_000)
                vp.goto(f"{base}/status/sign-in/")
                vp.locator("input[name=code]").fill(case.code)
                vp.locator("input[name=passphrase]").fill(layout_data["passphrase"])
                vp.locator("main form button[type=submit]").first.click()
                vp.wait_for_url("**/status/")
                problems += _check(vp, f"portal-{width_name}-{language}", tmp_path)
            finally:
                victim.close()
        finally:
            context.close()
    assert not problems, "\n".join(problems)
