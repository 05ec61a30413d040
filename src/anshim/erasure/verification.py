"""Re-checking open sightings: is the content still there?

Gone means: the page answers 404/410, the page no longer shows the media, the media answers
404/410, or the media no longer matches the entry. Gone → removed (with time to removal);
still there past its request's deadline → escalated. Media is fetched in memory only, from
public addresses only (`anshim.crawl.netguard`; hosts a monitored source explicitly allows are
exempt), so a recorded URL cannot make the server fetch from its own network.
"""

from __future__ import annotations

import datetime as dt
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

from django.utils import timezone

from anshim.crawl import CrawlConfig, extract_links
from anshim.crawl.netguard import HostPolicy, guarded_urlopen
from anshim.erasure.matcher import get_matcher
from anshim.erasure.models import (
    MonitoredSource,
    Sighting,
    SightingStatus,
    TakedownRequest,
    TakedownState,
)
from anshim.erasure.sightings import mark_removed
from anshim.erasure.takedowns import Why, escalate

MAX_MEDIA_BYTES = CrawlConfig.max_media_bytes
MAX_PAGE_BYTES = CrawlConfig.max_page_bytes
GONE_STATUSES = (404, 410)


@dataclass
class Fetched:
    status: int | None  # None: network error (not evidence of removal)
    body: bytes = b""
    content_type: str = ""


def source_policy() -> HostPolicy:
    """The hosts on private networks that some monitored source explicitly allows."""
    hosts: list[str] = []
    for source in MonitoredSource.objects.exclude(allowed_private_hosts=""):
        hosts.extend(source.private_host_list)
    return HostPolicy.allowing(hosts)


def fetch(url: str, limit: int, timeout: float = 20.0, *,
          policy: HostPolicy | None = None) -> Fetched:
    """GET `url` in memory; status None for anything that is not an answer (a refused
    address included: that is no evidence of removal either)."""
    if not url.startswith(("http://", "https://")):
        return Fetched(None)
    req = urllib.request.Request(url, headers={"User-Agent": CrawlConfig.user_agent})  # noqa: S310
    try:
        with guarded_urlopen(req, timeout=timeout,
                             policy=source_policy() if policy is None else policy) as resp:
            return Fetched(resp.status, resp.read(limit), resp.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        return Fetched(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return Fetched(None)


@dataclass
class VerifyReport:
    checked: int = 0
    removed: list[int] = field(default_factory=list)
    still_there: list[int] = field(default_factory=list)
    unreachable: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)


def _media_gone(sighting: Sighting, policy: HostPolicy | None = None) -> bool | None:
    """True: gone, False: still there and matching, None: could not tell."""
    media = fetch(sighting.media_url, MAX_MEDIA_BYTES, policy=policy)
    if media.status in GONE_STATUSES:
        return True
    if media.status is None or media.status >= 400:
        return None
    from anshim.fingerprint import FingerprintError, fingerprint_bytes

    try:
        fp = fingerprint_bytes(media.body)
    except FingerprintError:
        return True  # whatever is there now is not the banked picture
    matches = get_matcher().match_fingerprint(fp)
    return not any(m.entry_id == sighting.entry_id for m in matches)


def verify_open_sightings(*, now: dt.datetime | None = None) -> VerifyReport:
    now = now or timezone.now()
    report = VerifyReport()
    policy = source_policy()
    by_page: dict[str, list[Sighting]] = defaultdict(list)
    for s in Sighting.objects.filter(status__in=[SightingStatus.NEW, SightingStatus.CONFIRMED]):
        by_page[s.page_url].append(s)
    for page_url, sightings in by_page.items():
        page_gone = False
        page_media: set[str] | None = None
        if any(s.media_url != page_url for s in sightings):
            page = fetch(page_url, MAX_PAGE_BYTES, policy=policy)
            if page.status in GONE_STATUSES:
                page_gone = True
            elif page.status is not None and page.status < 400 and "html" in page.content_type:
                links = extract_links(page.body.decode("utf-8", errors="replace"), page_url)
                page_media = set(links.media)
        for s in sightings:
            report.checked += 1
            if page_gone:
                gone: bool | None = True
                reason = "page_gone"
            elif page_media is not None and s.media_url not in page_media:
                gone, reason = True, "media_not_on_page"
            else:
                gone, reason = _media_gone(s, policy), "media_gone_or_changed"
            if gone:
                mark_removed(s, at=now, reason=reason)
                report.removed.append(s.pk)
                continue
            if gone is None:
                report.unreachable.append(s.pk)
                continue
            s.last_checked = s.last_seen = now
            s.save(update_fields=["last_checked", "last_seen"])
            report.still_there.append(s.pk)
            overdue = TakedownRequest.objects.filter(
                items__sighting=s, due_at__lt=now,
                state__in=[TakedownState.SENT, TakedownState.ACKNOWLEDGED,
                           TakedownState.NO_RESPONSE, TakedownState.REFUSED]).distinct()
            for req in overdue:
                escalate(req, note="still online past the deadline", at=now,
                         why=Why.STILL_ONLINE)
                report.escalated.append(req.pk)
    return report
