"""Interop: a real hasher-matcher-actioner (OpenMediaMatch) subscribed to a live Anshim server.

HMA's own source (../shared/interop/hma) runs in a virtualenv of its own (.venv-hma, cached)
against its own PostgreSQL database. Anshim is added as an exchange with configuration only:
`pip install` of the adapter, two lines in omm_config.py, and HMA's own HTTP API to create the
exchange and set its token. HMA's `fetch` and `build_indices` commands do the rest, and HMA's
`/m/lookup` answers: a lightly edited copy of a registered image matches, an unrelated image
doesn't, a withdrawal reaches HMA, a share change needs no manual step, an allow-listed image
is not a positive. Also: the adapter installs into a clean virtualenv without Django.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from exchange import interop

pytestmark = [pytest.mark.slow, pytest.mark.interop]

CONFORMANCE = interop.SHARED / "conformance" / "pdq"
REGISTERED = CONFORMANCE / "bridge-mods" / "aaa-orig.jpg"
EDITED = CONFORMANCE / "bridge-mods" / "blur-a-little.jpg"
UNRELATED = CONFORMANCE / "reg-test-input" / "labelme-subset" / "q1050.jpg"
LATER = CONFORMANCE / "reg-test-input" / "labelme-subset" / "q0291.jpg"
ALLOWED = CONFORMANCE / "reg-test-input" / "pen-and-coaster.png"
OTHER = CONFORMANCE / "reg-test-input" / "labelme-subset" / "q2821.jpg"


def test_the_adapter_installs_into_a_clean_virtualenv_without_django(tmp_path: Path) -> None:
    venv = interop.cached_venv(
        "txclient", [str(interop.CLIENT)], [interop.CLIENT / "pyproject.toml"], tmp_path)
    interop.install_client(venv, tmp_path)
    listed = subprocess.run([str(venv / "bin" / "pip"), "list", "--format=freeze"],
                            capture_output=True, text=True, check=True).stdout.lower()
    names = {line.split("==")[0] for line in listed.split()}
    assert {"anshim-threatexchange", "threatexchange", "requests"} <= names
    assert not names & {"django", "anshim", "numba", "scrapy", "twisted", "django-ninja"}
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import sys, anshim_threatexchange, anshim_threatexchange.webhooks; "
         "assert 'django' not in sys.modules and 'anshim' not in sys.modules; "
         "import importlib.resources as r; "
         "assert r.files('anshim_threatexchange').joinpath('py.typed').is_file()"],
        capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HMA:
    """One HMA instance: its config, its database, its server process, its CLI."""

    def __init__(self, venv: Path, source: Path, database_url: str, tmp_path: Path) -> None:
        self.venv, self.src = venv, source / "src"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp_path / "omm_config.py"
        config.write_text(textwrap.dedent(f"""
            from OpenMediaMatch.storage.postgres.impl import DefaultOMMStore
            from threatexchange.content_type.photo import PhotoContent
            from threatexchange.content_type.video import VideoContent
            from threatexchange.exchanges.impl.static_sample import StaticSampleSignalExchangeAPI
            from threatexchange.signal_type.md5 import VideoMD5Signal
            from threatexchange.signal_type.pdq.signal import PdqSignal

            # The two lines a platform adds for Anshim (docs/partners.md):
            from anshim_threatexchange import AnshimSignalExchangeAPI
            EXCHANGES = [StaticSampleSignalExchangeAPI, AnshimSignalExchangeAPI]

            DATABASE_URI = {database_url!r}
            PRODUCTION = False
            ROLE_HASHER = True
            ROLE_MATCHER = True
            ROLE_CURATOR = True
            UI_ENABLED = False
            TASK_FETCHER = False
            TASK_INDEXER = False
            TASK_INDEX_CACHE = False
            STORAGE_IFACE_INSTANCE = DefaultOMMStore(
                signal_types=[PdqSignal, VideoMD5Signal],
                content_types=[PhotoContent, VideoContent],
                exchange_types=EXCHANGES,
            )
        """))
        self.env = {**os.environ, "OMM_CONFIG": str(config), "FLASK_DEBUG": "0",
                    "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}"}
        for name in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "DATABASE_URL"):
            self.env.pop(name, None)
        self.server: subprocess.Popen[bytes] | None = None
        self.log = tmp_path / "hma.log"

    def flask(self, *args: str, **env: str) -> str:
        result = subprocess.run(
            [str(self.venv / "bin" / "flask"), "--app", "OpenMediaMatch.app", *args],
            cwd=self.src, env={**self.env, **env}, capture_output=True, text=True,
            timeout=300, check=False)
        assert result.returncode == 0, f"flask {args}: {result.stdout}\n{result.stderr}"
        return result.stdout + result.stderr

    def migrate(self) -> None:
        self.flask("db", "upgrade", "--directory", "OpenMediaMatch/migrations",
                   MIGRATION_COMMAND="1")

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.server = subprocess.Popen(
                [str(self.venv / "bin" / "flask"), "--app", "OpenMediaMatch.app", "run",
                 "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.src, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        import requests

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/c/exchanges/apis", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            assert self.server.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.3)
        raise AssertionError("HMA did not start:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()

    def sync(self) -> str:
        """HMA's own fetch and index build, as its background tasks would run them (without
        the index cache, each lookup loads the newest index)."""
        return self.flask("fetch") + self.flask("build_indices")

    def matches(self, image: Path) -> dict[str, Any]:
        import requests

        with open(image, "rb") as f:
            response = requests.post(self.url + "/m/lookup", params={"bypass_coinflip": "true"},
                                     files={"photo": (image.name, f)}, timeout=60)
        assert response.ok, response.text
        return dict(response.json().get("pdq") or {})


@pytest.fixture
def hma(tmp_path: Path) -> Any:
    interop.require_hma()
    admin_url = interop.require_postgres()
    venv = interop.cached_venv(
        "hma", [str(interop.HMA_SOURCE)],
        [interop.HMA_SOURCE / "pyproject.toml", interop.HMA_SOURCE / "version.txt",
         interop.CLIENT / "pyproject.toml"], tmp_path)
    interop.install_client(venv, tmp_path)
    source = interop.copy_tree(interop.HMA_SOURCE, tmp_path / "hma")
    import psycopg

    name = f"hma_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    instance = HMA(venv, source, f"postgresql+psycopg2://root@127.0.0.1:5432/{name}", tmp_path)
    try:
        instance.migrate()
        instance.start()
        yield instance
    finally:
        instance.stop()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _register(bank: Any, path: Path) -> Any:
    from anshim.erasure.services import register_fingerprints
    from anshim.fingerprint import fingerprint_file

    return register_fingerprints(bank, fingerprints=fingerprint_file(str(path)),
                                 source="import", actor=None)


def test_hma_subscribes_to_anshim_with_configuration_only(
        committed_audit: Any, live_server: Any, hma: HMA, make_bank: Any, make_partner: Any,
        withdraw: Any) -> None:
    import requests

    from anshim.exchange import services

    victims, later = make_bank("victims"), make_bank("later")
    allow = make_bank("known-fp", purpose="allow_list")
    registered = _register(victims, REGISTERED)
    # A second picture: threatexchange 1.2.17's PDQ index loses its only entry when HMA
    # pickles a one-entry index (faiss multi-hash); real banks hold more than one.
    _register(victims, OTHER)
    _register(later, LATER)
    _register(allow, ALLOWED)
    partner, token = make_partner(victims, allow)

    # Configuration only: HMA's API creates the exchange and stores the token.
    assert "anshim" in requests.get(hma.url + "/c/exchanges/apis", timeout=10).json()
    schema = requests.get(hma.url + "/c/exchanges/api/anshim/schema", timeout=10).json()
    base_url = next(f for f in schema["config_schema"]["fields"] if f["name"] == "base_url")
    assert base_url["required"] and base_url["help"]
    assert [f["name"] for f in schema["credentials_schema"]["fields"]] == ["token"]
    created = requests.post(hma.url + "/c/exchanges", json={
        "bank": "ANSHIM", "api": "anshim", "api_json": {"base_url": live_server.url + "/"}},
        timeout=10)
    assert created.status_code == 201, created.text
    creds = requests.post(hma.url + "/c/exchanges/api/anshim",
                          json={"credential_json": {"token": token}}, timeout=10)
    assert creds.json()["has_set_authentification"] is True, creds.text

    log = hma.sync()
    assert "ANSHIM" in hma.matches(EDITED), log  # a lightly edited copy matches
    assert hma.matches(UNRELATED) == {}  # an unrelated image doesn't
    assert hma.matches(ALLOWED) == {}  # an allow-listed image is not a positive
    assert hma.matches(LATER) == {}  # not shared (yet)
    # HMA shows how far its copy is: the checkpoint's get_progress_timestamp.
    status = requests.get(hma.url + "/c/exchange/ANSHIM/status", timeout=10).json()
    assert status["last_fetch_succeeded"] is True, status
    assert abs(status["checkpoint_ts"] - time.time()) < 600, status

    # A withdrawal and a share change: HMA's next fetch follows both, nothing done by hand.
    withdraw(registered)
    services.share_banks(partner, ["later"])
    hma.sync()
    assert hma.matches(EDITED) == {}
    assert "ANSHIM" in hma.matches(LATER)
    assert hma.matches(ALLOWED) == {}
