"""POST /lookup: up to 1,000 PDQ or MD5 hashes against the shared banks."""

from __future__ import annotations

import pytest

from exchange.conftest import flip, random_md5, random_pdq

pytestmark = pytest.mark.django_db


def hashes(*pairs):
    return {"hashes": [{"kind": k, "value": v} for k, v in pairs]}


def test_pdq_near_match_gives_entry_and_distance(
        make_bank, add_entry, make_partner, partner_client, rng):
    bank = make_bank(threshold=31)
    base = random_pdq(rng)
    entry = add_entry(bank, pdq=base)
    add_entry(bank)
    _, token = make_partner(bank)
    near, far = flip(base, 10, rng), flip(base, 40, rng)
    response = partner_client(token).post("/lookup", hashes(("pdq", near), ("pdq", far)))
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert results[0] == {"kind": "pdq", "value": near,
                          "matches": [{"entry_id": entry.pk, "bank": bank.name, "distance": 10}]}
    assert results[1]["matches"] == []


def test_md5_exact_match(make_bank, add_entry, make_partner, partner_client, rng):
    bank = make_bank()
    md5 = random_md5(rng)
    entry = add_entry(bank, md5=md5)
    _, token = make_partner(bank)
    response = partner_client(token).post(
        "/lookup", hashes(("md5", md5.upper()), ("md5", random_md5(rng))))
    results = response.json()["results"]
    assert results[0]["value"] == md5
    assert results[0]["matches"] == [{"entry_id": entry.pk, "bank": bank.name, "distance": 0}]
    assert results[1]["matches"] == []


def test_answers_only_hold_ids_and_distances(
        make_bank, add_entry, make_partner, partner_client, rng):
    bank = make_bank()
    base = random_pdq(rng)
    add_entry(bank, pdq=base)
    _, token = make_partner(bank)
    body = partner_client(token).post("/lookup", hashes(("pdq", base))).json()
    assert set(body) == {"results"}
    assert set(body["results"][0]["matches"][0]) == {"entry_id", "bank", "distance"}


def test_unshared_and_disabled_banks_never_match(
        make_bank, add_entry, make_partner, partner_client, rng):
    from anshim.erasure.services import update_bank

    shared, private, off = make_bank("shared"), make_bank("private"), make_bank("off")
    value = random_pdq(rng)
    in_private = add_entry(private, pdq=value)
    in_off = add_entry(off, pdq=value)
    in_shared = add_entry(shared, pdq=value)
    _, token = make_partner(shared, off)
    update_bank(off, enabled=False)
    matches = partner_client(token).post("/lookup", hashes(("pdq", value))).json()
    ids = [m["entry_id"] for m in matches["results"][0]["matches"]]
    assert ids == [in_shared.pk]
    assert in_private.pk not in ids and in_off.pk not in ids


def test_each_bank_threshold_and_max_distance_apply(
        make_bank, add_entry, make_partner, partner_client, rng):
    strict, loose = make_bank("strict", threshold=8), make_bank("loose", threshold=31)
    base = random_pdq(rng)
    a, b = add_entry(strict, pdq=base), add_entry(loose, pdq=base)
    _, token = make_partner(strict, loose)
    api = partner_client(token)
    query = flip(base, 12, rng)
    found = api.post("/lookup", hashes(("pdq", query))).json()["results"][0]["matches"]
    assert [m["entry_id"] for m in found] == [b.pk]
    found = api.post("/lookup", {**hashes(("pdq", query)), "max_distance": 11}).json()
    assert found["results"][0]["matches"] == []
    found = api.post("/lookup", hashes(("pdq", flip(base, 5, rng)))).json()
    assert sorted(m["entry_id"] for m in found["results"][0]["matches"]) == sorted([a.pk, b.pk])


def test_withdrawn_entries_stop_matching(
        make_bank, add_entry, withdraw, make_partner, partner_client, rng):
    bank = make_bank()
    base, md5 = random_pdq(rng), random_md5(rng)
    entry = add_entry(bank, pdq=base, md5=md5)
    _, token = make_partner(bank)
    api = partner_client(token)
    assert api.post("/lookup", hashes(("pdq", base))).json()["results"][0]["matches"]
    withdraw(entry)
    body = api.post("/lookup", hashes(("pdq", base), ("md5", md5))).json()
    assert all(r["matches"] == [] for r in body["results"])


def test_allow_listed_hashes_match_nothing(
        make_bank, add_entry, make_partner, partner_client, rng):
    bank, allow = make_bank("victims"), make_bank("allow", purpose="allow_list", threshold=4)
    meme, md5 = random_pdq(rng), random_md5(rng)
    add_entry(bank, pdq=meme, md5=md5)
    add_entry(allow, pdq=meme, md5=md5)
    _, token = make_partner(bank)
    body = partner_client(token).post("/lookup", hashes(("pdq", meme), ("md5", md5))).json()
    assert all(r["matches"] == [] for r in body["results"])


def test_batch_of_1000_is_accepted(make_bank, make_partner, partner_client, rng):
    _, token = make_partner(make_bank())
    batch = [("pdq", random_pdq(rng)) for _ in range(500)] + [
        ("md5", random_md5(rng)) for _ in range(500)]
    response = partner_client(token).post("/lookup", hashes(*batch))
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1000


@pytest.mark.parametrize("body", [
    {"hashes": []},
    {"hashes": [{"kind": "pdq", "value": "z" * 64}]},
    {"hashes": [{"kind": "pdq", "value": "a" * 63}]},
    {"hashes": [{"kind": "md5", "value": "a" * 64}]},
    {"hashes": [{"kind": "sha1", "value": "a" * 40}]},
    {"hashes": [{"kind": "pdq"}]},
    {"hashes": "a" * 64},
    {"hashes": [{"kind": "pdq", "value": "a" * 64}], "max_distance": 65},
    {},
])
def test_malformed_input_is_422(make_bank, make_partner, partner_client, body):
    _, token = make_partner(make_bank())
    response = partner_client(token).post("/lookup", body)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_oversized_batch_is_422(make_bank, make_partner, partner_client):
    _, token = make_partner(make_bank())
    body = {"hashes": [{"kind": "md5", "value": "a" * 32}] * 1001}
    response = partner_client(token).post("/lookup", body)
    assert response.status_code == 422


def test_not_json_is_4xx(make_bank, make_partner, partner_client):
    _, token = make_partner(make_bank())
    api = partner_client(token)
    response = api.client.post("/api/v1/exchange/lookup", "{not json",
                               content_type="application/json", headers=api._headers())
    assert 400 <= response.status_code < 500


def test_sha256_is_looked_up_like_the_feed_publishes_it(
        make_bank, make_partner, partner_client, db):
    """Issue 18: every kind the feed publishes can be looked up."""
    from anshim.erasure.services import HashValue, register_fingerprints

    bank = make_bank()
    entry = register_fingerprints(bank, fingerprints=[HashValue("sha256", "ab" * 32)],
                                  source="import", actor=None)
    _, token = make_partner(bank)
    response = partner_client(token).post("/lookup", hashes(("sha256", "AB" * 32),
                                                            ("sha256", "cd" * 32)))
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert results[0]["matches"] == [{"entry_id": entry.pk, "bank": bank.name, "distance": 0}]
    assert results[1]["matches"] == []


def test_a_vpdq_signal_from_the_feed_finds_its_video(
        make_bank, make_partner, partner_client, rng, db):
    from anshim.erasure.models import BankEntry, Fingerprint
    from anshim.erasure.services import notify_matchers

    bank, other = make_bank("videos"), make_bank("private")
    frames = [random_pdq(rng) for _ in range(6)]
    for target in (bank, other):
        entry = BankEntry.objects.create(bank=target, source="import", media_kind="video")
        Fingerprint.objects.bulk_create(
            Fingerprint(entry=entry, bank=target, kind="vpdq", value=v, quality=100,
                        frame_number=n, timestamp=float(n)) for n, v in enumerate(frames))
        from anshim.erasure.models import BankChange

        BankChange.objects.create(bank=target, entry_id=entry.pk, op="add")
        if target == bank:
            shared_entry = entry
    notify_matchers()
    _, token = make_partner(bank)
    api = partner_client(token)
    (item,) = api.feed_all()[0]
    (signal,) = [f["value"] for f in item["fingerprints"] if f["kind"] == "vpdq"]
    # A re-encode: every frame a few bits off.
    import json

    edited = json.dumps([f"{flip(v, 4, rng)},90,{n}.0" for n, v in enumerate(frames)])
    unrelated = json.dumps([f"{random_pdq(rng)},90,{n}.0" for n in range(6)])
    response = api.post("/lookup", hashes(("vpdq", signal), ("vpdq", edited),
                                          ("vpdq", unrelated)))
    assert response.status_code == 200, response.content
    exact, near, none = response.json()["results"]
    assert [m["entry_id"] for m in exact["matches"]] == [shared_entry.pk]  # not the private one
    assert exact["matches"][0]["query_percent"] == 100.0
    assert [m["entry_id"] for m in near["matches"]] == [shared_entry.pk]
    assert none["matches"] == []


@pytest.mark.parametrize("value", ['["nonsense"]', "[]", '["' + "a" * 64 + ',101,0"]'])
def test_a_malformed_vpdq_signal_is_422(make_bank, make_partner, partner_client, value):
    _, token = make_partner(make_bank())
    response = partner_client(token).post("/lookup", hashes(("vpdq", value)))
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_input"


def test_a_body_over_the_upload_limit_is_413_not_500(make_bank, make_partner, partner_client,
                                                     settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    _, token = make_partner(make_bank())
    frames = ",".join(f'"{"a" * 64},100,{n}.0"' for n in range(300))
    response = partner_client(token).post("/lookup", hashes(("vpdq", f"[{frames}]")))
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
