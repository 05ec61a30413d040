"""axe-core on every portal page, in Korean and English: no serious or critical violation.

axe-core comes from npm, pinned in tests/portal/axe/package.json (`npm ci --prefix
tests/portal/axe`). It is injected into the page by the test (CSP bypassed for that only).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE_JS = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR = Path(
    os.environ.get("ANSHIM_CONFORMANCE_DIR", REPO_ROOT.parent / "shared" / "conformance")
)
IMAGE = CONFORMANCE_DIR / "pdq" / "bridge-mods" / "square-256x256.jpg"


@pytest.fixture
def axe_page(chromium_browser):
    if not AXE_JS.is_file():
        pytest.skip(f"axe-core not installed: run `npm ci --prefix tests/portal/axe` ({AXE_JS})")
    context = chromium_browser.new_context(bypass_csp=True, locale="ko-KR")
    context.route(lambda url: url.startswith("https://"), lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    assert result["testEngine"]["name"] == "axe-core" and result["passes"]
    for v in result["violations"]:  # minor and moderate ones are shown with -s, not failed
        if v["impact"] not in BLOCKING:
            print(f"axe {v['impact']}: {v['id']} on {page.url}")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> "
        + "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


@pytest.mark.parametrize("language", ["ko", "en"])
def test_no_serious_accessibility_violation_on_any_portal_page(
    live_server, flushable_audit_log, axe_page, language
):
    page, base = axe_page, live_server.url
    found: dict[str, list[str]] = {}

    def check(name: str) -> None:
        assert page.evaluate("document.documentElement.lang") == language, name
        found[name] = violations(page)

    page.goto(base + "/")
    if language != "ko":  # the language switch itself, as a visitor uses it
        page.select_option("#lang-select", language)
        page.click("form.lang button[type=submit]")
    check("start")
    page.goto(base + "/report/")
    check("report")
    page.fill("textarea[name=urls]", "not a web address")
    page.click("form.portal-form button[type=submit]")
    check("report with errors")
    page.check("input[name=harm_types][value=distribution]")
    page.check("input[name=in_danger][value=yes]")
    page.fill("textarea[name=urls]", "")
    page.check("input[name=consent_keep_data]")
    page.click("form.portal-form button[type=submit]")
    page.wait_for_selector("#passphrase")
    check("report done")
    code, passphrase = page.inner_text("#case-code"), page.inner_text("#passphrase")
    page.goto(base + "/status/fingerprint/")
    check("fingerprint")
    if IMAGE.is_file():
        page.check("#fp-consent")  # the button waits for the consent box
        page.set_input_files("#fp-files", str(IMAGE))
        page.wait_for_function("() => !document.getElementById('fp-submit').disabled")
        check("fingerprint with a photo chosen")
        page.check("#fp-consent")
        # Wait for the answer: the in-memory test database does not like overlapping writes.
        with page.expect_response(lambda r: r.url.endswith("/register/")) as response:
            page.click("#fp-submit")
        assert response.value.status == 201
    page.goto(base + "/status/")
    check("status")
    page.goto(base + "/status/withdraw/")
    check("withdraw")
    page.click("footer button[type=submit]")
    page.goto(base + "/status/sign-in/")
    check("sign in")
    page.fill("input[name=code]", code)
    page.fill("input[name=passphrase]", "WRONG")
    page.click("form.portal-form button[type=submit]")
    check("sign in with error")
    page.fill("input[name=code]", code)
    page.fill("input[name=passphrase]", passphrase)
    page.click("form.portal-form button[type=submit]")
    assert page.url.endswith("/status/")

    problems = {name: v for name, v in found.items() if v}
    assert not problems, problems
    assert len(found) >= 10
