"""GET /fingerprints: the change feed of shared banks, paginated and resumable."""

from __future__ import annotations

import random

import pytest

from anshim.erasure.models import Fingerprint
from anshim.exchange.feed import encode_cursor

pytestmark = pytest.mark.django_db


def apply(state: dict[int, set[tuple[str, str]]], items: list[dict]) -> None:
    """What a partner does with feed items: the naive client the docs describe."""
    for item in items:
        if item["op"] == "add":
            state[item["entry_id"]] = {(f["kind"], f["value"]) for f in item["fingerprints"]}
        else:
            state.pop(item["entry_id"], None)


def current(*banks) -> dict[int, set[tuple[str, str]]]:
    out: dict[int, set[tuple[str, str]]] = {}
    for entry_id, kind, value in Fingerprint.objects.filter(entry__bank__in=banks).values_list(
            "entry_id", "kind", "value"):
        out.setdefault(entry_id, set()).add((kind, value))
    return out


def test_empty_feed(make_bank, make_partner, partner_client):
    _, token = make_partner(make_bank())
    response = partner_client(token).get("/fingerprints")
    assert response.status_code == 200
    body = response.json()
    assert body["items"] == [] and body["has_more"] is False and body["cursor"]


def test_additions_carry_fingerprints_and_nothing_about_the_case(
        make_bank, add_entry, make_partner, partner_client):
    bank = make_bank()
    entry = add_entry(bank, pdq="a" * 64, md5="b" * 32)
    _, token = make_partner(bank)
    items, _ = partner_client(token).feed_all()
    assert len(items) == 1
    item = items[0]
    assert set(item) == {"seq", "op", "entry_id", "bank", "at", "fingerprints"}
    assert item["op"] == "add" and item["entry_id"] == entry.pk and item["bank"] == bank.name
    assert {(f["kind"], f["value"]) for f in item["fingerprints"]} == {
        ("pdq", "a" * 64), ("md5", "b" * 32)}


def test_only_shared_banks_are_visible(make_bank, add_entry, make_partner, partner_client):
    shared, private = make_bank("shared"), make_bank("private")
    add_entry(shared)
    add_entry(private)
    _, token = make_partner(shared)
    items, _ = partner_client(token).feed_all()
    assert {i["bank"] for i in items} == {"shared"}
    _, nothing = make_partner()
    assert partner_client(nothing).feed_all()[0] == []


def test_pages_are_in_seq_order_and_resume_from_any_cursor(
        make_bank, add_entry, make_partner, partner_client):
    bank = make_bank()
    for _ in range(7):
        add_entry(bank)
    _, token = make_partner(bank)
    api = partner_client(token)
    first = api.get("/fingerprints", limit=3).json()
    assert len(first["items"]) == 3 and first["has_more"] is True
    rest, cursor = api.feed_all(first["cursor"], limit=3)
    seqs = [i["seq"] for i in first["items"] + rest]
    assert seqs == sorted(seqs) and len(set(seqs)) == 7
    # Replaying from the middle cursor gives the same items again: resumable and stable.
    assert api.feed_all(first["cursor"], limit=2)[0] == rest
    # Caught up: the last cursor returns nothing new until something changes.
    again = api.get("/fingerprints", cursor=cursor).json()
    assert again["items"] == [] and again["has_more"] is False
    new = add_entry(bank)
    later = api.get("/fingerprints", cursor=cursor).json()
    assert [i["entry_id"] for i in later["items"]] == [new.pk]


def test_withdrawal_after_sync_appears_as_a_tombstone(
        make_bank, add_entry, withdraw, make_partner, partner_client):
    bank = make_bank()
    keep, gone = add_entry(bank), add_entry(bank)
    _, token = make_partner(bank)
    api = partner_client(token)
    state: dict = {}
    items, cursor = api.feed_all()
    apply(state, items)
    assert set(state) == {keep.pk, gone.pk}
    withdraw(gone)
    items, cursor = api.feed_all(cursor)
    assert [(i["op"], i["entry_id"], i["fingerprints"]) for i in items] == [
        ("withdraw", gone.pk, [])]
    apply(state, items)
    assert state == current(bank)


def test_added_then_withdrawn_before_sync_never_leaks_its_fingerprints(
        make_bank, add_entry, withdraw, make_partner, partner_client):
    bank = make_bank()
    gone = add_entry(bank, pdq="c" * 64)
    keep = add_entry(bank)
    withdraw(gone)
    _, token = make_partner(bank)
    items, _ = partner_client(token).feed_all()
    # Compacted: no addition for the withdrawn entry, only its withdrawal.
    assert [(i["op"], i["entry_id"]) for i in items] == [
        ("add", keep.pk), ("withdraw", gone.pk)]
    assert "c" * 64 not in str(items)
    state: dict = {}
    apply(state, items)
    assert state == current(bank)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_sync_schedule_ends_with_exactly_the_current_set(
        seed, make_bank, add_entry, withdraw, make_partner, partner_client):
    rng = random.Random(seed)
    shared, other = make_bank("shared"), make_bank("other")
    _, token = make_partner(shared)
    api = partner_client(token)
    live: list = []
    state: dict = {}
    cursor = None
    for _ in range(60):
        roll = rng.random()
        if roll < 0.55 or not live:
            live.append(add_entry(rng.choice([shared, shared, other])))
        elif roll < 0.85:
            withdraw(live.pop(rng.randrange(len(live))))
        else:
            items, cursor = api.feed_all(cursor, limit=rng.choice([1, 2, 5, 50]))
            apply(state, items)
    items, cursor = api.feed_all(cursor, limit=3)
    apply(state, items)
    assert state == current(shared)
    # And a partner that starts from scratch now agrees.
    fresh: dict = {}
    apply(fresh, api.feed_all()[0])
    assert fresh == state


@pytest.mark.parametrize("cursor", ["garbage", "MTIz", "1:abc", "x" * 300, "%00"])
def test_bad_cursor_is_400(make_bank, make_partner, partner_client, cursor):
    _, token = make_partner(make_bank())
    response = partner_client(token).get("/fingerprints", cursor=cursor)
    assert response.status_code in (400, 422)
    assert response.json()["detail"]


def test_cursor_of_another_partner_is_refused(make_bank, make_partner, partner_client):
    bank = make_bank()
    alice, _ = make_partner(bank)
    _, bob_token = make_partner(bank)
    response = partner_client(bob_token).get("/fingerprints", cursor=encode_cursor(alice, 1))
    assert response.status_code == 400
    assert response.json()["error"] == "bad_cursor"


@pytest.mark.parametrize("limit", [0, -1, 1001, "x"])
def test_bad_limit_is_422(make_bank, make_partner, partner_client, limit):
    _, token = make_partner(make_bank())
    assert partner_client(token).get("/fingerprints", limit=limit).status_code == 422


def test_sharing_or_unsharing_a_bank_asks_for_a_resync(
        make_bank, add_entry, make_partner, partner_client):
    from anshim.exchange import services

    first, later = make_bank("first"), make_bank("later")
    add_entry(first)
    old = add_entry(later)
    partner, token = make_partner(first)
    api = partner_client(token)
    _, cursor = api.feed_all()
    services.share_banks(partner, ["later"])
    response = api.get("/fingerprints", cursor=cursor)
    assert response.status_code == 409
    assert response.json()["error"] == "resync_required"
    # Starting over gives the whole new view, the earlier entries of the new bank included.
    items, cursor = api.feed_all()
    assert old.pk in {i["entry_id"] for i in items}
    services.unshare_banks(partner, ["later"])
    assert api.get("/fingerprints", cursor=cursor).status_code == 409
    state: dict = {}
    apply(state, api.feed_all()[0])
    assert state == current(first)


def test_crop_grid_variants_are_not_shared(make_bank, make_partner, add_entry, partner_client):
    """Issue 8: an entry's crop-grid fingerprints stay with us; original and trim are shared."""
    bank = make_bank("robust-share")
    _, token = make_partner(bank)
    entry = add_entry(bank, pdq="a" * 64)
    Fingerprint.objects.create(entry=entry, bank=bank, kind="pdq", value="b" * 64, variant="trim")
    Fingerprint.objects.create(entry=entry, bank=bank, kind="pdq", value="c" * 64,
                               variant="crop-39-56-74-91")
    Fingerprint.objects.create(entry=entry, bank=bank, kind="pdq", value="d" * 64,
                               variant="trim-crop-0-0-50-50")
    items = partner_client(token).get("/fingerprints").json()["items"]
    shared = {f["value"] for item in items for f in item["fingerprints"]}
    assert "a" * 64 in shared and "b" * 64 in shared
    assert "c" * 64 not in shared and "d" * 64 not in shared
