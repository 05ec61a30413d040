"""What the lookup path caches per process, and why it never shows what it must not.

Verified tokens and each partner's shared banks are kept for `tokens.CACHE_SECONDS`; changes
made through this process drop them at once, changes made elsewhere (another worker: simulated
here by queryset updates, which send no signals) within that delay. A withdrawn entry never
matches, whatever the matcher's poll interval: every hit is re-checked in the database.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from anshim.erasure.models import Bank
from anshim.erasure.signals import bank_changed
from anshim.exchange import lookup, services, tokens
from anshim.exchange.models import BankShare, PartnerToken
from exchange.conftest import random_md5, random_pdq

pytestmark = pytest.mark.django_db


def pdq_body(*values):
    return {"hashes": [{"kind": "pdq", "value": v} for v in values]}


class Clock:
    """Stands in for time.monotonic (the caches' clock) for one test."""

    def __init__(self, monkeypatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr(tokens.time, "monotonic", lambda: self.now)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def test_a_verified_token_is_not_looked_up_again_within_the_ttl(
        make_partner, clock, django_assert_num_queries):
    partner, token = make_partner()
    assert tokens.authenticate_cached(token).partner == partner
    with django_assert_num_queries(0):
        assert tokens.authenticate_cached(token).partner == partner
    clock.now += tokens.CACHE_SECONDS + 0.1
    with django_assert_num_queries(1):
        tokens.authenticate_cached(token)


def test_revocation_elsewhere_is_honoured_after_the_ttl(make_partner, clock):
    _, token = make_partner()
    tokens.authenticate_cached(token)
    # Another process revokes it: this one is not told.
    PartnerToken.objects.update(revoked_at=timezone.now())
    assert tokens.authenticate_cached(token)  # still trusted, for at most CACHE_SECONDS
    clock.now += tokens.CACHE_SECONDS + 0.1
    with pytest.raises(tokens.TokenError) as info:
        tokens.authenticate_cached(token)
    assert info.value.reason == "token_revoked"
    with pytest.raises(tokens.TokenError):  # refusals are never cached
        tokens.authenticate_cached(token)


@pytest.mark.parametrize("change", ["revoke", "rotate", "deactivate", "save_token"])
def test_changes_in_this_process_take_effect_at_once(make_partner, partner_client, change):
    partner, token = make_partner()
    api = partner_client(token)
    assert api.get("/fingerprints").status_code == 200  # now cached
    if change == "revoke":
        services.revoke(partner)
    elif change == "rotate":
        services.rotate(partner)
    elif change == "deactivate":
        partner.active = False
        partner.save()
    else:
        record = PartnerToken.objects.get(partner=partner)
        record.revoked_at = timezone.now()
        record.save()
    response = api.get("/fingerprints")
    assert response.status_code == 401, response.content


def test_expiry_is_checked_on_every_request_even_when_cached(make_partner, monkeypatch):
    expires = timezone.now() + dt.timedelta(minutes=1)
    _, token = make_partner(expires_at=expires)
    tokens.authenticate_cached(token)
    monkeypatch.setattr(tokens.timezone, "now", lambda: expires + dt.timedelta(seconds=1))
    with pytest.raises(tokens.TokenError) as info:
        tokens.authenticate_cached(token)
    assert info.value.reason == "token_expired"


def test_malformed_tokens_are_refused_without_a_query(django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(tokens.TokenError):
        tokens.authenticate_cached("nope")


def test_lookup_after_the_first_costs_no_token_or_bank_query(
        make_bank, make_partner, partner_client, rng, settings, django_assert_max_num_queries):
    settings.ANSHIM_MATCHER_POLL_SECONDS = 3600.0
    _, token = make_partner(make_bank())
    api = partner_client(token)
    assert api.post("/lookup", pdq_body(random_pdq(rng))).status_code == 200
    # No hit: the rate limit's UPDATE is the only query left.
    with django_assert_max_num_queries(1):
        assert api.post("/lookup", pdq_body(random_pdq(rng))).status_code == 200


def test_unsharing_a_bank_takes_effect_at_once(
        make_bank, add_entry, make_partner, partner_client, rng):
    bank = make_bank()
    value = random_pdq(rng)
    add_entry(bank, pdq=value)
    partner, token = make_partner(bank)
    api = partner_client(token)
    assert api.post("/lookup", pdq_body(value)).json()["results"][0]["matches"]
    services.unshare_banks(partner, [bank.name])
    assert api.post("/lookup", pdq_body(value)).json()["results"][0]["matches"] == []


def test_shared_banks_elsewhere_are_seen_after_the_ttl(make_bank, make_partner, clock):
    bank = make_bank()
    partner, _ = make_partner()
    assert lookup.shared_banks(partner) == {}
    BankShare.objects.bulk_create([BankShare(partner=partner, bank=bank)])  # no signals
    assert lookup.shared_banks(partner) == {}
    clock.now += tokens.CACHE_SECONDS + 0.1
    assert lookup.shared_banks(partner) == {bank.pk: bank.name}


def test_a_bank_disabled_elsewhere_never_matches_meanwhile(
        make_bank, add_entry, make_partner, partner_client, rng):
    bank = make_bank()
    value, md5 = random_pdq(rng), random_md5(rng)
    add_entry(bank, pdq=value, md5=md5)
    _, token = make_partner(bank)
    api = partner_client(token)
    body = {"hashes": [{"kind": "pdq", "value": value}, {"kind": "md5", "value": md5}]}
    assert all(r["matches"] for r in api.post("/lookup", body).json()["results"])
    Bank.objects.filter(pk=bank.pk).update(enabled=False)  # no signal: the list stays cached
    assert all(r["matches"] == [] for r in api.post("/lookup", body).json()["results"])


def test_withdrawal_is_invisible_before_the_matcher_polls(
        make_bank, add_entry, withdraw, make_partner, partner_client, rng, settings):
    settings.ANSHIM_MATCHER_POLL_SECONDS = 3600.0
    bank = make_bank()
    value = random_pdq(rng)
    entry = add_entry(bank, pdq=value)
    _, token = make_partner(bank)
    api = partner_client(token)
    assert api.post("/lookup", pdq_body(value)).json()["results"][0]["matches"]
    # Not committed (the test's transaction): the on-commit notice never reaches this
    # process's matcher, exactly as for a matcher in another process.
    withdraw(entry)
    assert api.post("/lookup", pdq_body(value)).json()["results"][0]["matches"] == []


def test_bank_changed_drops_shared_banks_and_schedules_webhooks(
        make_bank, make_partner, monkeypatch):
    from anshim.exchange import webhooks

    calls = []
    monkeypatch.setattr(webhooks, "schedule_dispatch", lambda: calls.append(1))
    partner, _ = make_partner(make_bank())
    lookup.shared_banks(partner)
    assert lookup._shared
    bank_changed.send(sender=None)
    assert calls == [1]
    assert not lookup._shared


def test_bulk_imports_reach_webhooks(make_bank, add_entry, make_partner, monkeypatch,
                                     django_capture_on_commit_callbacks):
    from anshim.exchange import webhooks

    calls = []
    monkeypatch.setattr(webhooks, "schedule_dispatch", lambda: calls.append(1))
    bank = make_bank()
    make_partner(bank)
    with django_capture_on_commit_callbacks(execute=True):
        add_entry(bank)  # register_fingerprints: no post_save on BankChange needed
    assert calls


def test_a_failing_webhook_queue_never_fails_the_writer(make_bank, monkeypatch, caplog):
    from anshim.exchange import webhooks

    def broken() -> None:
        raise RuntimeError("queue down")

    monkeypatch.setattr(webhooks, "schedule_dispatch", broken)
    bank_changed.send(sender=None)
    assert "could not queue" in caplog.text
