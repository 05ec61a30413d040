"""The staff preview and removal verification fetch recorded URLs server-side: the same rule
as the crawl (issue 16, item 13). Loopback and private hosts are refused unless a monitored
source explicitly allows the host."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from anshim.erasure.matcher import MatchResult
from anshim.erasure.models import MonitoredSource, Sighting, SightingStatus
from anshim.erasure.sightings import Observation, record_sighting, review_sighting
from anshim.erasure.verification import verify_open_sightings

from .media import picture_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def evidence_key(settings: Any, tmp_path: Any) -> None:
    settings.ANSHIM_EVIDENCE_KEY_FILE = str(tmp_path / "evidence.pem")


@pytest.fixture
def internal_service() -> Iterator[tuple[str, list[str]]]:
    """Something on the server's own loopback that must not be reachable through Anshim."""
    hits: list[str] = []
    body = picture_bytes(9)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def _sighting(media_url: str) -> Sighting:
    match = MatchResult(bank="victims", bank_id=1, entry_id=1, case_code=None, distance=3,
                        kind="pdq")
    s, _ = record_sighting(Observation("http://sns.test/post/1", media_url), match)
    return s


def test_preview_refuses_the_servers_own_network(internal_service: Any, make_user: Any,
                                                 login_client: Any) -> None:
    host, hits = internal_service
    s = _sighting(f"http://{host}/admin/secret.png")
    c = login_client(make_user("erasure"))
    response = c.get(f"/staff/erasure/sightings/{s.pk}/preview.png")
    assert response.status_code == 410 and hits == []
    assert c.post(f"/staff/erasure/sightings/{s.pk}/unblur/").status_code == 410
    assert hits == []
    # A monitored source that names the host (a test site) allows it explicitly.
    MonitoredSource.objects.create(name="test site", seeds="http://sns.test/",
                                   allowed_private_hosts="127.0.0.1")
    assert c.get(f"/staff/erasure/sightings/{s.pk}/preview.png").status_code == 200
    assert hits == ["/admin/secret.png"]


def test_preview_refuses_metadata_addresses(make_user: Any, login_client: Any) -> None:
    s = _sighting("http://169.254.169.254/latest/meta-data/iam/")
    c = login_client(make_user("erasure"))
    assert c.get(f"/staff/erasure/sightings/{s.pk}/preview.png").status_code == 410


def test_verification_does_not_fetch_private_hosts(internal_service: Any,
                                                   make_user: Any) -> None:
    host, hits = internal_service
    s = _sighting(f"http://{host}/internal.png")
    review_sighting(s, confirm=True, actor=make_user("erasure"))
    report = verify_open_sightings()
    assert report.unreachable == [s.pk] and hits == []
    assert Sighting.objects.get().status == SightingStatus.CONFIRMED  # no evidence either way
