"""Behind a TLS-terminating reverse proxy: POSTs pass CSRF, cookies are Secure, and the client
address is the one the trusted proxy saw, never a value the client put in X-Forwarded-For."""

from __future__ import annotations

import http.client
import os
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, RequestFactory

from anshim.security.middleware import client_address

VENV_BIN = Path(sys.executable).parent


def _request(remote: str = "10.0.0.2", forwarded: str | None = None) -> Any:
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_the_peer_is_the_client(settings: Any) -> None:
    settings.ANSHIM_TRUSTED_PROXIES = 0
    assert client_address(_request(forwarded="203.0.113.5")) == "10.0.0.2"


def test_one_trusted_proxy_takes_the_address_it_appended(settings: Any) -> None:
    settings.ANSHIM_TRUSTED_PROXIES = 1
    # The client sent "6.6.6.6"; nginx appended the address it was connected from.
    assert client_address(_request(forwarded="6.6.6.6, 198.51.100.23")) == "198.51.100.23"
    assert client_address(_request(forwarded="198.51.100.23")) == "198.51.100.23"


def test_two_trusted_proxies_count_from_the_right(settings: Any) -> None:
    settings.ANSHIM_TRUSTED_PROXIES = 2
    assert client_address(_request(forwarded="6.6.6.6, 198.51.100.23, 10.0.0.9")) \
        == "198.51.100.23"
    # Fewer hops than proxies: the request did not come through them all.
    assert client_address(_request(forwarded="6.6.6.6")) == "10.0.0.2"


@pytest.mark.parametrize("header", ["", "not-an-address", "6.6.6.6, <script>", " , "])
def test_a_broken_header_falls_back_to_the_peer(settings: Any, header: str) -> None:
    settings.ANSHIM_TRUSTED_PROXIES = 1
    assert client_address(_request(forwarded=header)) == "10.0.0.2"


def test_only_listed_proxies_are_believed(settings: Any) -> None:
    settings.ANSHIM_TRUSTED_PROXIES = 1
    settings.ANSHIM_TRUSTED_PROXY_NETWORKS = ["10.0.0.0/24"]
    assert client_address(_request("10.0.0.2", "198.51.100.23")) == "198.51.100.23"
    # A peer outside the proxy network bypassed the proxy: its header means nothing.
    assert client_address(_request("192.0.2.50", "198.51.100.23")) == "192.0.2.50"


@pytest.mark.django_db
def test_spoofed_addresses_do_not_escape_the_login_lockout(settings: Any, make_user: Any) -> None:
    """A client that changes the first X-Forwarded-For value on every try is still counted
    under the address the proxy saw."""
    from anshim.security.models import AuditEntry

    settings.ANSHIM_TRUSTED_PROXIES = 1
    make_user("counselor", username="kim")
    client = Client()
    statuses = []
    for i in range(settings.AXES_FAILURE_LIMIT + 1):
        response = client.post(
            "/staff/login/", {"username": "kim", "password": "wrong-password-123"},
            REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 198.51.100.23")
        statuses.append(response.status_code)
    assert statuses[-1] == 429
    addresses = set(AuditEntry.objects.values_list("client_address", flat=True))
    assert addresses == {"198.51.100.23"}


def _settings_under(env: dict[str, str]) -> dict[str, Any]:
    code = ("import json, django; django.setup(); from django.conf import settings as s; "
            "print(json.dumps({k: getattr(s, k, None) for k in ('SECURE_PROXY_SSL_HEADER', "
            "'CSRF_TRUSTED_ORIGINS', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', "
            "'ANSHIM_TRUSTED_PROXIES')}))")
    import json

    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "anshim.config.settings", **env}
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                         text=True, check=True, timeout=60)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_https_settings_from_the_environment(tmp_path: Path) -> None:
    values = _settings_under({
        "ANSHIM_HTTPS": "1", "ANSHIM_TRUSTED_PROXIES": "1", "ANSHIM_DATA_DIR": str(tmp_path),
        "ANSHIM_ALLOWED_HOSTS": "anshim.example,.center.example",
    })
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://anshim.example",
                                              "https://*.center.example"]
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["ANSHIM_TRUSTED_PROXIES"] == 1
    explicit = _settings_under({"ANSHIM_HTTPS": "1", "ANSHIM_DATA_DIR": str(tmp_path),
                                "ANSHIM_CSRF_TRUSTED_ORIGINS": "https://a.example:8443"})
    assert explicit["CSRF_TRUSTED_ORIGINS"] == ["https://a.example:8443"]
    plain = _settings_under({"ANSHIM_HTTPS": "0", "ANSHIM_DATA_DIR": str(tmp_path)})
    assert plain["SECURE_PROXY_SSL_HEADER"] is None and plain["ANSHIM_TRUSTED_PROXIES"] == 0


# --- The real thing: gunicorn, with the proxy's headers as nginx sends them ----------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gunicorn_behind_proxy(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    data = tmp_path / "data"
    keys = tmp_path / "keys"
    keys.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "anshim.config.settings",
        "ANSHIM_DATA_DIR": str(data), "ANSHIM_KEY_FILE": str(keys / "keyring.json"),
        "ANSHIM_EVIDENCE_KEY_FILE": str(keys / "evidence.pem"),
        "ANSHIM_SECRET_KEY": secrets.token_urlsafe(50),
        "ANSHIM_HTTPS": "1", "ANSHIM_TRUSTED_PROXIES": "1",
        "ANSHIM_ALLOWED_HOSTS": "anshim.example",
        "ANSHIM_DEBUG": "0",
    }
    env.pop("DATABASE_URL", None)  # its own SQLite file, whatever the suite runs on
    subprocess.run([str(VENV_BIN / "anshim"), "migrate", "-v0"], env=env, check=True,
                   timeout=300)
    port = _free_port()
    server = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "anshim.config.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield port, data / "anshim.sqlite3"
    finally:
        server.terminate()
        server.wait(timeout=30)


PROXY_HEADERS = {
    "Host": "anshim.example",
    "X-Forwarded-Proto": "https",
    # The client claimed 6.6.6.6; nginx appended the address it was connected from.
    "X-Forwarded-For": "6.6.6.6, 198.51.100.23",
}


@pytest.mark.slow
def test_post_through_a_tls_proxy(gunicorn_behind_proxy: tuple[int, Path]) -> None:
    port, database = gunicorn_behind_proxy
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/staff/login/", headers=PROXY_HEADERS)
    page = conn.getresponse()
    html = page.read().decode()
    assert page.status == 200
    cookie_header = page.getheader("Set-Cookie") or ""
    assert "Secure" in cookie_header
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    cookie = re.search(r"csrftoken=([^;]+)", cookie_header)
    assert token and cookie
    body = f"csrfmiddlewaretoken={token.group(1)}&username=kim&password=wrong-password-123"
    conn.request("POST", "/staff/login/", body=body, headers={
        **PROXY_HEADERS, "Origin": "https://anshim.example",
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"csrftoken={cookie.group(1)}",
    })
    response = conn.getresponse()
    text = response.read().decode()
    # Before: 403 (CSRF: origin https://anshim.example does not match http://anshim.example).
    assert response.status == 200, text[:500]
    assert 'role="alert"' in text
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT action, client_address FROM security_auditentry").fetchall()
    assert ("auth.login_failed", "198.51.100.23") in rows
