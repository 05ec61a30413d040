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
    assert set(item) == {"seq", "op", "entry_id", "bank", "at", "fingerprints", "purpose",
                         "opinion", "media_kind", "resync"}
    assert item["op"] == "add" and item["entry_id"] == entry.pk and item["bank"] == bank.name
    assert (item["purpose"], item["opinion"], item["media_kind"], item["resync"]) == (
        "victim_images", "positive", "image", False)
    assert {(f["kind"], f["value"]) for f in item["fingerprints"]} == {
        ("pdq", "a" * 64), ("md5", "b" * 32)}
    pdq = next(f for f in item["fingerprints"] if f["kind"] == "pdq")
    # Provenance travels with the hash (issue 20): partners can weigh reduced decodes.
    assert set(pdq) == {"kind", "value", "quality", "variant", "decode", "engine", "frames"}
    assert (pdq["quality"], pdq["variant"]) == (100, "original")
    assert pdq["decode"] in ("exact", "reduced")


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


def test_share_changes_heal_the_feed_without_a_409(
        make_bank, add_entry, withdraw, make_partner, partner_client):
    """Issue 18: after a share change the next pages restate the difference; a client that
    applies every page ends with exactly the shared banks' current entries."""
    from anshim.exchange import services

    first, later, third = make_bank("first"), make_bank("later"), make_bank("third")
    add_entry(first)
    old = add_entry(later)
    gone_later = add_entry(later)
    add_entry(third)
    add_entry(first)  # the partner's cursor will be past the other banks' entries
    partner, token = make_partner(first)
    api = partner_client(token)
    state: dict = {}
    items, cursor = api.feed_all()
    apply(state, items)
    assert state == current(first)

    services.share_banks(partner, ["later"])
    withdraw(gone_later)
    new = add_entry(later)
    items, cursor = api.feed_all(cursor)
    restated = [i for i in items if i["resync"]]
    assert {i["entry_id"] for i in restated} == {old.pk}  # gone_later was withdrawn since
    apply(state, items)
    assert new.pk in state and state == current(first, later)

    # Unsharing sends withdrawals of everything of that bank; sharing and unsharing in a row
    # (two epochs behind) still ends right.
    services.unshare_banks(partner, ["later"])
    services.share_banks(partner, ["third"])
    items, cursor = api.feed_all(cursor, limit=1)
    assert {i["entry_id"] for i in items if i["op"] == "withdraw"} >= {old.pk, new.pk}
    assert not any(i["bank"] == "later" and i["op"] == "add" for i in items)
    apply(state, items)
    assert state == current(first, third)

    # Nothing left to restate: the next page is the ordinary, empty feed.
    response = api.get("/fingerprints", cursor=cursor).json()
    assert response["items"] == [] and response["has_more"] is False and response["as_of"]


def test_a_share_change_in_the_middle_of_a_resync(
        make_bank, add_entry, make_partner, partner_client):
    from anshim.exchange import services

    a, b = make_bank("a"), make_bank("b")
    for _ in range(5):
        add_entry(a)
        add_entry(b)
    partner, token = make_partner(a)
    api = partner_client(token)
    state: dict = {}
    items, cursor = api.feed_all()
    apply(state, items)
    services.share_banks(partner, ["b"])
    page = api.get("/fingerprints", cursor=cursor, limit=2).json()  # two of five restated
    apply(state, page["items"])
    services.unshare_banks(partner, ["b"])  # ... and b is unshared again mid-way
    items, _ = api.feed_all(page["cursor"], limit=2)
    assert not any(i["bank"] == "b" and i["op"] == "add" for i in items)
    apply(state, items)
    assert state == current(a)


def test_cursor_survives_key_rotation_and_a_secret_key_rotation(
        make_bank, add_entry, make_partner, partner_client, settings, tmp_path, monkeypatch):
    from anshim.security import keyring, rotation

    monkeypatch.delenv("ANSHIM_KEYS", raising=False)
    settings.ANSHIM_KEY_FILE = tmp_path / "keyring.json"
    keyring.set_keyring(None)
    bank = make_bank()
    add_entry(bank)
    _, token = make_partner(bank)
    api = partner_client(token)
    _, cursor = api.feed_all()
    rotation.rotate()  # `anshim keys rotate`: a new primary encryption key
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    new = add_entry(bank)
    response = api.get("/fingerprints", cursor=cursor)
    assert response.status_code == 200
    assert [i["entry_id"] for i in response.json()["items"]] == [new.pk]
    keyring.set_keyring(None)


def test_low_quality_pdq_is_not_shared(make_bank, make_partner, partner_client, db):
    from anshim.erasure.services import HashValue, register_fingerprints

    bank = make_bank()
    _, token = make_partner(bank)
    register_fingerprints(bank, fingerprints=[HashValue("pdq", "1" * 64, quality=49),
                                              HashValue("md5", "2" * 32)],
                          source="import", actor=None)
    register_fingerprints(bank, fingerprints=[HashValue("pdq", "3" * 64, quality=50)],
                          source="import", actor=None)
    items, _ = partner_client(token).feed_all()
    shared = {(f["kind"], f["value"]) for i in items for f in i["fingerprints"]}
    assert shared == {("md5", "2" * 32), ("pdq", "3" * 64)}


def test_allow_lists_are_published_as_negatives(make_bank, add_entry, make_partner,
                                                partner_client):
    allow = make_bank("fp", purpose="allow_list")
    entry = add_entry(allow)
    _, token = make_partner(allow)
    items, _ = partner_client(token).feed_all()
    assert [(i["entry_id"], i["purpose"], i["opinion"]) for i in items] == [
        (entry.pk, "allow_list", "negative")]


def test_a_video_is_one_vpdq_signal_in_threatexchange_format(
        make_bank, make_partner, partner_client, db):
    import json

    from anshim.erasure.models import BankEntry

    bank = make_bank()
    _, token = make_partner(bank)
    entry = BankEntry.objects.create(bank=bank, source="import", media_kind="video")
    for n, (value, quality) in enumerate([("a" * 64, 100), ("b" * 64, 30), ("c" * 64, 80)]):
        Fingerprint.objects.create(entry=entry, bank=bank, kind="vpdq", value=value,
                                   quality=quality, frame_number=n, timestamp=n * 1.5)
    from anshim.erasure.models import BankChange

    BankChange.objects.create(bank=bank, entry_id=entry.pk, op="add")
    items, _ = partner_client(token).feed_all()
    (vpdq,) = [f for f in items[0]["fingerprints"] if f["kind"] == "vpdq"]
    # threatexchange's VpdqCompactFeature string: "pdq,quality,timestamp" (f"{t:.3}"); the
    # frame of quality 30 is not shared.
    assert json.loads(vpdq["value"]) == [f"{'a' * 64},100,0.0", f"{'c' * 64},80,3.0"]
    assert vpdq["frames"] == 2 and items[0]["media_kind"] == "video"


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


def test_a_feed_page_costs_the_same_queries_for_5_or_50_entries(
        make_bank, add_entry, make_partner, partner_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    bank = make_bank()
    _, token = make_partner(bank)
    api = partner_client(token)
    api.get("/fingerprints")  # token and bucket rows exist from here on
    counts = []
    for n in (5, 50):
        for _ in range(n - (5 if n == 50 else 0)):
            add_entry(bank)
        with CaptureQueriesContext(connection) as queries:
            assert len(api.get("/fingerprints", limit=1000).json()["items"]) == n
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert counts[1] <= 12
