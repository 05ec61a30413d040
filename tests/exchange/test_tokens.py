"""Partner tokens: issued once, stored hashed, expire, rotate, revoke; API refusals say why."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.utils import timezone

from anshim.exchange import services
from anshim.exchange.models import PartnerToken
from anshim.exchange.tokens import TokenError, authenticate

pytestmark = pytest.mark.django_db


def test_token_is_stored_only_as_its_sha256_digest(make_partner):
    partner, token = make_partner()
    record = PartnerToken.objects.get(partner=partner)
    assert record.digest == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith("anx_") and len(token) > 40
    assert record.prefix == token[:12]
    stored = list(PartnerToken.objects.values_list("prefix", "digest"))
    assert all(token not in value for row in stored for value in row)


def test_authenticate_returns_the_partner(make_partner):
    partner, token = make_partner()
    assert authenticate(token).partner == partner


@pytest.mark.parametrize("bad", ["", "nope", "anx_" + "x" * 43, "anx_" + "x" * 500])
def test_unknown_or_malformed_tokens_are_refused(make_partner, bad):
    make_partner()
    with pytest.raises(TokenError) as info:
        authenticate(bad)
    assert info.value.reason == "invalid_token"


def test_expired_token_is_refused(make_partner):
    _, token = make_partner(expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(TokenError) as info:
        authenticate(token)
    assert info.value.reason == "token_expired"


def test_revocation_is_immediate(make_partner):
    partner, token = make_partner()
    assert services.revoke(partner) == 1
    with pytest.raises(TokenError) as info:
        authenticate(token)
    assert info.value.reason == "token_revoked"


def test_rotation_without_grace_revokes_the_old_token(make_partner):
    partner, old = make_partner()
    new = services.rotate(partner).token
    assert authenticate(new).partner == partner
    with pytest.raises(TokenError):
        authenticate(old)


def test_rotation_with_grace_keeps_the_old_token_for_a_while(make_partner):
    partner, old = make_partner()
    new = services.rotate(partner, grace=dt.timedelta(hours=1)).token
    assert authenticate(old).partner == partner
    assert authenticate(new).partner == partner
    record = PartnerToken.objects.get(prefix=old[:12])
    assert record.expires_at is not None
    assert record.expires_at <= timezone.now() + dt.timedelta(hours=1)


def test_disabled_partner_is_refused(make_partner):
    partner2, token2 = make_partner()
    partner2.active = False
    partner2.save()
    with pytest.raises(TokenError) as info:
        authenticate(token2)
    assert info.value.reason == "partner_inactive"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc", "Token x"])
def test_api_without_a_valid_token_is_401(client, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/api/v1/exchange/fingerprints", headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"]


def test_api_says_when_a_token_expired_or_was_revoked(make_partner, partner_client):
    _, token = make_partner(expires_at=timezone.now() - dt.timedelta(minutes=1))
    response = partner_client(token).get("/fingerprints")
    assert response.status_code == 401
    assert response.json()["detail"].startswith("token_expired")
    partner2, token2 = make_partner()
    services.revoke(partner2)
    response = partner_client(token2).get("/fingerprints")
    assert response.status_code == 401
    assert response.json()["detail"].startswith("token_revoked")


def test_scopes_are_enforced(make_partner, partner_client):
    _, token = make_partner(scopes=["lookup"])
    api = partner_client(token)
    assert api.get("/fingerprints").status_code == 403
    assert api.post("/feedback", {"action": "removed", "url": "https://x.example/1",
                                  "acted_at": "2026-01-01T00:00:00Z"}).status_code == 403
    assert "missing_scope" in api.get("/fingerprints").json()["detail"]


def test_unknown_scope_is_rejected():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.parse_scopes("read,write")
