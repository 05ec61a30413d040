"""POST /feedback and /feedback/hashes: partners report removals and per-hash opinions, only
about their own platform and the banks shared with them (issue 16 item 7, issue 18 item 4)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from anshim.exchange.models import PartnerFeedback

pytestmark = pytest.mark.django_db

WHEN = "2026-11-20T10:00:00+09:00"


@pytest.fixture
def platform(db: Any) -> Any:
    from anshim.erasure.models import Platform

    return Platform.objects.create(name="Video", domains="video.example\ncdn.video.example")


@pytest.fixture
def other_platform(db: Any) -> Any:
    from anshim.erasure.models import Platform

    return Platform.objects.create(name="Other", domains="other.example")


@pytest.fixture
def sighting(db: Any) -> Any:
    from anshim.erasure.models import Sighting

    def make(entry: Any, platform: Any, url: str, media: str = "") -> Any:
        now = timezone.now()
        return Sighting.objects.create(
            page_url=url, media_url=media or url + ".jpg", platform=platform,
            entry_id=entry.pk, bank_name=entry.bank.name, match_kind="pdq", distance=3,
            status="confirmed", first_seen=now, last_seen=now)

    return make


def sent_request(s: Any) -> Any:
    """A sent takedown request for one sighting (with a case, as the workflow makes them)."""
    from anshim.cases.models import Case, Channel, Person
    from anshim.erasure.models import TakedownItem, TakedownRequest

    case = Case.objects.create(code=f"AN-FB{s.pk}-XX", person=Person.objects.create(
        age_group="14to17"), channel=Channel.PHONE)
    s.case = case
    s.save(update_fields=["case"])
    req = TakedownRequest.objects.create(case=case, platform=s.platform, state="sent",
                                         subject="notice", body="notice",
                                         sent_at=timezone.now())
    TakedownItem.objects.create(request=req, sighting=s)
    return req


def test_feedback_on_a_url_of_its_platform_is_recorded_and_applied(
        make_bank, add_entry, make_partner, partner_client, platform, sighting):
    bank = make_bank()
    entry = add_entry(bank)
    s = sighting(entry, platform, "https://video.example/watch?v=1")
    req = sent_request(s)
    partner, token = make_partner(bank, platform=platform)
    response = partner_client(token).post("/feedback", {
        "action": "removed", "url": "https://video.example/watch?v=1", "acted_at": WHEN,
        "reference": "post-123"})
    assert response.status_code == 201, response.content
    item = PartnerFeedback.objects.get(pk=response.json()["id"])
    assert (item.partner, item.action, item.url, item.reference) == (
        partner, "removed", "https://video.example/watch?v=1", "post-123")
    assert item.acted_at.isoformat() == "2026-11-20T01:00:00+00:00"
    assert item.applied_at is not None
    s.refresh_from_db()
    req.refresh_from_db()
    assert s.status == "removed"
    assert req.state == "removed"  # the request it answers closes, as a specialist's would


def test_a_url_of_another_platform_is_a_404_that_touches_nothing(
        make_bank, add_entry, make_partner, partner_client, platform, other_platform,
        sighting):
    """The attack of issue 16: a partner marking someone else's sighting removed."""
    bank = make_bank()
    entry = add_entry(bank)
    theirs = sighting(entry, other_platform, "https://other.example/p/1")
    _, token = make_partner(bank, platform=platform)
    api = partner_client(token)
    nowhere = api.post("/feedback", {"action": "removed", "url": "https://nowhere.example/x",
                                     "acted_at": WHEN})
    elsewhere = api.post("/feedback", {"action": "removed", "url": "https://other.example/p/1",
                                       "acted_at": WHEN})
    # The same answer whether or not we know the URL: nothing is revealed.
    assert elsewhere.status_code == nowhere.status_code == 404
    assert elsewhere.json() == nowhere.json() == {"error": "not_found", "detail": "Not found."}
    theirs.refresh_from_db()
    assert theirs.status == "confirmed"
    assert not PartnerFeedback.objects.exists()


def test_a_partner_without_a_platform_cannot_report_urls(
        make_bank, add_entry, make_partner, partner_client, platform, sighting):
    bank = make_bank()
    s = sighting(add_entry(bank), platform, "https://video.example/watch?v=2")
    _, token = make_partner(bank)
    assert partner_client(token).post("/feedback", {
        "action": "removed", "url": s.page_url, "acted_at": WHEN}).status_code == 404
    s.refresh_from_db()
    assert s.status == "confirmed"


def test_entry_feedback_touches_only_its_platforms_sightings(
        make_bank, add_entry, make_partner, partner_client, platform, other_platform,
        sighting):
    bank = make_bank()
    entry = add_entry(bank)
    mine = sighting(entry, platform, "https://video.example/a")
    theirs = sighting(entry, other_platform, "https://other.example/a")
    _, token = make_partner(bank, platform=platform)
    response = partner_client(token).post("/feedback", {
        "action": "not_found", "entry_id": entry.pk, "acted_at": WHEN})
    assert response.status_code == 201
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("removed", "confirmed")


def test_a_url_on_its_platform_of_an_unshared_bank_is_not_touched(
        make_bank, add_entry, make_partner, partner_client, platform, sighting):
    shared, private = make_bank("shared"), make_bank("private")
    s = sighting(add_entry(private), platform, "https://video.example/b")
    _, token = make_partner(shared, platform=platform)
    response = partner_client(token).post("/feedback", {
        "action": "removed", "url": s.page_url, "acted_at": WHEN})
    assert response.status_code == 201  # its own URL: recorded, but nothing of ours applies
    s.refresh_from_db()
    assert s.status == "confirmed"
    assert PartnerFeedback.objects.get().applied_at is None


def test_refused_moves_only_its_platforms_requests(
        make_bank, add_entry, make_partner, partner_client, platform, sighting):
    bank = make_bank()
    s = sighting(add_entry(bank), platform, "https://video.example/c")
    req = sent_request(s)
    _, token = make_partner(bank, platform=platform)
    assert partner_client(token).post("/feedback", {
        "action": "refused", "url": s.page_url, "acted_at": WHEN}).status_code == 201
    req.refresh_from_db()
    assert req.state == "refused"


def test_feedback_on_an_entry_and_on_a_withdrawn_entry(
        make_bank, add_entry, withdraw, make_partner, partner_client):
    bank = make_bank()
    live, gone = add_entry(bank), add_entry(bank)
    withdraw(gone)
    _, token = make_partner(bank)
    api = partner_client(token)
    for entry in (live, gone):
        response = api.post("/feedback", {"action": "not_found", "entry_id": entry.pk,
                                          "acted_at": WHEN})
        assert response.status_code == 201


def test_entry_of_an_unshared_bank_is_404(make_bank, add_entry, make_partner, partner_client):
    private = add_entry(make_bank("private"))
    _, token = make_partner(make_bank("shared"))
    response = partner_client(token).post(
        "/feedback", {"action": "removed", "entry_id": private.pk, "acted_at": WHEN})
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_entry"
    assert not PartnerFeedback.objects.exists()


@pytest.mark.parametrize("body", [
    {"action": "removed", "acted_at": WHEN},
    {"action": "deleted", "url": "https://x.example/", "acted_at": WHEN},
    {"action": "removed", "url": "not a url", "acted_at": WHEN},
    {"action": "removed", "url": "javascript:alert(1)", "acted_at": WHEN},
    {"action": "removed", "url": "https://x.example/" + "a" * 2000, "acted_at": WHEN},
    {"action": "removed", "url": "https://x.example/", "acted_at": "2026-11-20T10:00:00"},
    {"action": "removed", "url": "https://x.example/", "acted_at": "yesterday"},
    {"action": "removed", "url": "https://x.example/"},
    {"action": "removed", "entry_id": 0, "acted_at": WHEN},
    {"action": "removed", "entry_id": 2**70, "acted_at": WHEN},
])
def test_bad_feedback_is_422(make_bank, make_partner, partner_client, body):
    _, token = make_partner(make_bank())
    response = partner_client(token).post("/feedback", body)
    assert response.status_code == 422, response.content
    assert not PartnerFeedback.objects.exists()


@pytest.mark.parametrize("acted_at", ["2026-11-20T10:00:00+18:37", "2026-11-20T10:00:00-23:59"])
def test_extreme_offsets_are_stored_in_utc(make_bank, add_entry, make_partner, partner_client,
                                           acted_at):
    bank = make_bank()
    entry = add_entry(bank)
    _, token = make_partner(bank)
    response = partner_client(token).post(
        "/feedback", {"action": "removed", "entry_id": entry.pk, "acted_at": acted_at})
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("acted_at", ["1999-12-31T23:00:00Z", "0331-05-25T05:22:12+18:37"])
def test_implausible_times_are_422(make_bank, make_partner, partner_client, acted_at):
    _, token = make_partner(make_bank())
    response = partner_client(token).post(
        "/feedback", {"action": "removed", "url": "https://x.example/", "acted_at": acted_at})
    assert response.status_code == 422


def test_booleans_are_not_numbers(make_bank, make_partner, partner_client):
    _, token = make_partner(make_bank())
    api = partner_client(token)
    assert api.post("/feedback", {"action": "removed", "entry_id": True,
                                  "acted_at": WHEN}).status_code == 422
    assert api.post("/lookup", {"hashes": [{"kind": "md5", "value": "a" * 32}],
                                "max_distance": False}).status_code == 422


def test_numeric_strings_are_not_numbers(make_bank, make_partner, partner_client):
    # The OpenAPI says integer: "5" must be refused like any other schema violation.
    _, token = make_partner(make_bank())
    api = partner_client(token)
    assert api.post("/feedback", {"action": "removed", "entry_id": "5",
                                  "acted_at": WHEN}).status_code == 422
    assert api.post("/lookup", {"hashes": [{"kind": "md5", "value": "a" * 32}],
                                "max_distance": "5"}).status_code == 422
    assert api.post("/lookup", {"hashes": [{"kind": "md5", "value": "a" * 32}],
                                "max_distance": 5.0}).status_code == 200


@pytest.mark.parametrize(("word", "action"), [
    ("Blocked", "confirmed"), ("NotBlocked", "disputed"), ("PendingReview", "pending_review"),
    ("affirmative", "confirmed"), ("negative", "disputed"), ("seen", "seen"),
    ("confirmed", "confirmed"),
])
def test_per_hash_opinions_in_stopncii_and_ncmec_vocabularies(
        make_bank, add_entry, make_partner, partner_client, word, action):
    bank = make_bank()
    entry = add_entry(bank, pdq="a" * 64, md5="b" * 32)
    _, token = make_partner(bank)
    response = partner_client(token).post("/feedback/hashes", {"items": [
        {"kind": "pdq", "value": "A" * 64, "opinion": word, "reason": "logo",
         "acted_at": WHEN},
        {"kind": "md5", "value": "c" * 32, "opinion": word, "acted_at": WHEN},
    ]})
    assert response.status_code == 200, response.content
    assert response.json()["results"] == [
        {"status": "recorded", "entry_ids": [entry.pk]}, {"status": "not_found", "entry_ids": []}]
    item = PartnerFeedback.objects.get()
    assert (item.action, item.entry_id, item.hash_kind, item.hash_value, item.reason) == (
        action, entry.pk, "pdq", "a" * 64, "logo")


def test_a_confirmed_hash_removes_the_partners_copies_only(
        make_bank, add_entry, make_partner, partner_client, platform, other_platform,
        sighting):
    bank = make_bank()
    entry = add_entry(bank, md5="d" * 32)
    mine = sighting(entry, platform, "https://video.example/d")
    theirs = sighting(entry, other_platform, "https://other.example/d")
    _, token = make_partner(bank, platform=platform)
    assert partner_client(token).post("/feedback/hashes", {"items": [
        {"kind": "md5", "value": "d" * 32, "opinion": "Blocked", "acted_at": WHEN}],
    }).status_code == 200
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("removed", "confirmed")


def test_hashes_of_unshared_banks_are_not_found(make_bank, add_entry, make_partner,
                                                partner_client):
    add_entry(make_bank("private"), pdq="e" * 64)
    _, token = make_partner(make_bank("shared"))
    response = partner_client(token).post("/feedback/hashes", {"items": [
        {"kind": "pdq", "value": "e" * 64, "opinion": "disputed", "acted_at": WHEN}]})
    assert response.json()["results"] == [{"status": "not_found", "entry_ids": []}]
    assert not PartnerFeedback.objects.exists()


@pytest.mark.parametrize("item", [
    {"kind": "pdq", "value": "z" * 64, "opinion": "Blocked", "acted_at": WHEN},
    {"kind": "md5", "value": "a" * 64, "opinion": "Blocked", "acted_at": WHEN},
    {"kind": "pdq", "value": "a" * 64, "opinion": "maybe", "acted_at": WHEN},
    {"kind": "pdq", "value": "a" * 64, "opinion": "Blocked"},
    {"kind": "vpdq", "value": "not json at all, really", "opinion": "seen", "acted_at": WHEN},
])
def test_bad_hash_feedback_is_422(make_bank, add_entry, make_partner, partner_client, item):
    bank = make_bank()
    add_entry(bank)
    _, token = make_partner(bank)
    response = partner_client(token).post("/feedback/hashes", {"items": [item]})
    assert response.status_code == 422, response.content
    assert response.json()["error"] == "invalid_input"


def test_every_feedback_item_is_audited(make_bank, add_entry, make_partner, partner_client):
    from anshim.security.models import AuditEntry

    bank = make_bank()
    entry = add_entry(bank, md5="f" * 32)
    _, token = make_partner(bank)
    api = partner_client(token)
    api.post("/feedback", {"action": "removed", "entry_id": entry.pk, "acted_at": WHEN})
    api.post("/feedback/hashes", {"items": [
        {"kind": "md5", "value": "f" * 32, "opinion": "NotBlocked", "acted_at": WHEN}]})
    rows = list(AuditEntry.objects.filter(action="exchange.feedback")
                .values_list("target_pk", "reason"))
    ids = [str(pk) for pk in PartnerFeedback.objects.order_by("pk").values_list("pk", flat=True)]
    assert rows == [(ids[0], "removed"), (ids[1], "disputed")]
