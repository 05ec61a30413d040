"""Fixtures for the partner exchange: banks with entries, partners with tokens, an API caller."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client


@pytest.fixture(autouse=True)
def fresh_matcher() -> Iterator[None]:
    # The process-wide matcher caches banks; every test database starts empty.
    from anshim.erasure.matcher import reset_process_matcher

    reset_process_matcher()
    yield
    reset_process_matcher()


@pytest.fixture(autouse=True)
def fresh_partner_caches() -> Iterator[None]:
    # Verified tokens and shared-bank lists are cached per process by primary key, and every
    # test database reuses primary keys.
    from anshim.exchange.lookup import forget_shared_banks
    from anshim.exchange.tokens import forget_cached_tokens

    forget_cached_tokens()
    forget_shared_banks()
    yield
    forget_cached_tokens()
    forget_shared_banks()


def random_pdq(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def flip(pdq: str, bits: int, rng: random.Random) -> str:
    """`pdq` with `bits` distinct bits flipped (Hamming distance exactly `bits`)."""
    value = int(pdq, 16)
    for position in rng.sample(range(256), bits):
        value ^= 1 << position
    return f"{value:064x}"


def random_md5(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


@pytest.fixture
def rng() -> random.Random:
    return random.Random(7)


@pytest.fixture
def make_bank(db: Any) -> Callable[..., Any]:
    from anshim.erasure.services import create_bank

    def make(name: str = "victims", **options: Any) -> Any:
        return create_bank(name, **options)

    return make


@pytest.fixture
def add_entry(db: Any, rng: random.Random) -> Callable[..., Any]:
    """Register an entry of hashes in a bank (as an imported list: no case involved)."""
    from anshim.erasure.services import HashValue, register_fingerprints

    def add(bank: Any, pdq: str | None = None, md5: str | None = None) -> Any:
        rows = [HashValue("pdq", pdq or random_pdq(rng), quality=100),
                HashValue("md5", md5 or random_md5(rng))]
        return register_fingerprints(bank, fingerprints=rows, source="import", actor=None)

    return add


@pytest.fixture
def withdraw(db: Any) -> Callable[..., Any]:
    from anshim.erasure.services import withdraw_entries

    def run(*entries: Any) -> Any:
        return withdraw_entries([getattr(e, "pk", e) for e in entries], actor=None)

    return run


@pytest.fixture
def make_partner(db: Any) -> Callable[..., tuple[Any, str]]:
    """A partner and its token; banks (Bank objects) are shared with it."""
    from anshim.exchange.services import create_partner

    counter = {"n": 0}

    def make(*banks: Any, scopes: Any = ("read", "lookup", "feedback"),
             rate_per_minute: int = 100_000, burst: int = 10_000, **options: Any,
             ) -> tuple[Any, str]:
        counter["n"] += 1
        partner, issued = create_partner(
            options.pop("name", f"platform{counter['n']}"), scopes=scopes,
            banks=[b.name for b in banks], rate_per_minute=rate_per_minute, burst=burst,
            **options,
        )
        return partner, issued.token

    return make


class PartnerClient:
    """Calls the exchange API with a bearer token; returns (status, json)."""

    def __init__(self, token: str) -> None:
        self.client = Client(HTTP_ACCEPT_LANGUAGE="en")
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/v1/exchange{path}", params, headers=self._headers())

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(f"/api/v1/exchange{path}", body,
                                content_type="application/json", headers=self._headers())

    def feed_all(self, cursor: str | None = None, limit: int = 500) -> tuple[list[Any], str]:
        """Follow the feed until caught up; returns (items, last cursor)."""
        items: list[Any] = []
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            response = self.get("/fingerprints", **params)
            assert response.status_code == 200, response.content
            page = response.json()
            items.extend(page["items"])
            cursor = page["cursor"]
            if not page["has_more"]:
                return items, cursor


@pytest.fixture
def partner_client() -> Callable[[str], PartnerClient]:
    return PartnerClient


@pytest.fixture(autouse=True)
def api_only_urls(settings: Any) -> None:
    try:
        import anshim.config.urls  # noqa: F401
    except Exception:  # another app's urls are broken mid-edit: test the API alone
        settings.ROOT_URLCONF = __name__.rsplit(".", 1)[0] + ".urls"


@pytest.fixture
def committed_audit(transactional_db: Any) -> Iterator[None]:
    """For tests that commit (live server): remove the audit entries (append-only triggers
    suspended) before pytest-django flushes the tables."""
    yield
    from anshim.security.audit_triggers import suspended_triggers
    from anshim.security.models import AuditEntry

    with suspended_triggers():
        AuditEntry.objects.all().delete()
    head = getattr(__import__("anshim.security.models", fromlist=["x"]), "AuditHead", None)
    if head is not None:
        head.objects.all().delete()
