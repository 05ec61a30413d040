"""Staff sign-in: password, TOTP, enrolment, lockout, session expiry, redirects, headers."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from anshim.security.models import AuditEntry

pytestmark = pytest.mark.django_db

LANDING = "/staff/cases/"
PASSWORD = "correct-horse-battery-staple"  # tests/conftest.py make_user


def code_for(device: TOTPDevice, offset_steps: int = 0) -> str:
    """The current code of `device`, computed from its key as an authenticator app would."""
    t = totp(device.bin_key, device.step, device.t0, device.digits, device.drift + offset_steps)
    return f"{t:0{device.digits}d}"


@pytest.fixture
def counselor(make_user: Any) -> Any:
    return make_user("counselor", username="kim")


@pytest.fixture
def device(counselor: Any) -> TOTPDevice:
    return TOTPDevice.objects.create(user=counselor, name="phone", confirmed=True)


def sign_in(client: Client, username: str = "kim", password: str = PASSWORD,
            next_url: str | None = None) -> Any:
    data = {"username": username, "password": password}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/staff/login/", data)


def actions() -> list[str]:
    return list(AuditEntry.objects.order_by("seq").values_list("action", flat=True))


def test_login_page_renders_in_korean_by_default(client: Client) -> None:
    response = client.get("/staff/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="ko">' in html
    assert "로그인" in html


def test_login_page_in_english(client: Client) -> None:
    response = client.get("/staff/login/", headers={"accept-language": "en"})
    assert "Staff sign-in" in response.content.decode()


def test_full_login_with_totp(client: Client, device: TOTPDevice) -> None:
    response = sign_in(client)
    assert response.status_code == 302 and response["Location"] == "/staff/otp/"
    # Password alone does not open staff pages.
    assert client.get("/staff/")["Location"] == "/staff/otp/"
    response = client.post("/staff/otp/", {"token": code_for(device)})
    assert response.status_code == 302 and response["Location"] == LANDING
    assert client.get("/staff/")["Location"] == LANDING
    assert actions() == ["auth.login", "auth.otp"]


def test_wrong_password_is_refused_and_audited(client: Client, device: TOTPDevice) -> None:
    response = sign_in(client, password="wrong-password-123")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    entry = AuditEntry.objects.get()
    assert entry.action == "auth.login_failed"
    assert entry.actor_id is None and entry.actor_username == "kim"
    assert "wrong-password-123" not in str(entry.__dict__)


def test_password_is_never_audited(client: Client, device: TOTPDevice) -> None:
    sign_in(client)
    sign_in(Client(), password="another-secret-pw")
    for entry in AuditEntry.objects.all():
        text = str(entry.__dict__)
        assert PASSWORD not in text and "another-secret-pw" not in text


def test_wrong_totp_code_is_refused(client: Client, device: TOTPDevice) -> None:
    sign_in(client)
    good = code_for(device)
    bad = f"{(int(good) + 1) % 10**6:06d}"
    response = client.post("/staff/otp/", {"token": bad})
    assert response.status_code == 200
    assert client.get("/staff/")["Location"] == "/staff/otp/"
    assert actions()[-1] == "auth.otp_failed"


@pytest.mark.parametrize("token", ["", "12", "abcdef", "1234567"])
def test_malformed_totp_code_gives_a_form_error(client: Client, device: TOTPDevice,
                                                token: str) -> None:
    sign_in(client)
    response = client.post("/staff/otp/", {"token": token})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()


def test_repeated_wrong_codes_are_throttled(client: Client, device: TOTPDevice) -> None:
    sign_in(client)
    for _ in range(3):
        client.post("/staff/otp/", {"token": "000000" if code_for(device) != "000000"
                                    else "111111"})
    # Even the right code is refused while the device is throttled.
    response = client.post("/staff/otp/", {"token": code_for(device)})
    assert response.status_code == 200
    assert client.get("/staff/")["Location"] == "/staff/otp/"


def test_otp_pages_need_the_password_step(client: Client) -> None:
    assert client.get("/staff/otp/")["Location"] == "/staff/login/"
    assert client.get("/staff/otp/setup/")["Location"] == "/staff/login/"


def test_enrolment_shows_qr_and_confirms_with_first_code(client: Client, counselor: Any) -> None:
    response = sign_in(client)
    assert response["Location"] == "/staff/otp/setup/"
    page = client.get("/staff/otp/setup/")
    html = page.content.decode()
    assert "<svg" in html and 'role="img"' in html
    assert "style=" not in html  # CSP: no inline styles
    device = TOTPDevice.objects.get(user=counselor)
    assert not device.confirmed
    secret = re.search(r'<code class="otp-secret">([A-Z2-7 ]+)</code>', html)
    assert secret is not None
    # Reloading the page keeps the same secret.
    assert secret.group(1) in client.get("/staff/otp/setup/").content.decode()
    response = client.post("/staff/otp/setup/", {"token": code_for(device)})
    # Enrolled: the backup codes, once, then on to the landing page.
    assert response.status_code == 200
    page = response.content.decode()
    codes = re.findall(r"<li><code>([a-z2-9]{10})</code></li>", page)
    assert len(codes) == 10 and f'href="{LANDING}"' in page
    device.refresh_from_db()
    assert device.confirmed
    assert "auth.otp_enrolled" in actions() and "auth.backup_codes_issued" in actions()
    assert client.get("/staff/")["Location"] == LANDING


def test_enrolment_refuses_wrong_code(client: Client, counselor: Any) -> None:
    sign_in(client)
    client.get("/staff/otp/setup/")
    device = TOTPDevice.objects.get(user=counselor)
    wrong = f"{(int(code_for(device)) + 5) % 10**6:06d}"
    response = client.post("/staff/otp/setup/", {"token": wrong})
    assert response.status_code == 200
    device.refresh_from_db()
    assert not device.confirmed


def test_enrolled_user_cannot_enrol_another_device(client: Client, device: TOTPDevice) -> None:
    sign_in(client)
    assert client.get("/staff/otp/setup/")["Location"] == "/staff/otp/"


def test_lockout_after_failure_limit(client: Client, device: TOTPDevice, settings: Any) -> None:
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert sign_in(client, password="nope-nope-nope").status_code == 200
    response = sign_in(client, password="nope-nope-nope")
    assert response.status_code == 429
    html = response.content.decode()
    assert "15" in html
    # Even the right password is refused now.
    response = sign_in(client)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert actions().count("auth.lockout") >= 1
    assert actions().count("auth.login_failed") == limit - 1


def test_lockout_page_in_english(client: Client, device: TOTPDevice, settings: Any) -> None:
    c = Client(headers={"accept-language": "en"})
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = sign_in(c, password="nope-nope-nope")
    assert response.status_code == 429
    assert "locked out for 15 minutes" in response.content.decode()


def test_logout_is_post_only_and_audited(client: Client, counselor: Any,
                                         login_client: Any) -> None:
    login_client(counselor)
    assert client.get("/staff/logout/").status_code == 405
    response = client.post("/staff/logout/")
    assert response["Location"] == "/staff/login/"
    assert "_auth_user_id" not in client.session
    assert actions() == ["auth.logout"]


def test_staff_home_needs_login(client: Client) -> None:
    response = client.get("/staff/")
    assert response.status_code == 302
    assert response["Location"].startswith("/staff/login/?next=/staff/")


def test_session_expires(client: Client, counselor: Any, login_client: Any,
                         settings: Any) -> None:
    assert settings.SESSION_COOKIE_AGE == 1800 and settings.SESSION_SAVE_EVERY_REQUEST
    login_client(counselor)
    assert client.get("/staff/")["Location"] == LANDING
    # 31 idle minutes later the session is gone.
    Session.objects.update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    response = client.get("/staff/")
    assert response["Location"].startswith("/staff/login/")


def test_activity_extends_the_session(client: Client, counselor: Any, login_client: Any) -> None:
    login_client(counselor)
    Session.objects.update(expire_date=timezone.now() + dt.timedelta(seconds=30))
    client.get("/staff/")
    expiry = Session.objects.get().expire_date
    assert expiry > timezone.now() + dt.timedelta(minutes=29)


def test_short_session_cookie_age(client: Client, counselor: Any, login_client: Any,
                                  settings: Any) -> None:
    settings.SESSION_COOKIE_AGE = 1
    login_client(counselor)
    session = Session.objects.get()
    assert session.expire_date <= timezone.now() + dt.timedelta(seconds=2)


@pytest.mark.parametrize("next_url", ["/staff/experts/", "/staff/cases/?q=1"])
def test_next_is_followed_when_local(client: Client, device: TOTPDevice, next_url: str) -> None:
    sign_in(client, next_url=next_url)
    response = client.post("/staff/otp/", {"token": code_for(device)})
    assert response["Location"] == next_url


@pytest.mark.parametrize("next_url", [
    "https://evil.example/", "//evil.example/", "/\\evil.example", "\\\\evil.example",
    "javascript:alert(1)", "http://testserver.evil.example/", "evil.example",
])
def test_next_open_redirect_is_refused(client: Client, device: TOTPDevice,
                                       next_url: str) -> None:
    sign_in(client, next_url=next_url)
    response = client.post("/staff/otp/", {"token": code_for(device)})
    assert response["Location"] == LANDING


def test_next_from_query_string(client: Client, device: TOTPDevice) -> None:
    page = client.get("/staff/login/?next=//evil.example/")
    assert f'name="next" value="{LANDING}"' in page.content.decode()
    page = client.get("/staff/login/?next=/staff/experts/")
    assert 'value="/staff/experts/"' in page.content.decode()


def test_without_otp_requirement_password_is_enough(client: Client, counselor: Any,
                                                    settings: Any) -> None:
    settings.ANSHIM_REQUIRE_OTP = False
    response = sign_in(client)
    assert response["Location"] == LANDING


def test_inactive_user_cannot_sign_in(client: Client, counselor: Any) -> None:
    counselor.is_active = False
    counselor.save()
    response = sign_in(client)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_security_headers(client: Client) -> None:
    response = client.get("/staff/login/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]


def test_pages_have_no_inline_script_or_style(client: Client, counselor: Any) -> None:
    for url in ["/staff/login/"]:
        html = client.get(url).content.decode()
        assert "<script" not in html and "<style" not in html and "style=" not in html
    sign_in(client)
    html = client.get("/staff/otp/setup/").content.decode()
    assert "<script" not in html and "<style" not in html


def test_navigation_only_when_fully_signed_in(client: Client, device: TOTPDevice) -> None:
    sign_in(client)
    html = client.get("/staff/otp/").content.decode()
    assert 'class="nav"' not in html


def test_backup_codes_from_enrolment_work_once_and_can_be_replaced(client: Client,
                                                                   counselor: Any) -> None:
    sign_in(client)
    client.get("/staff/otp/setup/")
    device = TOTPDevice.objects.get(user=counselor)
    page = client.post("/staff/otp/setup/", {"token": code_for(device)}).content.decode()
    codes = re.findall(r"<li><code>([a-z2-9]{10})</code></li>", page)
    other = Client()
    sign_in(other)
    assert other.post("/staff/otp/", {"backup_code": codes[0]})["Location"] == LANDING
    page = client.get("/staff/otp/backup-codes/").content.decode()
    assert "9" in page  # nine left
    fresh = client.post("/staff/otp/backup-codes/").content.decode()
    new_codes = re.findall(r"<li><code>([a-z2-9]{10})</code></li>", fresh)
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    third = Client()
    sign_in(third)
    assert third.post("/staff/otp/", {"backup_code": new_codes[0]})["Location"] == LANDING
    fourth = Client()
    sign_in(fourth)
    assert fourth.post("/staff/otp/", {"backup_code": codes[1]}).status_code == 200  # replaced
    assert fourth.get("/staff/")["Location"] == "/staff/otp/"
