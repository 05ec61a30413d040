"""The media fetch outside Scrapy (`anshim.crawl.fetch`, run by the fingerprinting workers): the
SSRF guard on every connection and redirect, size and time limits, keep-alive, retries; and
the crawl through it (politeness, robots.txt, a worker that dies)."""

from __future__ import annotations

import gzip
import http.server
import io
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from PIL import Image

from anshim.crawl import CrawlConfig, crawl
from anshim.crawl.fetch import FetchError, FetchRequest, close_connections, fetch
from anshim.crawl.media import fetch_media

LOOPBACK = ("127.0.0.1",)


def _png(seed: int, size: int = 96) -> bytes:
    rng = np.random.default_rng(seed)
    arr = (rng.random((size // 8, size // 8, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).resize((size, size), Image.Resampling.BICUBIC).save(buf, "PNG")
    return buf.getvalue()


@dataclass
class _Server:
    port: int
    #: (path, connection id) of every request, in order.
    log: list[tuple[str, int]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    fail_first: dict[str, int] = field(default_factory=dict)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[_Server]:
    image = _png(1)
    lock = threading.Lock()
    state: _Server

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", ctype: str = "image/png",
                  **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            if "chunked" not in headers.values():
                self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            if body and headers.get("Transfer_Encoding") != "chunked":
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path
            with lock:
                state.log.append((path, id(self.connection)))
                state.times.append(time.monotonic())
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
                failing = state.fail_first.get(path, 0)
                if failing:
                    state.fail_first[path] = failing - 1
            try:
                if failing:
                    self._send(503, b"busy", "text/plain")
                elif path.startswith("/img/") and path.endswith(".png"):
                    if "slow" in path:
                        time.sleep(0.3)
                    if self.headers.get("If-None-Match") == '"v1"':
                        self._send(304, ETag='"v1"')
                    else:
                        self._send(200, image, ETag='"v1"')
                elif path == "/index.html":
                    imgs = "".join(f'<img src="/img/{i}.png">' for i in range(6))
                    self._send(200, f"<html><body>{imgs}</body></html>".encode(), "text/html")
                elif path.startswith("/to?u="):
                    self._send(302, Location=path[len("/to?u="):])
                elif path == "/loop":
                    self._send(302, Location="/loop2")
                elif path == "/loop2":
                    self._send(302, Location="/loop")
                elif path == "/big.png":
                    self._send(200, b"\0" * 50_000)
                elif path == "/liar.png":
                    # No Content-Length: the body is cut at the limit, not read to the end.
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(b"\0" * 5000)
                    self.close_connection = True
                elif path == "/bomb.png":
                    self._send(200, gzip.compress(b"\0" * 1_000_000), Content_Encoding="gzip")
                elif path == "/gzip.png":
                    self._send(200, gzip.compress(image), Content_Encoding="gzip")
                elif path == "/stall.png":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b"\0" * 10)
                    self.wfile.flush()
                    time.sleep(2)
                elif path == "/robots.txt":
                    self._send(200, b"User-agent: *\nDisallow: /img/secret\n", "text/plain")
                elif path == "/forbidden.png":
                    self._send(403, b"no", "text/plain")
                else:
                    self._send(404, b"", "text/plain")
            finally:
                with lock:
                    state.in_flight -= 1

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state = _Server(port=httpd.server_address[1])
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        close_connections()
        httpd.shutdown()
        httpd.server_close()


def _request(url: str, **kw: Any) -> FetchRequest:
    options: dict[str, Any] = {"user_agent": "test", "max_bytes": 1_000_000, "timeout": 5.0,
                               "allowed_private_hosts": LOOPBACK}
    options.update(kw)
    return FetchRequest(url=url, **options)


def test_fetches_with_keep_alive_and_conditional_requests(server: _Server) -> None:
    first = fetch(_request(server.url("/img/a.png")))
    assert first.status == 200 and first.body.startswith(b"\x89PNG")
    assert first.headers["etag"] == '"v1"'
    second = fetch(_request(server.url("/img/b.png")))
    assert second.status == 200
    # One connection for both (keep-alive), as Scrapy's pool did.
    assert server.log[0][1] == server.log[1][1]
    revalidated = fetch(_request(server.url("/img/a.png"), headers=(("If-None-Match", '"v1"'),)))
    assert revalidated.status == 304 and revalidated.body == b""


def test_loopback_is_refused_unless_allowed(server: _Server) -> None:
    with pytest.raises(FetchError) as info:
        fetch(_request(server.url("/img/a.png"), allowed_private_hosts=()))
    assert info.value.kind == "BlockedRequest" and "not a public address" in info.value.message
    # Another name for the allowed address is another host: refused.
    with pytest.raises(FetchError) as info:
        fetch(_request(server.url("/img/a.png", host="localhost")))
    assert info.value.kind == "BlockedRequest"
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.2]/x.png",
                "http://10.0.0.1/x.png", "file:///etc/passwd", "ftp://example.com/x.png"):
        with pytest.raises(FetchError) as info:
            fetch(_request(url))
        assert info.value.kind == "BlockedRequest", url
    assert server.log == []  # nothing refused reached the server


def test_every_redirect_hop_is_checked(server: _Server) -> None:
    ok = fetch(_request(server.url("/to?u=/img/a.png")))
    assert ok.status == 200 and ok.url == server.url("/img/a.png")
    for target in (server.url("/img/a.png", host="localhost"), "http://169.254.169.254/",
                   "file:///etc/passwd"):
        with pytest.raises(FetchError) as info:
            fetch(_request(server.url("/to?u=" + target)))
        assert info.value.kind == "BlockedRequest" and info.value.url == target
    with pytest.raises(FetchError) as info:
        fetch(_request(server.url("/loop")))
    assert info.value.kind == "TooManyRedirects"
    hops = server.url("/to?u=" + "/to?u=" * 3 + "/img/a.png")
    with pytest.raises(FetchError) as info:
        fetch(_request(hops, max_redirects=2))
    assert info.value.kind == "TooManyRedirects"


def test_size_limits_before_and_while_reading(server: _Server) -> None:
    for path in ("/big.png", "/liar.png", "/bomb.png"):
        with pytest.raises(FetchError) as info:
            fetch(_request(server.url(path), max_bytes=4096))
        assert info.value.kind == "MediaTooLarge", path
    # Compressed bodies are decompressed (as Scrapy's middleware did), within the limit.
    assert fetch(_request(server.url("/gzip.png"))).body == _png(1)


def test_timeouts_are_typed_errors(server: _Server) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch(_request(server.url("/stall.png"), timeout=0.5, retries=0))
    assert info.value.kind == "TimeoutError"
    assert time.monotonic() - started < 1.8


def test_transient_errors_are_retried_and_others_reported(server: _Server) -> None:
    server.fail_first["/img/retry.png"] = 2
    assert fetch(_request(server.url("/img/retry.png"))).status == 200
    server.fail_first["/img/down.png"] = 5
    with pytest.raises(FetchError) as info:
        fetch(_request(server.url("/img/down.png")))
    assert info.value.kind == "HttpError" and "503" in info.value.message
    with pytest.raises(FetchError) as info:
        fetch(_request(server.url("/forbidden.png")))
    assert info.value.kind == "HttpError" and "403" in info.value.message
    assert fetch(_request(server.url("/nothing-here.png"))).status == 404
    # A closed port: a connection error, retried, then reported.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(FetchError) as info:
        fetch(_request(f"http://127.0.0.1:{closed}/x.png"))
    assert info.value.kind == "ConnectionError"


def test_a_stale_keep_alive_connection_is_reopened(server: _Server) -> None:
    assert fetch(_request(server.url("/img/a.png"))).status == 200
    # The server drops idle connections (restart, idle timeout): the next fetch still works.
    from anshim.crawl import fetch as fetch_module

    for conn in fetch_module._CONNECTIONS._pool().values():
        assert conn.sock is not None
        conn.sock.shutdown(socket.SHUT_RDWR)
    assert fetch(_request(server.url("/img/b.png"))).status == 200


def test_fetch_media_gives_records_not_exceptions(server: _Server) -> None:
    ok = fetch_media(_request(server.url("/img/a.png")), 1.0)
    assert ok["outcome"] == "media" and len(ok["pdq"]) == 64 and ok["robust"] is not None
    assert ok["bytes"] == len(_png(1)) and ok["headers"]["etag"] == '"v1"'
    gone = fetch_media(_request(server.url("/img/none.txt")), 1.0)
    assert gone == {"outcome": "gone", "http_status": 404}
    refused = fetch_media(_request(server.url("/img/a.png"), allowed_private_hosts=()), 1.0)
    assert refused["outcome"] == "error" and refused["error"] == "BlockedRequest"
    broken = fetch_media(_request(server.url("/big.png")), 1.0)
    assert broken["outcome"] == "media" and broken["error"] and len(broken["sha256"]) == 64


def test_crawl_keeps_per_host_concurrency_and_rate(server: _Server) -> None:
    config = CrawlConfig(seeds=(server.url("/index.html"),), depth=0, per_host_rate=10,
                         per_host_concurrency=2, allowed_private_hosts=LOOPBACK)
    records = crawl(config)
    media = [r for r in records if r["type"] == "media"]
    assert len(media) == 6 and all(len(r["pdq"]) == 64 for r in media)
    img_times = [t for (path, _), t in zip(server.log, server.times, strict=True)
                 if path.startswith("/img/")]
    assert len(img_times) == 6
    gaps = [b - a for a, b in itertools.pairwise(img_times)]
    # 10 requests/s to the host: starts 0.1 s apart (a little slack for scheduling).
    assert min(gaps) > 0.07, gaps
    assert server.max_in_flight <= 2


def test_media_disallowed_by_robots_is_not_fetched(tmp_path: Any) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            paths.append(self.path)
            if self.path == "/robots.txt":
                body, ctype = b"User-agent: *\nDisallow: /private/\n", "text/plain"
            elif self.path == "/":
                body, ctype = (b'<html><body><img src="/private/a.png"><img src="/pub/b.png">'
                               b'</body></html>'), "text/html"
            else:
                body, ctype = _png(2), "image/png"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    paths: list[str] = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        records = crawl(CrawlConfig(seeds=(f"http://127.0.0.1:{httpd.server_address[1]}/",),
                                    depth=0, per_host_rate=100, obey_robots=True,
                                    allowed_private_hosts=LOOPBACK))
    finally:
        httpd.shutdown()
        httpd.server_close()
    [refused] = [r for r in records if r["type"] == "error"]
    assert refused["url"].endswith("/private/a.png") and "robots" in refused["message"]
    assert [r["media_url"].rsplit("/", 1)[-1] for r in records if r["type"] == "media"] == [
        "b.png"]
    assert "/private/a.png" not in paths


@pytest.mark.parametrize("workers", [1, 2])
def test_crawl_media_fetch_errors_are_records(server: _Server, workers: int) -> None:
    """Refused, oversized and failing media give error records; the crawl goes on."""
    page = (f'<img src="{server.url("/img/ok.png")}">'
            f'<img src="{server.url("/img/x.png", host="localhost")}">'
            f'<img src="{server.url("/to?u=http://169.254.169.254/x.png")}">'
            f'<img src="{server.url("/big.png")}"><img src="{server.url("/forbidden.png")}">')

    class Page(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = f"<html><body>{page}</body></html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        records = crawl(CrawlConfig(
            seeds=(f"http://127.0.0.1:{httpd.server_address[1]}/",), depth=0,
            per_host_rate=100, max_media_bytes=40_000, workers=workers,
            allowed_private_hosts=LOOPBACK))
    finally:
        httpd.shutdown()
        httpd.server_close()
    errors = sorted((r["url"], r["error"]) for r in records if r["type"] == "error")
    assert errors == sorted([
        (server.url("/img/x.png", host="localhost"), "BlockedRequest"),
        ("http://169.254.169.254/x.png", "BlockedRequest"),  # the redirect target
        (server.url("/big.png"), "MediaTooLarge"),
        (server.url("/forbidden.png"), "HttpError"),
    ]), errors
    [ok] = [r for r in records if r["type"] == "media"]
    assert ok["media_url"].endswith("/img/ok.png") and len(ok["pdq"]) == 64


def test_a_seed_that_is_a_media_file_is_fingerprinted(server: _Server) -> None:
    """Scrapy fetched this one (a seed); the engine's SHA-256 is the record's."""
    import hashlib

    records = crawl(CrawlConfig(seeds=(server.url("/img/seed.png"),), depth=0,
                                per_host_rate=100, allowed_private_hosts=LOOPBACK))
    [media] = [r for r in records if r["type"] == "media"]
    assert media["sha256"] == hashlib.sha256(_png(1)).hexdigest() and len(media["pdq"]) == 64
    assert media["robust"] and media["page_url"] == media["media_url"]
