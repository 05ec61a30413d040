"""Browser fixtures for portal tests: Debian's Chromium driven by Playwright, and a
local static file server (ES modules and workers need http://, not file://).

Nothing is downloaded: Chromium comes from the `chromium` Debian package
(`apt-get install chromium`); `playwright install` is never needed.
"""

from __future__ import annotations

import http.server
import os
import posixpath
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM_PATH = Path(os.environ.get("ANSHIM_CHROMIUM", "/usr/bin/chromium"))

# Offline, quiet, container-friendly: no sandbox (we run as root in CI), no GPU,
# and nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

PORTAL_STATIC_DIR = Path(__file__).resolve().parents[2] / "src" / "anshim" / "portal" / "static"

# Served at "/": gives tests a same-origin page from which to import modules,
# fetch files and start workers.
BLANK_PAGE = b"<!doctype html><meta charset=utf-8><title>anshim test page</title>"


class StaticServer:
    """Serves directories under URL prefixes on 127.0.0.1 (ephemeral port).

    The portal's static directory is mounted at /static/ (so pdq.js is at
    /static/portal/pdq.js, as with Django's STATIC_URL); tests may mount more.
    """

    def __init__(self) -> None:
        self._mounts: dict[str, Path] = {}
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def translate_path(self, path: str) -> str:
                return server._translate(path)

            def do_GET(self) -> None:
                if urllib.parse.urlsplit(self.path).path == "/":
                    self._send_blank_page()
                else:
                    super().do_GET()

            def _send_blank_page(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(BLANK_PAGE)))
                self.end_headers()
                self.wfile.write(BLANK_PAGE)

            def end_headers(self) -> None:
                # Tests edit the files they serve; never let the browser cache them.
                self.send_header("Cache-Control", "no-store")
                super().end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        Handler.extensions_map = {
            **Handler.extensions_map,
            ".js": "text/javascript",  # module scripts need a JavaScript MIME type
            ".mjs": "text/javascript",
            ".webp": "image/webp",
        }
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def mount(self, prefix: str, directory: Path) -> None:
        """Serve `directory` at URL path `prefix` (e.g. "/conformance/")."""
        self._mounts["/" + prefix.strip("/") + "/"] = Path(directory).resolve()

    def url(self, path: str = "/") -> str:
        return self.base_url + "/" + path.lstrip("/")

    def _translate(self, url_path: str) -> str:
        path = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(url_path).path))
        for prefix, directory in sorted(self._mounts.items(), key=lambda m: -len(m[0])):
            if (path + "/").startswith(prefix):
                target = (directory / path[len(prefix) :]).resolve()
                # normpath already removed "..", but refuse symlink escapes too.
                if target == directory or directory in target.parents:
                    return str(target)
        return "/nonexistent"  # 404

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="session")
def static_server() -> Iterator[StaticServer]:
    server = StaticServer()
    server.mount("/static/", PORTAL_STATIC_DIR)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# `chromium_browser` (one Playwright and one Chromium per session) lives in tests/conftest.py.


# ---------------------------------------------------------------- portal pages (live server)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR = Path(
    os.environ.get("ANSHIM_CONFORMANCE_DIR", REPO_ROOT.parent / "shared" / "conformance")
)


@pytest.fixture
def browser_context(chromium_browser):  # -> playwright.sync_api.BrowserContext
    """A fresh browser profile (cookies, history) for one test; nothing leaves 127.0.0.1:
    any other host is answered locally with an empty neutral page."""
    context = chromium_browser.new_context(locale="ko-KR")

    def neutral(route):  # the quick exit's target, or anything else off this machine
        route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>n</title>")

    local = ("http://127.0.0.1", "http://localhost")
    context.route(
        lambda url: url.startswith(("http:", "https:")) and not url.startswith(local), neutral
    )
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def flushable_audit_log(transactional_db):
    """Empty the append-only audit table before the transactional test's flush.

    On SQLite the flush DELETEs every table, and the audit triggers refuse that; the rows are
    removed here with the triggers suspended (an empty table is flushed without a trigger firing).
    PostgreSQL flushes with TRUNCATE, which the row triggers do not see.
    """
    yield
    from anshim.security.audit_triggers import suspended_triggers
    from anshim.security.models import AuditEntry

    with suspended_triggers():
        AuditEntry.objects.all().delete()


@pytest.fixture
def portal_case(db):
    """A case opened through the portal: (case, passphrase)."""
    from anshim.portal import services

    new = services.submit_report({
        "harm_types": ["distribution"], "in_danger": "no", "age_group": "14to17",
        "contact_preference": "portal", "consent_keep_data": True, "urls": [],
    })
    return new.case, new.passphrase


@pytest.fixture
def signed_in_client(client, portal_case):
    """A test client signed in to `portal_case`'s status pages."""
    case, passphrase = portal_case
    response = client.post("/status/sign-in/", {"code": case.code, "passphrase": passphrase})
    assert response.status_code == 302, response.content[:500]
    return client
