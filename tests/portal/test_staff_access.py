"""Portal access for hotline cases (issue 19 item 3): a counselor issues the case code and a
passphrase from the case page, sees it once on a printable page, may e-mail it to an address on
file when the victim agreed to that contact (real SMTP, after commit, once), and a re-issue asks
for confirmation and ends the old passphrase."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from anshim.cases import codes
from anshim.cases.models import Case, Guardian, Person, TimelineEvent
from anshim.portal import services
from anshim.portal.models import AccessRecipient, PortalAccessIssue
from anshim.security.models import AuditEntry
from erasure.workflow_support import body_text, smtp_server  # tests/erasure: aiosmtpd on loopback

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 "django.contrib.auth.hashers.Argon2PasswordHasher"]


@pytest.fixture
def hotline(make_user: Any) -> tuple[Case, Any]:
    """A case a counselor opened on the phone: no portal passphrase yet."""
    counselor = make_user("counselor")
    person = Person.objects.create(name="김하늘", age_group="14to17", contact_preference="email",
                                   email="haneul@victim.invalid")
    case = Case.objects.create(code=codes.new_unique_code(), person=person, channel="phone",
                               lead_counselor=counselor)
    return case, counselor


def _url(case: Case) -> str:
    return f"/staff/cases/{case.code}/portal-passphrase/"


def _sign_in(case: Case, passphrase: str) -> int:
    return Client().post("/status/sign-in/", {"code": case.code, "passphrase": passphrase}
                         ).status_code


def test_counselor_issues_access_for_a_hotline_case_printable_once(
        hotline: tuple[Case, Any], login_client: Any) -> None:
    case, counselor = hotline
    staff = login_client(counselor, Client())
    detail = staff.get(f"/staff/cases/{case.code}/").content.decode()
    assert 'id="portal-access-link"' in detail
    confirm = staff.get(_url(case))
    assert confirm.status_code == 200 and "no-store" in confirm["Cache-Control"]
    assert 'name="confirm_reissue"' not in confirm.content.decode()  # nothing to replace yet
    key = confirm.context["key"]
    with CaptureQueriesContext(connection) as queries:
        page = staff.post(_url(case), {"key": key, "email_to": ""})
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    assert len(queries) < 40
    issued = page.context["issued"]
    html = page.content.decode()
    assert issued.passphrase in html and case.code in html and "/status/sign-in/" in html
    assert "staff-access.css" in html  # the print style sheet: only the sheet is printed
    case.refresh_from_db()
    assert issued.passphrase not in case.portal_passphrase_hash
    assert _sign_in(case, issued.passphrase) == 302
    issue = PortalAccessIssue.objects.get(case=case)
    assert issue.issued_by == counselor and issue.recipient == AccessRecipient.NONE
    assert AuditEntry.objects.filter(action=services.AUDIT_PASSPHRASE_ISSUED, case_id=case.pk,
                                     actor_id=counselor.pk).count() == 1
    assert TimelineEvent.objects.filter(case=case, kind="portal.passphrase_issued").count() == 1
    # The same form again (a double click, a reload): nothing new, nothing shown again.
    again = staff.post(_url(case), {"key": key, "email_to": "", "confirm_reissue": "1"})
    assert again.status_code == 200 and again.context["issued"].passphrase is None
    assert issued.passphrase not in again.content.decode()
    assert PortalAccessIssue.objects.filter(case=case).count() == 1
    assert _sign_in(case, issued.passphrase) == 302


def test_reissue_needs_confirmation_and_ends_the_old_passphrase(
        hotline: tuple[Case, Any], login_client: Any) -> None:
    case, counselor = hotline
    first = services.issue_passphrase(counselor, case, idempotency_key="k" * 20)
    staff = login_client(counselor, Client())
    confirm = staff.get(_url(case))
    assert 'name="confirm_reissue"' in confirm.content.decode()
    key = confirm.context["key"]
    refused = staff.post(_url(case), {"key": key})
    assert refused.status_code == 400 and "access-error" in refused.content.decode()
    case.refresh_from_db()
    assert _sign_in(case, first.passphrase or "") == 302  # nothing changed
    page = staff.post(_url(case), {"key": key, "confirm_reissue": "1"})
    new = page.context["issued"].passphrase
    assert page.context["issued"].reissued and new != first.passphrase
    assert _sign_in(case, first.passphrase or "") == 400
    assert _sign_in(case, new) == 302


def test_only_the_cases_counselors_may_issue(hotline: tuple[Case, Any], make_user: Any,
                                             login_client: Any) -> None:
    case, _ = hotline
    for role in ("counselor", "erasure", "expert", "prevention"):
        other = login_client(make_user(role), Client())
        assert other.get(_url(case)).status_code == 403
        assert other.post(_url(case), {"key": "x" * 24}).status_code == 403
    assert not PortalAccessIssue.objects.exists()


def test_bad_input_is_a_clear_error(hotline: tuple[Case, Any], login_client: Any) -> None:
    case, counselor = hotline
    staff = login_client(counselor, Client())
    assert staff.post(_url(case), {"key": "short"}).status_code == 400
    refused = staff.post(_url(case), {"key": "k" * 24, "email_to": "guardian:99999"})
    assert refused.status_code == 400 and "access-error" in refused.content.decode()
    case.refresh_from_db()
    assert case.portal_passphrase_hash == "" and not PortalAccessIssue.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_emailed_once_over_real_smtp_after_commit(
        hotline: tuple[Case, Any], login_client: Any, settings: Any,
        flushable_audit_log: Any) -> None:
    case, counselor = hotline
    settings.ANSHIM_CENTER_PHONE = "02-815-0382"
    with smtp_server() as (inbox, mailers):
        settings.MAILERS = mailers
        staff = login_client(counselor, Client())
        confirm = staff.get(_url(case))
        assert [a.key for a in confirm.context["addresses"]] == ["victim"]
        page = staff.post(_url(case), {"key": confirm.context["key"], "email_to": "victim"})
        issued = page.context["issued"]
        assert issued.emailed and 'id="access-emailed"' in page.content.decode()
        staff.post(_url(case), {"key": confirm.context["key"], "email_to": "victim"})
    [mail] = inbox.messages
    assert mail["X-Envelope-To"] == "haneul@victim.invalid"
    text = body_text(mail)
    assert issued.passphrase in text and case.code in text and "/status/sign-in/" in text
    assert "02-815-0382" in text
    assert AuditEntry.objects.filter(action=services.AUDIT_PASSPHRASE_EMAILED,
                                     case_id=case.pk).count() == 1


def test_email_only_where_the_victim_agreed(hotline: tuple[Case, Any]) -> None:
    case, counselor = hotline
    Guardian.objects.create(person=case.person, name="보호자", email="parent@family.invalid",
                            is_legal_guardian=True)
    Guardian.objects.create(person=case.person, name="이웃", email="nb@family.invalid",
                            is_legal_guardian=False)
    keys = [a.key for a in services.access_addresses(case)]
    assert keys[0] == "victim" and len(keys) == 2 and keys[1].startswith("guardian:")
    case.person.contact_preference = "portal"  # not e-mail: only the legal guardian's address
    case.person.save()
    assert [a.key for a in services.access_addresses(case)] == keys[1:]
    case.person.contact_preference = "none"
    case.person.save()
    assert services.access_addresses(case) == []
    with pytest.raises(services.ValidationError):
        services.issue_passphrase(counselor, case, idempotency_key="k" * 20, email_to="victim")


@pytest.mark.django_db(transaction=True)
def test_a_failed_email_is_said_and_the_passphrase_still_shown(
        hotline: tuple[Case, Any], login_client: Any, settings: Any,
        flushable_audit_log: Any) -> None:
    from erasure.workflow_support import free_port

    case, counselor = hotline
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                                    "OPTIONS": {"host": "127.0.0.1", "port": free_port(),
                                                "timeout": 2}}}
    staff = login_client(counselor, Client())
    page = staff.post(_url(case), {"key": "f" * 24, "email_to": "victim"})
    assert page.status_code == 200 and 'id="access-not-emailed"' in page.content.decode()
    issue = PortalAccessIssue.objects.get(case=case)
    assert issue.emailed_at is None and issue.email_error
    assert _sign_in(case, page.context["issued"].passphrase) == 302


@pytest.mark.django_db(transaction=True)
def test_two_sends_of_one_form_issue_one_passphrase(hotline: tuple[Case, Any],
                                                    flushable_audit_log: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks across threads need PostgreSQL")
    case, counselor = hotline
    results: list[Any] = []

    def send() -> None:
        try:
            results.append(services.issue_passphrase(counselor, case, idempotency_key="d" * 24))
        except Exception as exc:  # the unique key may refuse the loser instead
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert PortalAccessIssue.objects.filter(case=case).count() == 1
    shown = [r.passphrase for r in results if isinstance(r, services.IssuedAccess) and
             r.passphrase]
    assert len(shown) == 1
    case.refresh_from_db()
    assert _sign_in(case, shown[0]) == 302


class _Gateway:
    """A local HTTP SMS gateway: records each POST; answers `status`."""

    def __init__(self, status: int = 202) -> None:
        import http.server
        import json

        self.received: list[dict[str, Any]] = []
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                gateway.received.append({"path": self.path, "json": json.loads(body),
                                         "auth": self.headers.get("Authorization"),
                                         "key": self.headers.get("Idempotency-Key")})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Gateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.django_db(transaction=True)
def test_texted_once_through_a_real_http_sms_gateway(
        hotline: tuple[Case, Any], login_client: Any, settings: Any,
        flushable_audit_log: Any) -> None:
    case, counselor = hotline
    case.person.contact_preference = "sms"
    case.person.phone = "010-1234-5678"
    case.person.save()
    staff = login_client(counselor, Client())
    # No gateway configured: texting is not offered at all.
    assert [a.key for a in staff.get(_url(case)).context["addresses"]] == []
    with _Gateway() as gateway:
        settings.ANSHIM_SMS_GATEWAY_URL = gateway.url
        settings.ANSHIM_SMS_GATEWAY_TOKEN = "gw-token"
        confirm = staff.get(_url(case))
        assert [a.key for a in confirm.context["addresses"]] == ["sms"]
        page = staff.post(_url(case), {"key": confirm.context["key"], "email_to": "sms"})
        issued = page.context["issued"]
        assert issued.emailed and 'id="access-emailed"' in page.content.decode()
        staff.post(_url(case), {"key": confirm.context["key"], "email_to": "sms"})  # resent form
    [sent] = gateway.received
    assert sent["json"]["to"] == "010-1234-5678" and sent["auth"] == "Bearer gw-token"
    assert issued.passphrase in sent["json"]["text"] and case.code in sent["json"]["text"]
    assert sent["key"] and sent["key"].startswith("portal-access-")
    assert AuditEntry.objects.filter(action=services.AUDIT_PASSPHRASE_TEXTED,
                                     case_id=case.pk).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_gateway_refusal_is_said(hotline: tuple[Case, Any], login_client: Any,
                                   settings: Any, flushable_audit_log: Any) -> None:
    case, counselor = hotline
    case.person.contact_preference = "sms"
    case.person.phone = "010-1234-5678"
    case.person.save()
    with _Gateway(status=500) as gateway:
        settings.ANSHIM_SMS_GATEWAY_URL = gateway.url
        page = login_client(counselor, Client()).post(
            _url(case), {"key": "s" * 24, "email_to": "sms"})
    assert len(gateway.received) == 1
    assert page.status_code == 200 and 'id="access-not-emailed"' in page.content.decode()
    assert PortalAccessIssue.objects.get(case=case).email_error == "SmsError"
    assert _sign_in(case, page.context["issued"].passphrase) == 302
