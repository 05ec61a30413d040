"""Portal messages reach staff (issue 16 item 1): the counselor's inbox, the thread on the case
page with a reply the victim reads on the status page, notifications, the overdue marker after
the response target, audited reads, and policy on every step."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from anshim.cases.models import Notification
from anshim.portal import services
from anshim.portal.models import PortalMessage
from anshim.security.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # Staff users hash fast; case passphrases stay Argon2 (they are made with it by name).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 "django.contrib.auth.hashers.Argon2PasswordHasher"]


@pytest.fixture
def client_factory() -> Any:
    from django.test import Client

    return Client


@pytest.fixture
def assigned(portal_case: Any, make_user: Any) -> tuple[Any, Any]:
    """The portal case with a lead counselor: (case, counselor)."""
    case, _ = portal_case
    counselor = make_user("counselor")
    case.lead_counselor = counselor
    case.save(update_fields=["lead_counselor"])
    return case, counselor


def test_victim_message_reaches_the_inbox_and_notifies(assigned: Any, signed_in_client: Any,
                                                       login_client: Any, make_user: Any,
                                                       client_factory: Any) -> None:
    case, counselor = assigned
    r = signed_in_client.post("/status/message/", {"body": "누가 사진을 올렸어요. 도와주세요"})
    assert r.status_code == 302
    note = Notification.objects.get(recipient=counselor)
    assert case.code in note.message and note.link.endswith("#messages")
    staff = login_client(counselor, client_factory())
    page = staff.get("/staff/cases/inbox/")
    assert page.status_code == 200
    html = page.content.decode()
    assert case.code in html and note.message in html
    assert "누가 사진을" not in html  # the inbox shows no message text
    assert AuditEntry.objects.filter(action=services.AUDIT_INBOX,
                                     actor_id=counselor.pk).exists()
    # Another counselor's inbox does not list the case; a supervisor's does.
    other = login_client(make_user("counselor"), client_factory())
    assert case.code not in other.get("/staff/cases/inbox/").content.decode()
    boss = login_client(make_user("supervisor"), client_factory())
    assert case.code in boss.get("/staff/cases/inbox/").content.decode()


def test_unassigned_case_notifies_the_supervisors(portal_case: Any, make_user: Any) -> None:
    case, _ = portal_case
    supervisor = make_user("supervisor")
    make_user("counselor")
    services.send_message(case, "hello")
    assert list(Notification.objects.values_list("recipient_id", flat=True)) == [supervisor.pk]


def test_case_page_thread_reply_and_victim_reads_it(assigned: Any, signed_in_client: Any,
                                                    login_client: Any,
                                                    client_factory: Any) -> None:
    case, counselor = assigned
    signed_in_client.post("/status/message/", {"body": "Is anyone there?"})
    staff = login_client(counselor, client_factory())
    page = staff.get(f"/staff/cases/{case.code}/")
    html = page.content.decode()
    assert "Is anyone there?" in html and 'id="messages"' in html
    msg = PortalMessage.objects.get(case=case, from_victim=True)
    assert msg.read_at is not None and msg.read_by == counselor and msg.answered_at is None
    assert AuditEntry.objects.filter(action=services.AUDIT_READ, case_id=case.pk,
                                     actor_id=counselor.pk).exists()
    key = page.context["reply_form"]["idempotency_key"].value()
    form = {"reply-body": "Yes, I am your counselor. You are safe here.",
            "reply-idempotency_key": key}
    r = staff.post(f"/staff/cases/{case.code}/messages/", form)
    assert r.status_code == 302 and r["Location"].endswith("#messages")
    # A double click stores one reply.
    assert staff.post(f"/staff/cases/{case.code}/messages/", form).status_code == 302
    replies = PortalMessage.objects.filter(case=case, from_victim=False)
    assert replies.count() == 1 and replies.get().author == counselor
    assert PortalMessage.objects.get(pk=msg.pk).answered_at is not None
    assert AuditEntry.objects.filter(action=services.AUDIT_REPLY, case_id=case.pk).count() == 1
    # Nothing waits any more.
    assert case.code not in staff.get("/staff/cases/inbox/").content.decode()
    # The victim reads the reply on the status page; staff see that it was read.
    status = signed_in_client.get("/status/").content.decode()
    assert "Yes, I am your counselor. You are safe here." in status
    assert replies.get().read_at is not None
    assert "Read by the victim" in staff.get(f"/staff/cases/{case.code}/",
                                              HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_reply_and_thread_follow_the_policy(assigned: Any, make_user: Any) -> None:
    case, _ = assigned
    services.send_message(case, "secret words")
    for role in ("erasure", "prevention", "expert", "admin"):
        with pytest.raises(PermissionDenied):
            services.reply(make_user(role), case, "hi")
    outsider = make_user("counselor")  # counselors read threads of their own cases only
    with pytest.raises(PermissionDenied):
        services.reply(outsider, case, "hi")
    assert services.staff_thread(outsider, case) is None
    assert PortalMessage.objects.get(from_victim=True).read_at is None  # not marked read
    with pytest.raises(PermissionDenied):
        services.inbox(make_user("erasure"))


def test_counselor_without_assignment_sees_no_thread_on_the_page(
        assigned: Any, make_user: Any, login_client: Any) -> None:
    case, _ = assigned
    services.send_message(case, "secret words")
    page = login_client(make_user("counselor")).get(f"/staff/cases/{case.code}/")
    assert page.status_code == 200 and "secret words" not in page.content.decode()


def test_empty_and_overlong_replies_are_refused(assigned: Any, login_client: Any) -> None:
    case, counselor = assigned
    staff = login_client(counselor)
    r = staff.post(f"/staff/cases/{case.code}/messages/", {"reply-body": "   "})
    assert r.status_code == 400
    r = staff.post(f"/staff/cases/{case.code}/messages/", {"reply-body": "x" * 2001})
    assert r.status_code == 400
    assert not PortalMessage.objects.filter(from_victim=False).exists()


def test_overdue_after_the_configurable_response_target(assigned: Any, settings: Any,
                                                        login_client: Any) -> None:
    case, counselor = assigned
    msg = services.send_message(case, "waiting")
    PortalMessage.objects.filter(pk=msg.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=25))
    [row], _ = services.inbox(counselor)
    assert row.overdue and row.waiting == 1 and row.unread == 1
    settings.ANSHIM_PORTAL_RESPONSE_HOURS = 48
    [row], _ = services.inbox(counselor)
    assert not row.overdue
    settings.ANSHIM_PORTAL_RESPONSE_HOURS = 24
    html = login_client(counselor).get("/staff/cases/inbox/",
                                       HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Overdue" in html
    page = login_client(counselor).get(f"/staff/cases/{case.code}/",
                                       HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Overdue: no answer within 24 hours" in page


def test_inbox_paginates_with_a_constant_number_of_queries(make_user: Any, login_client: Any,
                                                           settings: Any) -> None:
    from anshim.cases.codes import new_unique_code
    from anshim.cases.models import Case, Person

    supervisor = make_user("supervisor")
    client = login_client(supervisor)

    def add_cases(n: int) -> None:
        for _ in range(n):
            case = Case.objects.create(code=new_unique_code(), person=Person.objects.create(),
                                       channel="portal")
            services.send_message(case, "help")

    add_cases(2)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/staff/cases/inbox/").status_code == 200
    add_cases(services.INBOX_PAGE_SIZE)
    with CaptureQueriesContext(connection) as many:
        page = client.get("/staff/cases/inbox/")
    assert len(many) == len(few)
    assert len(page.context["rows"]) == services.INBOX_PAGE_SIZE
    assert page.context["page"].has_next()
    second = client.get("/staff/cases/inbox/?page=2")
    assert len(second.context["rows"]) == 2
    assert client.get("/staff/cases/inbox/?page=abc").status_code == 200  # first page


def test_counselor_issues_a_new_passphrase_that_ends_old_sessions(
        assigned: Any, signed_in_client: Any, login_client: Any, client_factory: Any,
        portal_case: Any) -> None:
    case, counselor = assigned
    _, old = portal_case
    assert signed_in_client.get("/status/").status_code == 200
    staff = login_client(counselor, client_factory())
    url = f"/staff/cases/{case.code}/portal-passphrase/"
    key = staff.get(url).context["key"]
    # The case has a passphrase: a new one needs the confirmation box.
    assert staff.post(url, {"key": key}).status_code == 400
    page = staff.post(url, {"key": key, "confirm_reissue": "1"})
    assert page.status_code == 200
    new = page.context["issued"].passphrase
    assert new and new in page.content.decode() and new != old
    assert AuditEntry.objects.filter(action=services.AUDIT_PASSPHRASE_ISSUED,
                                     case_id=case.pk, actor_id=counselor.pk).exists()
    # The session opened with the old passphrase has ended; the old one no longer opens it.
    assert signed_in_client.get("/status/")["Location"] == "/status/sign-in/"
    fresh = client_factory()
    assert fresh.post("/status/sign-in/", {"code": case.code, "passphrase": old}
                      ).status_code == 400
    assert fresh.post("/status/sign-in/", {"code": case.code, "passphrase": new}
                      ).status_code == 302
    # Only the case's counselors and supervisors may do this.
    from anshim.security.models import User

    other = User.objects.create_user(username="other-counselor", password="x" * 16,
                                     role="counselor")
    assert login_client(other, client_factory()).post(
        url, {"key": key, "confirm_reissue": "1"}).status_code == 403


def test_arrival_is_mailed_to_the_counselor_once_without_the_text(
        assigned: Any, settings: Any, mailoutbox: Any,
        django_capture_on_commit_callbacks: Any) -> None:
    from anshim.portal import tasks

    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    case, counselor = assigned
    counselor.email = "mina@center.invalid"
    counselor.save(update_fields=["email"])
    with django_capture_on_commit_callbacks(execute=True):
        msg = services.send_message(case, "my secret words")
    [mail] = mailoutbox
    assert mail.to == ["mina@center.invalid"] and case.code in mail.subject
    assert "my secret words" not in mail.body and f"/staff/cases/{case.code}/" in mail.body
    assert tasks.send_message_notice.call(msg.pk) == "skipped"  # never twice
    assert len(mailoutbox) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor == "sqlite", reason=(
    "the in-memory SQLite test database shares one cache between threads and answers 'table is "
    "locked' at once instead of waiting; a file database (WAL, busy timeout) serialises the two "
    "writers, and the PostgreSQL pass runs this race"))
def test_a_double_click_racing_stores_one_reply(make_user: Any) -> None:
    """Two submissions of the same reply form at once (two threads, two connections): the
    unique one-time key lets exactly one in; both get the same stored reply."""
    import threading

    from django.db import connections

    from anshim.cases.models import Case, Person

    counselor = make_user("counselor")
    case = Case.objects.create(code="AN-RACE-22", person=Person.objects.create(),
                               channel="portal", lead_counselor=counselor)
    services.send_message(case, "help")
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = services.reply(counselor, Case.objects.get(pk=case.pk), "here",
                                        idempotency_key="same-form-key")
        except Exception as exc:  # reported below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(isinstance(r, PortalMessage) for r in results), (connection.vendor, results)
    assert results[0].pk == results[1].pk
    assert PortalMessage.objects.filter(case=case, from_victim=False).count() == 1
