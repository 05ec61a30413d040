"""Shared pieces of the takedown integrity tests: a case with both consents, a confirmed
sighting on a platform, a draft; a webhook receiver on loopback that records what it got."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from anshim.cases.models import Consent, ConsentGiver, ConsentScope
from anshim.erasure.matcher import MatchResult
from anshim.erasure.models import Platform, TakedownChannel, TakedownRequest
from anshim.erasure.sightings import Observation, record_sighting, review_sighting
from anshim.erasure.takedowns import draft_requests


def give_contact_consent(case: Any) -> None:
    Consent.objects.create(case=case, scope=ConsentScope.CONTACT_PLATFORMS,
                           given_by=ConsentGiver.VICTIM, granted_at=timezone.now())


def email_platform(name: str = "Domestic", domain: str = "dom.test") -> Platform:
    return Platform.objects.create(name=name, domains=domain, contact_email=f"abuse@{domain}",
                                   expected_response_hours=24)


def confirmed_sighting(case: Any, page: str, entry: int, actor: Any) -> Any:
    match = MatchResult(bank="victims", bank_id=1, entry_id=entry, case_code=case.code,
                        distance=4, kind="pdq")
    s, _ = record_sighting(Observation(page, page + ".jpg", http_status=200), match)
    review_sighting(s, confirm=True, actor=actor)
    return s


def one_draft(case: Any, actor: Any, page: str = "http://dom.test/p/1", entry: int = 1,
              ) -> TakedownRequest:
    confirmed_sighting(case, page, entry, actor)
    [req] = draft_requests(case, actor=actor)
    return req


@dataclass
class Hook:
    """What a partner's webhook received: one (headers, raw body) per POST."""

    url: str
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give, in order; then 202

    def json(self, i: int) -> Any:
        return json.loads(self.posts[i][1])


@contextmanager
def webhook_receiver(statuses: list[int] | None = None) -> Iterator[Hook]:
    hook = Hook(url="", statuses=list(statuses or []))
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                hook.posts.append(({k: v for k, v in self.headers.items()}, body))
                status = hook.statuses.pop(0) if hook.statuses else 202
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/takedown"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def partner_platform(url: str) -> Platform:
    return Platform.objects.create(name="Partner", domains="partner.test",
                                   channel=TakedownChannel.PARTNER_API, webhook_url=url)
