"""Signed webhooks: tell partners when fingerprints of their shared banks change.

Each partner with a webhook URL has a high-water mark (`Partner.webhook_seq`). After any change
commits, `dispatch_webhooks` reads each partner's feed beyond that mark and queues one signed
POST per page; the body is the feed page itself (the same items as GET /fingerprints) plus the
cursor to continue from, so a partner can apply it directly or just pull the feed.

Signature: ``X-Anshim-Signature = hex(HMAC-SHA256(secret, timestamp + "." + body))`` with the
Unix time in ``X-Anshim-Timestamp``; partners should refuse timestamps older than 5 minutes.
Failed deliveries are retried with exponential backoff (1 min, 2, 4, ... up to 8 attempts).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import urllib.error
import urllib.request

from django.db import transaction
from django.tasks import task
from django.utils import timezone

from anshim.exchange.feed import (
    DEFAULT_PAGE,
    BadCursor,
    Position,
    decode_position,
    encode_position,
    read_position,
)
from anshim.exchange.models import DeliveryStatus, Partner, WebhookDelivery
from anshim.exchange.schemas import feed_page_payload
from anshim.security import signing

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BASE_DELAY = dt.timedelta(minutes=1)
TIMEOUT_SECONDS = 10
# One dispatch announces at most this many pages; the next dispatch goes on from there.
_MAX_PAGES = 1000
SIGNATURE_HEADER = signing.SIGNATURE_HEADER
TIMESTAMP_HEADER = signing.TIMESTAMP_HEADER


# The signing scheme is shared with takedown notices sent by partner API (erasure app).
new_secret = signing.new_secret
sign = signing.sign
verify = signing.verify


def backoff(attempts: int) -> dt.timedelta:
    """Delay before the next try after `attempts` failed ones: 1, 2, 4, ... minutes."""
    return BASE_DELAY * (2 ** max(0, attempts - 1))


# --- Queueing -------------------------------------------------------------------------------


def collect_deliveries(partner: Partner) -> list[WebhookDelivery]:
    """Queue deliveries for everything past the partner's high-water mark."""
    if not partner.webhook_url or not partner.active:
        return []
    created: list[WebhookDelivery] = []
    with transaction.atomic():
        locked = Partner.objects.select_for_update().get(pk=partner.pk)
        try:
            position = decode_position(locked, locked.webhook_cursor) or Position(
                locked.webhook_seq, locked.share_epoch, locked.share_epoch)
        except BadCursor:  # signed with a secret key no longer kept: from the mark on
            position = Position(locked.webhook_seq, locked.share_epoch, locked.share_epoch)
        # The same pages as the feed (share changes restated), each announced once.
        for _ in range(_MAX_PAGES):
            page = read_position(locked, position, DEFAULT_PAGE)
            assert page.position is not None
            if page.position == position:
                break
            position = page.position
            cursor = encode_position(locked, position)
            if page.items:
                body = {"event": "fingerprints.changed", **feed_page_payload(page, cursor)}
                created.append(WebhookDelivery.objects.create(
                    partner=locked, body=json.dumps(body, separators=(",", ":"), default=str),
                ))
            if not page.has_more:
                break
        Partner.objects.filter(pk=locked.pk).update(
            webhook_seq=position.seq, webhook_cursor=encode_position(locked, position))
    return created


def dispatch_all() -> int:
    """Queue and send deliveries for every partner with a webhook. Returns how many queued."""
    count = 0
    for partner in Partner.objects.filter(active=True).exclude(webhook_url=""):
        for delivery in collect_deliveries(partner):
            deliver_webhook.enqueue(delivery.pk)
            count += 1
    return count


@task()
def dispatch_webhooks() -> int:
    return dispatch_all()


def schedule_dispatch() -> None:
    """Called (on commit) after bank changes: announce them without delaying the writer."""
    if Partner.objects.filter(active=True).exclude(webhook_url="").exists():
        dispatch_webhooks.enqueue()


# --- Delivery -------------------------------------------------------------------------------


def attempt(delivery: WebhookDelivery) -> bool:
    """POST once. Records the outcome; True when the partner answered 2xx."""
    partner = delivery.partner
    body = delivery.body.encode("utf-8")
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 - partner URLs are http(s) URLFields
        partner.webhook_url, data=body, method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Anshim-Webhook/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(partner.webhook_secret, timestamp, body),
        },
    )
    delivery.attempts += 1
    status: int | None = None
    error = ""
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = str(exc)[:300]
    delivery.last_status_code = status
    delivery.last_error = error
    ok = status is not None and 200 <= status < 300
    now = timezone.now()
    if ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
            DeliveryStatus.DELIVERED, now, None)
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    delivery.save()
    return ok


@task()
def deliver_webhook(delivery_id: int) -> str:
    delivery = (WebhookDelivery.objects.select_related("partner")
                .filter(pk=delivery_id, status=DeliveryStatus.PENDING).first())
    if delivery is None:
        return "gone"
    if attempt(delivery):
        return "delivered"
    if delivery.next_attempt_at is not None:
        deliver_webhook.using(run_after=delivery.next_attempt_at).enqueue(delivery.pk)
        return "retrying"
    logger.warning("webhook delivery %s to partner %s failed for good", delivery.pk,
                   delivery.partner_id)
    return "failed"
