"""Fixtures shared by the whole suite: staff users of every role, signed-in clients."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ENGINE_DIRS = ("fingerprint", "matching", "crawl", "stats")
# The suite is no production: the development SECRET_KEY and key files are fine here, also in
# the servers and workers that tests start (tests/security/test_startup.py clears it).
os.environ.setdefault("ANSHIM_DEMO", "1")
TESTS_DIR = Path(__file__).parent


def _serialise_live_server_on_shared_sqlite() -> None:
    """On the in-memory SQLite test database, Django's live server hands every request thread
    the test's one database connection. Two requests at once (a page's form POST and the
    browser's own /favicon.ico, say) then share one connection and its transaction state:
    `atomic` blocks of one thread end another's ("pop from empty list"), and the connection is
    left inside a transaction that locks the tables for the rest of the run. Requests are
    therefore answered one at a time there (each response read whole inside the lock);
    PostgreSQL gives each thread its own connection and keeps the threaded server as it is."""
    import threading

    from django.test import testcases

    class SerialLiveServerThread(testcases.LiveServerThread):
        def _create_server(self, connections_override: Any = None) -> Any:
            httpd = super()._create_server(connections_override=connections_override)
            if not connections_override:
                return httpd
            lock = threading.Lock()
            set_app = httpd.set_app

            def serial_app(app: Any) -> Any:
                def call(environ: Any, start_response: Any) -> Any:
                    with lock:
                        result = app(environ, start_response)
                        try:
                            return [b"".join(result)]
                        finally:
                            close = getattr(result, "close", None)
                            if close is not None:
                                close()
                return call

            httpd.set_app = lambda app: set_app(serial_app(app))
            return httpd

    # pytest-django imports the class when it starts the server, so the subclass is used.
    testcases.LiveServerThread = SerialLiveServerThread  # type: ignore[misc]


_serialise_live_server_on_shared_sqlite()


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    # Engine tests never touch the database: mark them so the PostgreSQL pass can skip them.
    for item in items:
        rel = Path(str(item.fspath)).relative_to(TESTS_DIR).parts
        if rel and rel[0] in ENGINE_DIRS:
            item.add_marker(pytest.mark.engine)


ROLES = ("counselor", "erasure", "prevention", "expert", "supervisor", "admin")
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    from anshim.security.models import User

    counter = {"n": 0}

    def make(role: str, username: str | None = None, **extra: Any) -> Any:
        counter["n"] += 1
        username = username or f"{role}{counter['n']}"
        return User.objects.create_user(
            username=username, password=PASSWORD, role=role,
            display_name=extra.pop("display_name", username), **extra,
        )

    return make


@pytest.fixture
def login_client(client: Any) -> Callable[[Any], Any]:
    """Sign a user in with a confirmed TOTP device, as the real login flow leaves them."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    def do_login(user: Any, c: Any = None) -> Any:
        c = c or client
        device, _ = TOTPDevice.objects.get_or_create(user=user, name="test", confirmed=True)
        c.force_login(user)
        session = c.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        return c

    return do_login


@pytest.fixture(autouse=True)
def _private_audit_anchors(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test's database gets its own audit anchor file: an anchor that another test's
    chain signed would (rightly) fail `audit.verify_chain()` here."""
    import uuid

    settings.ANSHIM_AUDIT_ANCHOR_FILE = (
        tmp_path_factory.getbasetemp() / f"audit-anchors-{uuid.uuid4().hex}.jsonl")


def _is_transactional(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and (marker.kwargs.get("transaction") or
                               (marker.args and marker.args[0] is True)):
        return True
    return bool({"transactional_db", "live_server"} & set(request.fixturenames))


@pytest.fixture(autouse=True)
def _clear_committed_audit(request: pytest.FixtureRequest) -> Any:
    """Transactional tests commit audit entries; the append-only triggers would block the
    flush that ends such a test, so remove them first with the triggers lifted.

    Requesting `transactional_db` here makes its flush run after this clean-up."""
    if not _is_transactional(request):
        yield
        return
    request.getfixturevalue("transactional_db")
    yield
    from anshim.security.audit_triggers import suspended_triggers
    from anshim.security.models import AuditEntry, AuditHead

    with suspended_triggers():
        AuditEntry.objects.all().delete()
    AuditHead.objects.all().delete()


# --- Browser ------------------------------------------------------------------------------
# One Playwright instance and one Chromium for the whole session: Playwright's sync API cannot
# run two instances at once in a process. Chromium is Debian's (`make test` installs it).
CHROMIUM = Path(os.environ.get("ANSHIM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (make test does)")
    # Playwright's sync API keeps an event loop in this thread; the ORM calls that tests make
    # around it are ordinary synchronous calls.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
