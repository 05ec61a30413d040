"""The class survey on phone-sized Chromium (Debian's, through Playwright): 30 students answer
on 30 phones, a phone that loses the network keeps its answers and sends them once, the page
passes axe-core at 360 px in Korean and English, and the browser's expression evaluator agrees
with the server's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .test_xlsform import EXPRESSION_CASES

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE_JS = Path(__file__).resolve().parents[1] / "portal" / "axe" / "node_modules" / "axe-core" \
    / "axe.min.js"
PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True, "locale": "ko-KR"}


@pytest.fixture
def open_class(officer: Any, school: Any) -> Any:
    from anshim.prevention import services

    from .forms import kobo_style_form

    survey = services.create_survey(officer, title="", content=kobo_style_form(),
                                    filename="youth.xlsx")
    version = services.publish_version(officer, survey.versions.get())
    return services.open_class_session(officer, version, school=school, grade=8, expected=30)


def _phone(chromium_browser: Any, **extra: Any) -> Any:
    context = chromium_browser.new_context(**PHONE, **extra)
    context.route(lambda url: not url.startswith("http://localhost")
                  and not url.startswith("http://127.0.0.1"), lambda route: route.abort())
    return context


def _answer(page: Any, i: int) -> None:
    if i % 5 == 4:
        page.check("input[name=consent][value=no]")
        return
    page.check("input[name=consent][value=yes]")
    page.fill("#f-age", str(12 + i % 6))
    page.check(f"input[name=sex][value={'female' if i % 2 else 'male'}]")
    page.check("input[name=region][value=seoul]")
    # The cascading choice shows only Seoul's districts.
    assert page.is_hidden("label.choice:has(input[value=haeundae])")
    page.check("input[name=district][value=mapo]")
    page.check("input[name=apps][value=kakao]")
    if i % 3 == 0:
        page.check("input[name=contacted][value=yes]")
        page.fill("#f-when", "2026-03-02")
        page.fill("#f-story", "a stranger sent messages")
    else:
        page.check("input[name=contacted][value=no]")
        assert page.is_hidden("#f-story")  # skip logic


def test_a_class_of_30_phones_submits(live_server: Any, chromium_browser: Any,
                                      open_class: Any) -> None:
    from anshim.prevention.models import Response

    url = f"{live_server.url}/s/{open_class.short_code}/"
    for i in range(30):
        context = _phone(chromium_browser)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(url)
        assert page.evaluate("document.documentElement.lang") == "ko"
        # Skip logic before anything is answered: the groups wait for consent.
        assert page.is_hidden("fieldset[data-name=about]")
        _answer(page, i)
        page.click("#survey-form button[type=submit]")
        page.wait_for_selector("#survey-done", state="visible")
        # Nothing wider than the phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        if i == 0:  # the same phone again: already answered, nothing new is sent
            page.reload()
            page.wait_for_selector("#survey-done", state="visible")
        context.close()
    assert Response.objects.count() == 30
    declined = Response.objects.filter(answers__consent="no").count()
    assert declined == 6
    assert all(set(r.answers) == {"consent"} for r in
               Response.objects.filter(answers__consent="no"))


def test_validation_messages_in_the_browser(live_server: Any, chromium_browser: Any,
                                            open_class: Any) -> None:
    from anshim.prevention.models import Response

    context = _phone(chromium_browser)
    page = context.new_page()
    page.goto(f"{live_server.url}/s/{open_class.short_code}/")
    page.check("input[name=consent][value=yes]")
    page.fill("#f-age", "40")
    page.click("#survey-form button[type=submit]")
    assert page.is_visible("#err-age")
    assert "9~19세" in page.inner_text("#err-age")  # the form's own Korean message
    assert page.is_visible("#err-sex")  # required
    assert not Response.objects.exists()
    context.close()


def test_offline_answers_are_kept_and_sent_once(live_server: Any, chromium_browser: Any,
                                                open_class: Any) -> None:
    from anshim.prevention.models import Response

    context = _phone(chromium_browser)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/s/{open_class.short_code}/")
    _answer(page, 1)
    context.set_offline(True)
    page.click("#survey-form button[type=submit]")
    page.wait_for_function("document.getElementById('survey-status').textContent.length > 20")
    assert page.is_visible("#survey-form")
    queued = page.evaluate("JSON.parse(localStorage.getItem('anshim.survey.queue'))")
    assert len(queued) == 1 and queued[0]["answers"]["age"] == 13
    assert not Response.objects.exists()
    page.click("#survey-form button[type=submit]")  # impatient: tapped again while offline
    assert len(page.evaluate("JSON.parse(localStorage.getItem('anshim.survey.queue'))")) == 1
    context.set_offline(False)  # the browser's "online" event sends the queue
    page.wait_for_selector("#survey-done", state="visible")
    assert page.evaluate("JSON.parse(localStorage.getItem('anshim.survey.queue'))") == []
    # A resend of the same sheet (e.g. the answer to the first attempt was lost) is refused
    # as a duplicate, not stored twice.
    status = page.evaluate("""async (code) => {
        const key = localStorage.getItem('anshim.survey.key.' + code);
        const csrf = document.querySelector('input[name=csrfmiddlewaretoken]').value;
        const r = await fetch('/s/' + code + '/submit/', {method: 'POST', headers: {
            'Content-Type': 'application/json', 'X-CSRFToken': csrf},
            body: JSON.stringify({key: key, answers: {consent: 'no'}})});
        return [r.status, (await r.json()).duplicate];
    }""", open_class.short_code)
    assert status == [200, True]
    assert Response.objects.count() == 1
    context.close()


def test_help_card_sends_a_separate_request(live_server: Any, chromium_browser: Any,
                                            open_class: Any) -> None:
    from anshim.prevention.models import HelpRequest, Response

    context = _phone(chromium_browser)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/s/{open_class.short_code}/")
    _answer(page, 4)
    page.click("#survey-form button[type=submit]")
    page.wait_for_selector("#survey-done", state="visible")
    page.click("details.contact-me summary")
    page.check("input[name=contact][value=sms]")
    page.fill("#help-detail", "010-5555-6666")
    page.click("#help-form button[type=submit]")
    page.wait_for_selector("#help-sent", state="visible")
    card = HelpRequest.objects.get()
    assert card.contact_preference == "sms" and card.case is not None
    assert Response.objects.get().key_hash != card.key_hash
    context.close()


def _violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes'][:3]]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("language", ["ko", "en"])
def test_survey_pages_are_axe_clean_at_360px(live_server: Any, chromium_browser: Any,
                                            open_class: Any, language: str) -> None:
    if not AXE_JS.is_file():
        pytest.skip(f"axe-core not installed: run `npm ci --prefix tests/portal/axe` ({AXE_JS})")
    context = _phone(chromium_browser, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    base = live_server.url
    found = {}
    page.goto(f"{base}/s/{open_class.short_code}/?lang={language}")
    assert page.evaluate("document.documentElement.lang") == language
    found["form"] = _violations(page)
    page.check("input[name=consent][value=yes]")
    page.click("#survey-form button[type=submit]")  # with errors shown
    found["errors"] = _violations(page)
    _answer(page, 0)
    page.click("#survey-form button[type=submit]")
    page.wait_for_selector("#survey-done", state="visible")
    page.click("details.contact-me summary")
    found["help card"] = _violations(page)
    page.goto(f"{base}/s/")
    found["enter code"] = _violations(page)
    page.goto(f"{base}/schools/request/")
    found["booking form"] = _violations(page)
    context.close()
    assert {k: v for k, v in found.items() if v} == {}


def test_browser_expressions_agree_with_the_server(live_server: Any, chromium_browser: Any,
                                                  open_class: Any) -> None:
    context = _phone(chromium_browser)
    page = context.new_page()
    page.goto(f"{live_server.url}/s/{open_class.short_code}/")
    for text, answers, current, expected in EXPRESSION_CASES:
        got = page.evaluate("([t, a, c]) => window.AnshimSurveyExpressions.truthy(t, a, c)",
                            [text, answers, current])
        assert got is expected, text
    context.close()
