"""Signed webhooks to a real HTTP server on 127.0.0.1; retries with exponential backoff."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.tasks import default_task_backend
from django.utils import timezone

from anshim.exchange import services, webhooks
from anshim.exchange.models import DeliveryStatus, Partner, WebhookDelivery

pytestmark = pytest.mark.django_db

DUMMY_TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


class Receiver:
    """A partner's webhook endpoint: records requests, answers with `status`."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def tasks(settings: Any) -> Any:
    settings.TASKS = DUMMY_TASKS
    default_task_backend.clear()
    yield default_task_backend
    default_task_backend.clear()


def test_signature_is_hmac_sha256_over_timestamp_and_body():
    import hashlib
    import hmac

    expected = hmac.new(b"s3cret", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert webhooks.sign("s3cret", "1700000000", b"{}") == expected
    assert webhooks.verify("s3cret", "1700000000", b"{}", expected, now=1700000100)
    assert not webhooks.verify("s3cret", "1700000000", b"{}", expected, now=1700009999)
    assert not webhooks.verify("other", "1700000000", b"{}", expected, now=1700000000)
    assert not webhooks.verify("s3cret", "soon", b"{}", expected)


def test_changes_are_delivered_signed(make_bank, add_entry, withdraw, make_partner, receiver,
                                      tasks, django_capture_on_commit_callbacks):
    bank = make_bank()
    partner, _ = make_partner(bank)
    secret = services.set_webhook(partner, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        entry = add_entry(bank)
        other = add_entry(make_bank("private"))
    # The commit queued a dispatch; run the queue as a worker would.
    assert {r.task.name for r in tasks.results} == {"dispatch_webhooks"}
    assert webhooks.dispatch_all() == 1
    delivery = WebhookDelivery.objects.get()
    assert webhooks.attempt(delivery) is True
    headers, body = receiver.requests[-1]
    assert webhooks.verify(secret, headers["X-Anshim-Timestamp"], body,
                           headers["X-Anshim-Signature"])
    payload = json.loads(body)
    assert payload["event"] == "fingerprints.changed"
    assert [(i["op"], i["entry_id"]) for i in payload["items"]] == [("add", entry.pk)]
    assert other.pk not in {i["entry_id"] for i in payload["items"]}
    assert payload["cursor"]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1

    # Nothing new: no delivery. A withdrawal: one more.
    assert webhooks.dispatch_all() == 0
    withdraw(entry)
    assert webhooks.dispatch_all() == 1
    second = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).get()
    assert webhooks.attempt(second)
    payload = json.loads(receiver.requests[-1][1])
    assert [(i["op"], i["entry_id"]) for i in payload["items"]] == [("withdraw", entry.pk)]


def test_webhook_body_cursor_continues_the_feed(make_bank, add_entry, make_partner, receiver,
                                                partner_client):
    bank = make_bank()
    partner, token = make_partner(bank)
    services.set_webhook(partner, receiver.url)
    add_entry(bank)
    webhooks.dispatch_all()
    payload = json.loads(WebhookDelivery.objects.get().body)
    later = add_entry(bank)
    page = partner_client(token).get("/fingerprints", cursor=payload["cursor"]).json()
    assert [i["entry_id"] for i in page["items"]] == [later.pk]


def test_failures_are_retried_with_exponential_backoff(make_bank, add_entry, make_partner,
                                                       receiver, tasks):
    bank = make_bank()
    partner, _ = make_partner(bank)
    services.set_webhook(partner, receiver.url)
    add_entry(bank)
    webhooks.dispatch_all()
    delivery = WebhookDelivery.objects.get()
    tasks.clear()
    receiver.status = 503
    before = timezone.now()
    assert webhooks.deliver_webhook.call(delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.last_status_code == 503
    retry = tasks.results[-1]
    assert retry.task.name == "deliver_webhook" and retry.args == [delivery.pk]
    assert retry.task.run_after >= before + dt.timedelta(minutes=1)
    assert webhooks.deliver_webhook.call(delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert delivery.next_attempt_at >= timezone.now() + dt.timedelta(seconds=110)
    # Recovers: delivered on the next try.
    receiver.status = 204
    assert webhooks.deliver_webhook.call(delivery.pk) == "delivered"
    assert len(receiver.requests) == 3
    assert webhooks.deliver_webhook.call(delivery.pk) == "gone"


def test_gives_up_after_max_attempts(make_bank, add_entry, make_partner, tasks):
    bank = make_bank()
    partner, _ = make_partner(bank)
    services.set_webhook(partner, "http://127.0.0.1:9/unreachable")
    add_entry(bank)
    webhooks.dispatch_all()
    delivery = WebhookDelivery.objects.get()
    delivery.attempts = webhooks.MAX_ATTEMPTS - 1
    delivery.save()
    assert webhooks.deliver_webhook.call(delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_error


def test_backoff_doubles():
    assert [webhooks.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]


def test_new_webhook_starts_at_the_end_of_the_log(make_bank, add_entry, make_partner, receiver):
    bank = make_bank()
    add_entry(bank)
    partner, _ = make_partner(bank)
    services.set_webhook(partner, receiver.url)
    assert webhooks.dispatch_all() == 0
    assert Partner.objects.get(pk=partner.pk).webhook_secret


def test_a_share_change_is_restated_to_the_webhook(make_bank, add_entry, make_partner,
                                                   receiver, partner_client):
    """Issue 18: webhook receivers get the same healing pages as pullers of the feed."""
    first, later = make_bank("first"), make_bank("later")
    old = add_entry(later)
    partner, token = make_partner(first)
    services.set_webhook(partner, receiver.url)
    add_entry(first)
    webhooks.dispatch_all()
    services.share_banks(partner, ["later"])
    webhooks.dispatch_all()
    bodies = [json.loads(d.body) for d in WebhookDelivery.objects.order_by("pk")]
    restated = [i for body in bodies for i in body["items"] if i["resync"]]
    assert [(i["op"], i["entry_id"]) for i in restated] == [("add", old.pk)]
    services.unshare_banks(partner, ["later"])
    webhooks.dispatch_all()
    last = json.loads(WebhookDelivery.objects.order_by("-pk").first().body)
    assert [(i["op"], i["entry_id"]) for i in last["items"]] == [("withdraw", old.pk)]
    # The last body's cursor continues the feed with nothing left over.
    page = partner_client(token).get("/fingerprints", cursor=last["cursor"]).json()
    assert page["items"] == [] and page["has_more"] is False
    assert webhooks.dispatch_all() == 0
