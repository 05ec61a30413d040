"""SSRF guard: loopback, private, link-local and metadata addresses are refused after DNS
resolution and on every redirect, by the urllib fetches and by the Scrapy crawl, unless the
source explicitly allows the host (issue 16, item 13)."""

from __future__ import annotations

import http.server
import threading
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest

from anshim.crawl import CrawlConfig, crawl
from anshim.crawl.netguard import BlockedAddress, HostPolicy, guarded_urlopen, is_forbidden_ip


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "100.100.100.200", "0.0.0.0", "::1", "fe80::1", "fd00:ec2::254",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "255.255.255.255", "::",
])
def test_non_public_addresses_are_forbidden(address: str) -> None:
    assert is_forbidden_ip(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_forbidden_ip(address)


def test_check_url_resolves_names_and_honours_the_allow_list() -> None:
    strict = HostPolicy()
    for url in ("http://127.0.0.1/", "http://localhost:8000/x", "http://[::1]/",
                "http://169.254.169.254/latest/meta-data/", "http://0x7f000001/"):
        with pytest.raises((BlockedAddress, ValueError)):
            strict.check_url(url)
    with pytest.raises(ValueError):
        strict.check_url("file:///etc/passwd")
    allowing = HostPolicy.allowing(["127.0.0.1"])
    allowing.check_url("http://127.0.0.1:8000/")
    with pytest.raises(BlockedAddress):  # another name for the same address is not allowed
        allowing.check_url("http://localhost:8000/")


class _Site:
    """A loopback server: /ok answers, /to?u=URL redirects there."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/to?u="):
                    self.send_response(302)
                    self.send_header("Location", self.path[len("/to?u="):])
                    self.end_headers()
                    return
                body = b"<html><body>ok</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def loopback_site() -> Iterator[_Site]:
    site = _Site()
    try:
        yield site
    finally:
        site.server.shutdown()
        site.server.server_close()


def test_urlopen_refuses_loopback_and_redirects_into_it(loopback_site: _Site) -> None:
    with pytest.raises(BlockedAddress):
        guarded_urlopen(loopback_site.url("127.0.0.1", "/ok"), timeout=5)
    allowed = HostPolicy.allowing(["127.0.0.1"])
    with guarded_urlopen(loopback_site.url("127.0.0.1", "/ok"), timeout=5,
                         policy=allowed) as resp:
        assert resp.status == 200
    # An allowed host that redirects to another non-public name: refused at the redirect.
    hop = loopback_site.url("127.0.0.1", "/to?u=" + loopback_site.url("localhost", "/ok"))
    with pytest.raises((BlockedAddress, urllib.error.URLError)):
        guarded_urlopen(hop, timeout=5, policy=allowed)
    # ... and a redirect to a scheme other than http(s) is refused as well.
    with pytest.raises((ValueError, urllib.error.URLError)):
        guarded_urlopen(loopback_site.url("127.0.0.1", "/to?u=file:///etc/passwd"), timeout=5,
                        policy=allowed)


def test_the_connection_itself_is_guarded(loopback_site: _Site) -> None:
    # Even when the pre-check is skipped (a name that resolves differently the second time),
    # the address connected to is checked: the opener alone refuses loopback.
    from anshim.crawl.netguard import guarded_opener

    with pytest.raises(urllib.error.URLError) as info:
        guarded_opener(HostPolicy()).open(loopback_site.url("localhost", "/ok"), timeout=5)
    assert isinstance(info.value.reason, BlockedAddress)


def _errors(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == "error"]


def test_crawl_refuses_loopback_unless_the_source_allows_it(loopback_site: _Site) -> None:
    seed = loopback_site.url("127.0.0.1", "/ok")
    refused = crawl(CrawlConfig(seeds=(seed,), depth=0, per_host_rate=100))
    assert not [r for r in refused if r["type"] == "page"]
    [error] = _errors(refused)
    assert error["error"] == "BlockedRequest" and "not a public address" in error["message"]
    allowed = crawl(CrawlConfig(seeds=(seed,), depth=0, per_host_rate=100,
                                allowed_private_hosts=("127.0.0.1",)))
    assert [r["url"] for r in allowed if r["type"] == "page"] == [seed]


def test_crawl_refuses_media_links_and_redirects_to_other_private_hosts(tmp_path: Any) -> None:
    root = tmp_path
    (root / "img").mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(root), **kw)

        def do_GET(self) -> None:
            if self.path == "/redirect.png":
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{port}/img/secret.png?via=302")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    (root / "img" / "secret.png").write_bytes(b"\x89PNG not served to the crawler")
    (root / "index.html").write_text(
        f'<html><body><img src="http://localhost:{port}/img/secret.png">'
        f'<img src="http://[::ffff:127.0.0.2]:{port}/img/secret.png">'
        f'<img src="/redirect.png"></body></html>')
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        records = crawl(CrawlConfig(seeds=(f"http://127.0.0.1:{port}/index.html",), depth=0,
                                    per_host_rate=100, allowed_private_hosts=("127.0.0.1",)))
    finally:
        server.shutdown()
        server.server_close()
    assert [r for r in records if r["type"] == "page"]
    # Nothing from another private name is fetched: not linked directly, not via a redirect.
    assert not [r for r in records if r["type"] == "media" and "sha256" in r]
    blocked = [r for r in _errors(records) if r["error"] == "BlockedRequest"]
    assert sorted(r["url"].rsplit("/", 1)[-1] for r in blocked) == [
        "secret.png", "secret.png", "secret.png?via=302"], records


def test_the_crawls_name_resolver_passes_on_public_addresses_only() -> None:
    """What the connection is made to, after the middleware's check: a name that now
    resolves to loopback (DNS rebinding) leaves the connection no address to use."""
    from twisted.internet.address import IPv4Address

    from anshim.crawl.spider import _GuardedNameResolver

    class Inner:
        def resolveHostName(self, receiver: Any, host: str, *args: Any) -> None:
            receiver.resolutionBegan(None)
            for ip in ("127.0.0.1", "10.0.0.7", "93.184.216.34"):
                receiver.addressResolved(IPv4Address("TCP", ip, 80))
            receiver.resolutionComplete()

    class Receiver:
        def __init__(self) -> None:
            self.got: list[str] = []
            self.done = False

        def resolutionBegan(self, resolution: Any) -> None:
            pass

        def addressResolved(self, address: Any) -> None:
            self.got.append(address.host)

        def resolutionComplete(self) -> None:
            self.done = True

    strict, allowing = Receiver(), Receiver()
    _GuardedNameResolver(Inner(), HostPolicy()).resolveHostName(strict, "rebind.test")
    _GuardedNameResolver(Inner(), HostPolicy.allowing(["rebind.test"])).resolveHostName(
        allowing, "rebind.test")
    assert strict.got == ["93.184.216.34"] and strict.done
    assert allowing.got == ["127.0.0.1", "10.0.0.7", "93.184.216.34"]
