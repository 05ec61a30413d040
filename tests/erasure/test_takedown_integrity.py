"""Takedown integrity (issues 16 and 17): consent withdrawal stops every open request and
every send checks it; notices leave after commit, once, with an idempotency key; partner API
notices are signed and retried with backoff; mark_removed is one transaction; typed notes are
encrypted and stay out of the audit rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from anshim.cases import consent as consent_rules
from anshim.cases.models import Consent, ConsentScope, TimelineEvent
from anshim.cases.services import withdraw_consent
from anshim.erasure import takedowns
from anshim.erasure.models import (
    DeliveryState,
    Sighting,
    SightingStatus,
    TakedownDelivery,
    TakedownEvent,
    TakedownRequest,
    TakedownState,
)
from anshim.erasure.sightings import mark_removed
from anshim.erasure.takedowns import (
    approve_and_send,
    record_response,
    resend_due_requests,
    run_delivery,
)
from anshim.security import signing
from anshim.security.models import AuditEntry

from .takedown_support import (
    confirmed_sighting,
    email_platform,
    give_contact_consent,
    one_draft,
    partner_platform,
    webhook_receiver,
)
from .workflow_support import smtp_server

pytestmark = pytest.mark.django_db
S = TakedownState
D = DeliveryState


@pytest.fixture(autouse=True)
def evidence_key(settings: Any, tmp_path: Path) -> None:
    settings.ANSHIM_EVIDENCE_KEY_FILE = str(tmp_path / "evidence.pem")


@pytest.fixture
def case(make_case: Any) -> Any:
    case = make_case()
    give_contact_consent(case)
    return case


@pytest.fixture
def specialist(make_user: Any) -> Any:
    return make_user("erasure")


def raw(table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table}")
        return [row[0] for row in cursor.fetchall()]


# --- issue 16 item 2: a withdrawn consent stops every request and every send ---------------


def test_withdrawing_contact_consent_stops_every_open_request(
        case: Any, specialist: Any, make_user: Any) -> None:
    email_platform()
    email_platform("Other", "other.test")
    confirmed_sighting(case, "http://dom.test/p/1", 1, specialist)
    confirmed_sighting(case, "http://other.test/p/2", 2, specialist)
    sent, draft = takedowns.draft_requests(case, actor=specialist)
    t0 = timezone.now() - dt.timedelta(days=2)
    approve_and_send(sent, actor=specialist, at=t0)
    [queued] = TakedownDelivery.objects.filter(request=sent)
    assert queued.status == D.PENDING

    withdraw_consent(make_user("supervisor"), case, ConsentScope.CONTACT_PLATFORMS)

    for req in (sent, draft):
        req.refresh_from_db()
        assert req.state == S.WITHDRAWN and req.closed_at is not None
        assert req.events.last().to_state == S.WITHDRAWN  # type: ignore[union-attr]
    stopped = TimelineEvent.objects.filter(case=case, kind="erasure.takedown_withdrawn")
    assert stopped.count() == 2
    assert {e.data["why"] for e in stopped} == {"consent_withdrawn"}
    queued.refresh_from_db()
    assert queued.status == D.CANCELLED
    # Nothing goes out afterwards: no re-notice, no delayed first notice, no new approval.
    assert resend_due_requests(now=timezone.now() + dt.timedelta(days=3)) == []
    assert run_delivery(queued.pk) == "cancelled"
    with pytest.raises(ValidationError):
        approve_and_send(draft, actor=specialist)


def test_a_guardian_withdrawing_stops_requests_of_a_child_under_14(
        make_case: Any, specialist: Any) -> None:
    from anshim.cases.models import ConsentGiver

    case = make_case(age_group="under14")
    give_contact_consent(case)
    Consent.objects.create(case=case, scope=ConsentScope.CONTACT_PLATFORMS,
                           given_by=ConsentGiver.GUARDIAN, granted_at=timezone.now())
    email_platform()
    req = one_draft(case, specialist)
    consent_rules.withdraw(case, ConsentScope.CONTACT_PLATFORMS, ConsentGiver.GUARDIAN)
    req.refresh_from_db()
    assert req.state == S.WITHDRAWN


def test_resend_checks_the_consent_itself(case: Any, specialist: Any) -> None:
    """However the consent went (here a bulk update that sends no signal), a re-send checks it
    and stops the request instead of sending."""
    email_platform()
    req = one_draft(case, specialist)
    t0 = timezone.now() - dt.timedelta(days=2)
    approve_and_send(req, actor=specialist, at=t0)
    Consent.objects.filter(case=case).update(withdrawn_at=timezone.now())
    with smtp_server() as (inbox, mailers), override_settings(MAILERS=mailers):
        assert resend_due_requests(now=t0 + dt.timedelta(hours=25)) == []
        assert run_delivery(req.deliveries.get().pk) == "cancelled"
    assert inbox.messages == []
    req.refresh_from_db()
    assert req.state == S.WITHDRAWN and req.send_count == 1


def test_the_first_send_checks_the_consent_again(case: Any, specialist: Any) -> None:
    email_platform()
    req = one_draft(case, specialist)
    approve_and_send(req, actor=specialist)
    Consent.objects.filter(case=case).update(withdrawn_at=timezone.now())
    with smtp_server() as (inbox, mailers), override_settings(MAILERS=mailers):
        assert run_delivery(req.deliveries.get().pk) == "cancelled"
    assert inbox.messages == []


# --- issue 17 item 4: after commit, once, with an idempotency key ----------------------------


def test_approval_queues_one_delivery_sent_once_with_its_key(case: Any, specialist: Any,
                                                             ) -> None:
    email_platform()
    req = one_draft(case, specialist)
    approve_and_send(req, actor=specialist)
    with pytest.raises(ValidationError) as second:  # the double click
        approve_and_send(req, actor=specialist)
    assert second.value.code == "not_draft"
    [delivery] = TakedownDelivery.objects.all()
    with smtp_server() as (inbox, mailers), override_settings(MAILERS=mailers):
        assert run_delivery(delivery.pk) == "delivered"
        assert run_delivery(delivery.pk) == "done"  # a duplicate task sends nothing
    [msg] = inbox.messages
    assert msg["X-Anshim-Idempotency-Key"] == delivery.idempotency_key
    assert delivery.idempotency_key in msg["Message-ID"]
    delivery.refresh_from_db()
    assert delivery.status == D.DELIVERED and delivery.attempts == 1


def test_delivery_waits_for_the_commit(case: Any, specialist: Any,
                                       django_capture_on_commit_callbacks: Any,
                                       settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    email_platform()
    req = one_draft(case, specialist)
    with smtp_server() as (inbox, mailers), override_settings(MAILERS=mailers):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            approve_and_send(req, actor=specialist)
            assert inbox.messages == []  # nothing leaves before the transaction commits
        assert len(callbacks) == 1
    assert len(inbox.messages) == 1


def test_a_stale_claim_is_taken_over_with_the_same_key(case: Any, specialist: Any) -> None:
    email_platform()
    req = one_draft(case, specialist)
    approve_and_send(req, actor=specialist)
    delivery = TakedownDelivery.objects.get()
    # A worker claimed it and died before recording the outcome.
    TakedownDelivery.objects.filter(pk=delivery.pk).update(
        status=D.SENDING, attempts=1, claimed_at=timezone.now() - dt.timedelta(hours=1))
    assert run_delivery(delivery.pk, now=timezone.now() - dt.timedelta(hours=1, minutes=-5)
                        ) == "sending"  # not stale yet
    assert takedowns.requeue_deliveries() == 1
    with smtp_server() as (inbox, mailers), override_settings(MAILERS=mailers):
        assert run_delivery(delivery.pk) == "delivered"
    assert inbox.messages[0]["X-Anshim-Idempotency-Key"] == delivery.idempotency_key


def test_bad_channel_is_refused_before_anything_changes(case: Any, specialist: Any) -> None:
    from anshim.erasure.models import Platform

    Platform.objects.create(name="NoMail", domains="dom.test")
    req = one_draft(case, specialist)
    with pytest.raises(ValidationError) as info:
        approve_and_send(req, actor=specialist)
    assert info.value.code == "channel"
    req.refresh_from_db()
    assert req.state == S.DRAFT and not TakedownDelivery.objects.exists()


# --- issue 16 item 8: partner API notices signed and retried --------------------------------


def test_partner_api_notices_are_signed_and_retried_with_backoff(case: Any,
                                                                 specialist: Any) -> None:
    with webhook_receiver(statuses=[503]) as hook:
        platform = partner_platform(hook.url)
        assert platform.webhook_secret  # made when the channel was set up
        req = one_draft(case, specialist, page="http://partner.test/v/1")
        approve_and_send(req, actor=specialist)
        delivery = TakedownDelivery.objects.get()
        before = timezone.now()
        assert run_delivery(delivery.pk) == "retrying"
        delivery.refresh_from_db()
        assert delivery.status == D.PENDING and delivery.last_status_code == 503
        assert delivery.next_attempt_at is not None
        assert before + dt.timedelta(seconds=55) <= delivery.next_attempt_at
        assert delivery.next_attempt_at <= timezone.now() + dt.timedelta(minutes=1, seconds=5)
        assert run_delivery(delivery.pk) == "delivered"
    assert len(hook.posts) == 2
    keys = set()
    for headers, body in hook.posts:
        assert signing.verify(platform.webhook_secret, headers[signing.TIMESTAMP_HEADER], body,
                              headers[signing.SIGNATURE_HEADER])
        assert not signing.verify("another secret", headers[signing.TIMESTAMP_HEADER], body,
                                  headers[signing.SIGNATURE_HEADER])
        keys.add(headers[takedowns.IDEMPOTENCY_HEADER])
    assert keys == {delivery.idempotency_key}  # the retry is the same notice
    assert hook.json(0)["reference"] == req.reference
    assert hook.json(0)["urls"] == ["http://partner.test/v/1"]
    assert req.events.last().note == "webhook 202"  # type: ignore[union-attr]


def test_retries_are_scheduled_through_the_task_queue(case: Any, specialist: Any) -> None:
    from django_tasks_db.models import DBTaskResult

    with webhook_receiver(statuses=[500]) as hook:
        partner_platform(hook.url)
        req = one_draft(case, specialist, page="http://partner.test/v/1")
        approve_and_send(req, actor=specialist)
        delivery = TakedownDelivery.objects.get()
        # The test's transaction never commits: run the queued work by hand, as a worker would.
        takedowns.enqueue_delivery(delivery.pk)
        assert run_delivery(delivery.pk) == "retrying"
        delivery.refresh_from_db()
        takedowns.enqueue_delivery(delivery.pk, run_after=delivery.next_attempt_at)
    queued = DBTaskResult.objects.filter(task_path="anshim.erasure.tasks.deliver_takedown")
    assert queued.count() == 2
    assert delivery.next_attempt_at in {q.run_after for q in queued}


def test_a_permanent_refusal_fails_at_once_and_says_so(case: Any, specialist: Any) -> None:
    with webhook_receiver(statuses=[400]) as hook:
        partner_platform(hook.url)
        req = one_draft(case, specialist, page="http://partner.test/v/1")
        approve_and_send(req, actor=specialist)
        assert run_delivery(TakedownDelivery.objects.get().pk) == "failed"
    assert TimelineEvent.objects.filter(case=case,
                                        kind="erasure.takedown_delivery_failed").exists()


def test_gives_up_after_the_last_attempt(case: Any, specialist: Any) -> None:
    with webhook_receiver(statuses=[503] * takedowns.MAX_ATTEMPTS) as hook:
        partner_platform(hook.url)
        req = one_draft(case, specialist, page="http://partner.test/v/1")
        approve_and_send(req, actor=specialist)
        pk = TakedownDelivery.objects.get().pk
        results = [run_delivery(pk) for _ in range(takedowns.MAX_ATTEMPTS)]
    assert results == ["retrying"] * (takedowns.MAX_ATTEMPTS - 1) + ["failed"]
    assert [takedowns.backoff(n).total_seconds() for n in (1, 2, 3)] == [60, 120, 240]


# --- the state machine reads the row, not the instance ----------------------------------------


def test_transition_checks_the_stored_state_not_a_stale_instance(case: Any,
                                                                 specialist: Any) -> None:
    email_platform()
    req = one_draft(case, specialist)
    approve_and_send(req, actor=specialist)
    stale = TakedownRequest.objects.get(pk=req.pk)
    record_response(req, S.REMOVED, actor=specialist)
    with pytest.raises(ValidationError):  # the stale copy still says "sent"
        record_response(stale, S.ACKNOWLEDGED, actor=specialist)
    assert TakedownRequest.objects.get(pk=req.pk).state == S.REMOVED


def test_resend_supersedes_a_notice_still_waiting_for_its_retry(case: Any,
                                                                specialist: Any) -> None:
    email_platform()
    req = one_draft(case, specialist)
    t0 = timezone.now() - dt.timedelta(days=2)
    approve_and_send(req, actor=specialist, at=t0)
    assert [r.pk for r in resend_due_requests(now=t0 + dt.timedelta(hours=25))] == [req.pk]
    first, second = TakedownDelivery.objects.order_by("number")
    assert (first.status, second.status, second.number) == (D.CANCELLED, D.PENDING, 2)


# --- issue 17 item 5: mark_removed is one transaction --------------------------------------


def test_mark_removed_and_closing_its_requests_commit_together(
        case: Any, specialist: Any, monkeypatch: Any) -> None:
    email_platform()
    req = one_draft(case, specialist)
    approve_and_send(req, actor=specialist)
    sighting = Sighting.objects.get()

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(takedowns, "close_requests_if_all_removed", crash)
    with pytest.raises(RuntimeError):
        mark_removed(sighting, reason="page_gone")
    # Nothing half-done: the sighting is not "removed" while its request stays open.
    assert Sighting.objects.get().status == SightingStatus.CONFIRMED
    monkeypatch.undo()
    assert mark_removed(Sighting.objects.get(), reason="page_gone")
    assert not mark_removed(Sighting.objects.get(), reason="page_gone")
    req.refresh_from_db()
    assert req.state == S.REMOVED
    assert TakedownEvent.objects.filter(request=req, to_state=S.REMOVED).count() == 1


def test_mark_removed_reads_the_status_inside_its_transaction(case: Any,
                                                              specialist: Any) -> None:
    email_platform()
    one_draft(case, specialist)
    stale = Sighting.objects.get()
    assert mark_removed(Sighting.objects.get(), reason="page_gone")
    assert not mark_removed(stale, reason="page_gone")  # the stale copy said "confirmed"
    assert TimelineEvent.objects.filter(case=case, kind="erasure.removed").count() == 1


# --- issue 17 item 2: typed text encrypted, out of the audit rows -----------------------------


def test_a_typed_response_note_is_encrypted_and_not_in_audit_or_timeline(
        case: Any, specialist: Any) -> None:
    email_platform()
    req = one_draft(case, specialist)
    approve_and_send(req, actor=specialist)
    typed = "담당자 홍길동과 통화함 010-1234-5678"
    record_response(req, S.ACKNOWLEDGED, actor=specialist, note=typed)
    assert req.events.last().note == typed  # type: ignore[union-attr]
    assert all(v.startswith("enc1:") for v in raw("erasure_takedownevent", "note") if v)
    assert not any("홍길동" in v for v in raw("erasure_takedownevent", "note"))
    assert not AuditEntry.objects.filter(reason__contains="홍길동").exists()
    assert AuditEntry.objects.filter(action="takedown.acknowledged",
                                     reason="platform_answer").exists()
    assert not any("홍길동" in str(e.data) for e in TimelineEvent.objects.filter(case=case))


def test_a_typed_withdrawal_reason_is_encrypted_and_not_in_the_audit_row(bank: Any,
                                                                        picture: Any) -> None:
    from anshim.erasure.models import EntrySource, Tombstone
    from anshim.erasure.services import register_fingerprints, withdraw_entries
    from anshim.fingerprint import fingerprint_bytes

    entry = register_fingerprints(bank, fingerprints=fingerprint_bytes(picture(41)),
                                  source=EntrySource.STAFF_EVIDENCE, actor=None)
    withdraw_entries([entry.pk], actor=None, reason="요청자 김철수 전화로 요청")
    assert Tombstone.objects.get().reason == "요청자 김철수 전화로 요청"
    assert raw("erasure_tombstone", "reason")[0].startswith("enc1:")
    assert not AuditEntry.objects.filter(reason__contains="김철수").exists()


def test_unblur_reason_is_encrypted_and_the_audit_row_points_to_it(
        case: Any, specialist: Any, login_client: Any, monkeypatch: Any) -> None:
    from anshim.erasure import preview as preview_mod
    from anshim.erasure.models import UnblurRecord
    from anshim.erasure.verification import Fetched

    from .media import picture_bytes

    monkeypatch.setattr(preview_mod, "fetch",
                        lambda url, limit, **kw: Fetched(200, picture_bytes(5), "image/png"))
    email_platform()
    one_draft(case, specialist)
    s = Sighting.objects.get()
    c = login_client(specialist)
    typed = "피해자 박영희 본인 확인 요청"
    assert c.post(f"/staff/erasure/sightings/{s.pk}/unblur/", {"reason": typed}
                  ).status_code == 200
    record = UnblurRecord.objects.get()
    assert record.reason == typed and record.actor == specialist
    assert raw("erasure_unblurrecord", "reason")[0].startswith("enc1:")
    entry = AuditEntry.objects.get(action="sighting.unblur")
    assert entry.target_pk == str(record.pk) and typed not in entry.reason


def test_request_page_shows_each_notice_and_a_stopped_request(
        case: Any, specialist: Any, login_client: Any, make_user: Any,
        django_assert_max_num_queries: Any) -> None:
    email_platform()
    req = one_draft(case, specialist)
    approve_and_send(req, actor=specialist)
    c = login_client(specialist)
    c.get(f"/staff/erasure/requests/{req.pk}/")  # warm the session and translations
    with django_assert_max_num_queries(20):
        page = c.get(f"/staff/erasure/requests/{req.pk}/", HTTP_ACCEPT_LANGUAGE="ko")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="deliveries"' in html and "발송 대기" in html
    withdraw_consent(make_user("supervisor"), case, ConsentScope.CONTACT_PLATFORMS)
    html = c.get(f"/staff/erasure/requests/{req.pk}/").content.decode()
    assert "중단됨: 동의 철회" in html and "취소됨" in html
    assert f"/staff/erasure/requests/{req.pk}/respond/" not in html


def test_the_victim_withdrawing_in_the_portal_stops_requests_too(case: Any,
                                                                 specialist: Any) -> None:
    from anshim.portal import services as portal

    email_platform()
    req = one_draft(case, specialist)
    approve_and_send(req, actor=specialist)
    portal.withdraw(case, entry_ids=[], scopes=[ConsentScope.CONTACT_PLATFORMS])
    req.refresh_from_db()
    assert req.state == S.WITHDRAWN
    assert req.deliveries.get().status == D.CANCELLED


def test_a_stopped_draft_does_not_count_as_sent(case: Any, specialist: Any) -> None:
    from anshim.erasure.summary import case_summary

    email_platform()
    one_draft(case, specialist)
    consent_rules.withdraw(case, ConsentScope.CONTACT_PLATFORMS)
    summary = case_summary(case)
    assert summary is not None and summary["requests_sent"] == 0
