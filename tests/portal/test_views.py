"""Portal pages through the test client: the flow, bad input (never a 500), CSRF, headers."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anshim.portal import views

pytestmark = pytest.mark.django_db

PAGES = ["/", "/report/", "/status/sign-in/"]
CASE_PAGES = ["/status/", "/status/fingerprint/", "/status/withdraw/"]
REGISTER = "/status/fingerprint/register/"
MD5 = "0123456789abcdef0123456789abcdef"
PDQ = "f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22"
VALID_REPORT = {"harm_types": ["distribution"], "in_danger": "no", "age_group": "14to17",
                "contact_preference": "portal", "consent_keep_data": "on"}


def post_report(client, data):
    token = client.get("/report/").context["token"]
    return client.post("/report/", {**data, "report_token": token})


# ------------------------------------------------------------------ pages and flow


@pytest.mark.parametrize("url", PAGES)
def test_public_pages_render_with_emergency_numbers_and_quick_exit(client, url, settings):
    settings.ANSHIM_CENTER_PHONE = "02-815-0382"  # the center's number comes from settings
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    for number in ("tel:112", "tel:117", "tel:1366", "tel:02-815-0382"):
        assert number in html
    assert 'data-quick-exit' in html and 'href="https://www.naver.com/"' in html
    assert "portal/quick-exit.js" in html
    assert "<script>" not in html and " style=" not in html  # nothing inline (CSP)


@pytest.mark.parametrize("url", CASE_PAGES)
def test_case_pages_need_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == "/status/sign-in/"


def test_register_needs_sign_in(client):
    response = client.post(REGISTER, "{}", content_type="application/json")
    assert response.status_code == 401 and response.json()["error"] == "signed_out"


def test_report_shows_code_and_passphrase_once_and_signs_in(client):
    from anshim.cases.models import Case

    response = post_report(client, VALID_REPORT)
    assert response.status_code == 200
    code, passphrase = response.context["code"], response.context["passphrase"]
    assert code in response.content.decode() and passphrase in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0") or "no-store" in response[
        "Cache-Control"]
    case = Case.objects.get(code=code)
    # Never stored in the clear, not even in the session.
    assert passphrase not in json.dumps(dict(client.session.items()))
    assert client.session[views.SESSION_CASE] == case.pk
    # A reload (the same POST again) does not open a second case or show the passphrase.
    again = client.post("/report/", {**VALID_REPORT, "report_token": "stale"})
    assert again.status_code == 302 and again["Location"] == "/status/"
    assert Case.objects.count() == 1
    assert client.get("/status/").status_code == 200


def test_report_with_a_stale_token_asks_to_send_again(client):
    response = client.post("/report/", {**VALID_REPORT, "report_token": "nope"})
    assert response.status_code == 400
    assert response.context["form"].non_field_errors()


def test_report_validation_errors_are_shown(client):
    response = post_report(client, {"harm_types": ["nope"], "urls": "javascript:alert(1)",
                                    "contact_preference": "email", "contact_detail": "x"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert {"harm_types", "urls", "contact_detail", "consent_keep_data"} <= set(errors)
    assert 'role="alert"' in response.content.decode()


def test_report_rejects_too_many_urls(client):
    urls = "\n".join(f"https://example.com/{i}" for i in range(21))
    response = post_report(client, {**VALID_REPORT, "urls": urls})
    assert response.status_code == 400 and "urls" in response.context["form"].errors


def test_status_page_shows_progress_and_accepts_messages(signed_in_client, portal_case):
    case, _ = portal_case
    response = signed_in_client.get("/status/")
    html = response.content.decode()
    assert case.code in html and 'id="progress-registered">0<' in html
    response = signed_in_client.post("/status/message/", {"body": "hello"}, follow=True)
    assert response.status_code == 200 and "hello" in response.content.decode()
    response = signed_in_client.post("/status/message/", {"body": ""}, follow=True)
    assert response.status_code == 200
    assert case.portal_messages.count() == 1


def test_portal_session_expires_when_idle(signed_in_client):
    session = signed_in_client.session
    session[views.SESSION_SEEN] = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    session.save()
    assert signed_in_client.get("/status/")["Location"] == "/status/sign-in/"


def test_sign_out(signed_in_client):
    assert signed_in_client.post("/status/sign-out/").status_code == 302
    assert signed_in_client.get("/status/").status_code == 302


def test_fingerprint_page_says_nothing_is_uploaded(signed_in_client):
    html = signed_in_client.get("/status/fingerprint/").content.decode()
    assert 'id="nothing-uploaded"' in html and 'id="fp-strings"' in html
    assert 'type="module" src="/static/portal/fingerprint-page.js"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_register_and_withdraw_through_the_pages(signed_in_client, portal_case):
    case, _ = portal_case
    body = {"consent": True, "items": [{"kind": "image", "md5": MD5, "pdq": PDQ, "quality": 99}]}
    response = signed_in_client.post(REGISTER, json.dumps(body), content_type="application/json")
    assert response.status_code == 201 and response.json()["registered"] == 1
    (entry,) = case.bank_entries.all()
    page = signed_in_client.get("/status/withdraw/").content.decode()
    assert f'value="{entry.pk}"' in page
    response = signed_in_client.post("/status/withdraw/", {"entry": [str(entry.pk)]}, follow=True)
    assert response.status_code == 200 and not case.bank_entries.exists()
    response = signed_in_client.post("/status/withdraw/", {"everything": "1", "confirmed": "1"},
                                     follow=True)
    assert response.status_code == 200
    assert not case.consents.filter(withdrawn_at__isnull=True).exists()


@pytest.mark.parametrize("entry", ["abc", "\u00b2", "\u0661", "-1", "9" * 40, "99999"])
def test_withdraw_with_bad_entry_ids_is_a_message_not_an_error(signed_in_client, entry):
    response = signed_in_client.post("/status/withdraw/", {"entry": [entry]}, follow=True)
    assert response.status_code == 200
    assert list(response.context["messages"])


# ------------------------------------------------------------------ bad input never 500


@pytest.mark.parametrize("body", [
    b"", b"not json", b"\xff\xfe", b"[]", b"null", b"42", b'"x"', b"{}",
    b'{"consent": true, "items": [{"kind": "image", "md5": 1, "pdq": [], "quality": {}}]}',
    b'{"consent": true, "items": [{"kind": "video", "md5": "' + MD5.encode()
    + b'", "frames": {}}]}',
    b'{"consent": true, "items": [' + b",".join([b"{}"] * 60) + b"]}",
    b'{"consent": true, "items": [{"kind": "image", "md5": "' + MD5.encode()
    + b'", "pdq": "' + PDQ.encode() + b'", "quality": 1e400}]}',
    b'{"consent": true, "items": [{"kind": "image", "quality": ' + b"9" * 5000 + b"}]}",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"consent": NaN, "items": Infinity}',
])
def test_register_malformed_json_is_a_4xx(signed_in_client, body):
    response = signed_in_client.post(REGISTER, body, content_type="application/json")
    assert 400 <= response.status_code < 500
    answer = response.json()
    assert answer["error"] and answer["message"]


def test_register_huge_body_is_refused_before_parsing(signed_in_client):
    body = b'{"consent": true, "items": ["' + b"a" * 3_000_000 + b'"]}'
    response = signed_in_client.post(REGISTER, body, content_type="application/json")
    assert response.status_code == 413 and response.json()["error"] == "too_large"


def test_register_wrong_method(signed_in_client):
    assert signed_in_client.get(REGISTER).status_code == 405


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=70),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["kind", "md5", "pdq", "quality", "frames", "timestamp",
                                       "items", "consent", "x"]), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=json_values)
def test_register_fuzz_never_500(signed_in_client, payload):
    body = {"consent": True, "items": [payload]} if not isinstance(payload, dict) else payload
    response = signed_in_client.post(REGISTER, json.dumps(body), content_type="application/json")
    assert response.status_code in (201, 400, 413, 422)


form_values = st.one_of(st.text(max_size=300), st.lists(st.text(max_size=30), max_size=3))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.dictionaries(
    st.sampled_from(["harm_types", "in_danger", "content_spreading", "threatened", "urls",
                     "platforms", "age_group", "summary", "contact_preference", "contact_detail",
                     "consent_keep_data", "consent_contact_platforms", "report_token"]),
    form_values, max_size=12))
def test_report_fuzz_never_500(client, data):
    data = {k: [x.replace("\x00", "") for x in v] if isinstance(v, list) else v.replace("\x00", "")
            for k, v in data.items()}
    response = post_report(client, data) if "report_token" not in data else \
        client.post("/report/", data)
    # 422: a control character in a field (refused for every form by the central check).
    assert response.status_code in (200, 302, 400, 422)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(code=st.text(max_size=40), passphrase=st.text(max_size=60))
def test_sign_in_fuzz_never_500(client, code, passphrase):
    from anshim.portal.models import AccessThrottle

    AccessThrottle.objects.all().delete()
    response = client.post("/status/sign-in/", {"code": code.replace("\x00", ""),
                                                "passphrase": passphrase.replace("\x00", "")})
    assert response.status_code in (400, 422, 429)


def test_null_bytes_in_forms_are_a_4xx(client):
    response = post_report(client, {**VALID_REPORT, "summary": "a\x00b"})
    assert response.status_code in (400, 422)
    response = client.post("/status/sign-in/", {"code": "AN-\x00", "passphrase": "x"})
    assert response.status_code in (400, 422)


# ------------------------------------------------------------------ CSRF and headers


@pytest.mark.parametrize("url", ["/report/", "/status/sign-in/", "/status/sign-out/",
                                 "/status/message/", REGISTER, "/status/withdraw/",
                                 "/i18n/setlang/"])
def test_every_post_needs_the_csrf_token(portal_case, url):
    case, passphrase = portal_case
    client = Client(enforce_csrf_checks=True)
    # Sign in properly first (with the token), so only the token decides below.
    page = client.get("/status/sign-in/")
    token = page.cookies["csrftoken"].value
    client.post("/status/sign-in/", {"code": case.code, "passphrase": passphrase,
                                     "csrfmiddlewaretoken": token})
    response = client.post(url, {"body": "x", "everything": "1"})
    assert response.status_code == 403


@pytest.mark.parametrize("url", PAGES)
def test_security_headers(client, url):
    response = client.get(url)
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'self'"
    assert "http" not in csp  # no third-party origin anywhere
    assert response["Strict-Transport-Security"].startswith("max-age=")
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_security_headers_on_case_pages_and_json(signed_in_client):
    for url in CASE_PAGES:
        response = signed_in_client.get(url)
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
        assert "no-store" in response["Cache-Control"]
    response = signed_in_client.post(REGISTER, "{}", content_type="application/json")
    assert response["Content-Type"] == "application/json"
    assert response["Referrer-Policy"] == "no-referrer"


def test_no_third_party_resources_in_any_page(signed_in_client):
    import re

    for url in [*PAGES, *CASE_PAGES]:
        html = signed_in_client.get(url).content.decode()
        for attr in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert attr.startswith(("/", "#", "tel:")) or attr == "https://www.naver.com/", attr


# ------------------------------------------------------------------ language


def test_korean_by_default_and_english_on_request(client):
    html = client.get("/").content.decode()
    assert '<html lang="ko">' in html and "빠른 나가기" in html
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    html = client.get("/").content.decode()
    assert '<html lang="en">' in html and "Quick exit" in html


def test_status_shows_the_erasure_progress(signed_in_client, portal_case):
    """Copies found, requests sent, removed and re-uploads come from the erasure workflow."""
    from django.utils import timezone

    from anshim.erasure.models import Platform, Sighting, SightingStatus, TakedownRequest

    case, _ = portal_case
    platform = Platform.objects.create(name="Progress Social", domains="social.test")
    now = timezone.now()
    common = {"platform": platform, "bank_name": "victim-portal", "case": case,
              "match_kind": "pdq", "distance": 3, "first_seen": now, "last_seen": now}
    Sighting.objects.create(page_url="https://social.test/p/1", media_url="https://social.test/1.jpg",
                            entry_id=1, status=SightingStatus.REMOVED, removed_at=now, **common)
    Sighting.objects.create(page_url="https://social.test/p/2", media_url="https://social.test/2.jpg",
                            entry_id=1, is_reupload=True, **common)
    TakedownRequest.objects.create(case=case, platform=platform, subject="s", body="b",
                                   state="sent", sent_at=now)
    page = signed_in_client.get("/status/").content.decode()
    import re

    def value(element_id):
        return re.search(rf'id="{element_id}">([^<]*)<', page).group(1).strip()

    assert value("progress-found") == "2"
    assert value("progress-requests") == "1"
    assert value("progress-removed") == "1"
    assert value("progress-reuploads") == "1"


def test_register_multipart_is_a_clear_415_never_a_500(portal_case):
    """A multipart body (as a form with a file field would send) is refused: the portal never
    accepts media. With CSRF checks on, the middleware has parsed the body already, which made
    reading it a RawPostDataException (a 500) before."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    case, passphrase = portal_case
    client = Client(enforce_csrf_checks=True)
    page = client.get("/status/sign-in/")
    token = page.cookies["csrftoken"].value
    client.post("/status/sign-in/", {"code": case.code, "passphrase": passphrase,
                                     "csrfmiddlewaretoken": token})
    client.get("/status/fingerprint/")
    token = client.cookies["csrftoken"].value
    upload = SimpleUploadedFile("photo.png", b"\x89PNG\r\n\x1a\n not really", "image/png")
    response = client.post(REGISTER, {"csrfmiddlewaretoken": token, "file": upload})
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    from anshim.erasure.models import BankEntry

    assert not BankEntry.objects.filter(case=case).exists()


@pytest.mark.parametrize("url", PAGES)
def test_no_empty_phone_link_when_the_center_has_no_number(client, url, settings):
    settings.ANSHIM_CENTER_PHONE = ""  # not configured: no placeholder, no empty tel: link
    html = client.get(url).content.decode()
    assert 'href="tel:"' not in html and "tel:112" in html
