"""End to end: a fake social site on loopback shows benign pictures and transformed copies of
pictures registered to a test case. The scan finds the copies and nothing else, notices go out
by SMTP, the site deletes them, verification marks them removed, and a re-upload is caught."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from anshim.cases.models import Consent, ConsentGiver, ConsentScope, TimelineEvent
from anshim.erasure.models import (
    EntrySource,
    MonitoredSource,
    Platform,
    Sighting,
    SightingStatus,
    TakedownChannel,
    TakedownState,
)
from anshim.erasure.scan import run_scan
from anshim.erasure.services import register_fingerprints
from anshim.erasure.sightings import review_queue, review_sighting
from anshim.erasure.summary import case_summary, platform_metrics
from anshim.erasure.takedowns import approve_and_send, draft_requests
from anshim.erasure.verification import verify_open_sightings
from anshim.fingerprint import fingerprint_bytes

from .media import picture_bytes
from .workflow_support import FakeSite, body_text, smtp_server, transformed

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

TRANSFORMS = ["resized", "recompressed", "cropped", "watermarked", "mirrored", "rotated"]


@pytest.fixture(autouse=True)
def evidence_key(settings: Any, tmp_path: Path) -> None:
    settings.ANSHIM_EVIDENCE_KEY_FILE = str(tmp_path / "evidence.pem")
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}


def test_scan_notice_removal_and_reupload(tmp_path: Path, bank: Any, make_case: Any,
                                          make_user: Any,
                                          django_capture_on_commit_callbacks: Any) -> None:
    case = make_case()
    Consent.objects.create(case=case, scope=ConsentScope.CONTACT_PLATFORMS,
                           given_by=ConsentGiver.VICTIM, granted_at=timezone.now())
    specialist = make_user("erasure")
    registered = {how: 500 + i for i, how in enumerate(TRANSFORMS)}
    entries = {how: register_fingerprints(
        bank, case=case, fingerprints=fingerprint_bytes(picture_bytes(seed), dihedral=True),
        source=EntrySource.STAFF_EVIDENCE, actor=None).pk for how, seed in registered.items()}

    with FakeSite(tmp_path / "site") as site:
        Platform.objects.create(name="FakeSNS", domains="127.0.0.1",
                                channel=TakedownChannel.EMAIL,
                                contact_email="abuse@fakesns.test", expected_response_hours=72,
                                notice_language="en")
        benign = [f"benign{i}.png" for i in range(8)]
        for i, name in enumerate(benign):
            site.put_image(name, picture_bytes(10 + i))
        copies = {how: f"copy-{how}.{'jpg' if how in ('recompressed', 'watermarked') else 'png'}"
                  for how in TRANSFORMS}
        for how, name in copies.items():
            site.put_image(name, transformed(registered[how], how))
        site.put_page("post1.html", [benign[0], copies["resized"], benign[1]])
        site.put_page("post2.html", [copies["recompressed"], copies["cropped"], benign[2]])
        site.put_page("post3.html", [benign[3], copies["watermarked"]])
        site.put_page("post4.html", [copies["mirrored"], copies["rotated"], benign[4]])
        site.put_page("post5.html", benign[5:])
        site.put_page("index.html", [], [f"post{i}.html" for i in range(1, 6)])

        # The fake site is on loopback: its monitored source allows that host explicitly
        # (verification follows the same rule as the crawl).
        MonitoredSource.objects.create(name="FakeSNS", seeds=site.base + "index.html",
                                       allowed_private_hosts="127.0.0.1")

        # 1. The scan finds exactly the six copies, each matched to its own entry.
        report = run_scan([site.base + "index.html"], depth=1, per_host_rate=200,
                          allowed_private_hosts=["127.0.0.1"])
        assert report.pages == 6
        found = {m.media_url.rsplit("/", 1)[-1]: m.match.entry_id for m in report.matches}
        assert found == {copies[how]: entries[how] for how in TRANSFORMS}
        assert all(m.match.case_code == case.code for m in report.matches)
        sightings = list(Sighting.objects.all())
        assert len(sightings) == 6 and all(s.platform and s.platform.name == "FakeSNS"
                                           for s in sightings)
        ev = sightings[0].evidence.get()
        assert ev.signature and "FakeSNS" in ev.page_html and ev.http_status == 200

        # 2. Review: all confirmed; one request to the platform, sent by SMTP.
        for s in review_queue():
            review_sighting(s, confirm=True, actor=specialist)
        [req] = draft_requests(case, actor=specialist)
        assert req.state == TakedownState.DRAFT and req.items.count() == 6
        with (smtp_server() as (inbox, mailers), override_settings(MAILERS=mailers),
              django_capture_on_commit_callbacks(execute=True)):
            approve_and_send(req, actor=specialist)
        req.refresh_from_db()
        assert req.state == TakedownState.SENT and req.due_at is not None
        [msg] = inbox.messages
        assert msg["To"] == "abuse@fakesns.test"
        text = body_text(msg)
        for name in copies.values():
            assert name in text
        assert req.reference in msg["Subject"]

        # 3. The site deletes the copies in different ways; verification notices each one.
        site.delete("post1.html")  # page gone (404)
        site.put_page("post2.html", [benign[2]])  # page edited: the media is no longer shown
        site.delete("img/" + copies["watermarked"])  # media gone
        site.put_image(copies["mirrored"], picture_bytes(77))  # replaced by another picture
        site.delete("img/" + copies["rotated"])
        result = verify_open_sightings()
        assert len(result.removed) == 6 and not result.still_there
        assert Sighting.objects.filter(status=SightingStatus.REMOVED).count() == 6
        req.refresh_from_db()
        assert req.state == TakedownState.REMOVED
        summary = case_summary(case)
        assert summary is not None
        assert summary["removed"] == 6 and summary["requests_sent"] == 1
        assert summary["median_hours_to_removal"] is not None
        kinds = set(TimelineEvent.objects.filter(case=case).values_list("kind", flat=True))
        assert {"erasure.sighting", "erasure.takedown_draft", "erasure.takedown_sent",
                "erasure.removed", "erasure.takedown_removed"} <= kinds

        # 4. A re-upload elsewhere is caught and put first in the queue.
        site.put_image("again.jpg", transformed(registered["resized"], "recompressed"))
        site.put_page("post6.html", [benign[6], "again.jpg"])
        site.put_page("index.html", [], ["post6.html"])
        report = run_scan([site.base + "index.html"], depth=1, per_host_rate=200,
                          allowed_private_hosts=["127.0.0.1"])
        assert [m.media_url.rsplit("/", 1)[-1] for m in report.matches] == ["again.jpg"]
        assert report.matches[0].reupload
        first = review_queue().first()
        assert first is not None and first.is_reupload
        assert case_summary(case)["reuploads"] == 1  # type: ignore[index]
        [metrics] = platform_metrics()
        assert metrics["platform"] == "FakeSNS" and metrics["removed_within_24h"] == 1.0
