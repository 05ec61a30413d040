"""POST /feedback: partners report removals; stored, and handed to the takedown hook."""

from __future__ import annotations

import pytest

from anshim.exchange import feedback as feedback_module
from anshim.exchange.models import PartnerFeedback

pytestmark = pytest.mark.django_db

WHEN = "2026-11-20T10:00:00+09:00"


def test_feedback_on_a_url_is_recorded(make_bank, make_partner, partner_client):
    partner, token = make_partner(make_bank())
    response = partner_client(token).post("/feedback", {
        "action": "removed", "url": "https://video.example/watch?v=1", "acted_at": WHEN,
        "reference": "post-123"})
    assert response.status_code == 201, response.content
    item = PartnerFeedback.objects.get(pk=response.json()["id"])
    assert (item.partner, item.action, item.url, item.reference) == (
        partner, "removed", "https://video.example/watch?v=1", "post-123")
    assert item.acted_at.isoformat() == "2026-11-20T01:00:00+00:00"
    assert item.applied_at is None  # no takedown workflow connected yet


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


def test_apply_feedback_hook_marks_feedback_applied(make_bank, make_partner, partner_client):
    seen = []

    def handler(item):
        seen.append((item.action, item.url))
        return True

    feedback_module.register_feedback_handler(handler)
    try:
        _, token = make_partner(make_bank())
        response = partner_client(token).post(
            "/feedback", {"action": "refused", "url": "https://x.example/a", "acted_at": WHEN})
    finally:
        feedback_module._handlers.remove(handler)
    assert seen == [("refused", "https://x.example/a")]
    assert PartnerFeedback.objects.get(pk=response.json()["id"]).applied_at is not None


@pytest.mark.parametrize("acted_at", ["2026-11-20T10:00:00+18:37", "2026-11-20T10:00:00-23:59"])
def test_extreme_offsets_are_stored_in_utc(make_bank, make_partner, partner_client, acted_at):
    _, token = make_partner(make_bank())
    response = partner_client(token).post(
        "/feedback", {"action": "removed", "url": "https://x.example/", "acted_at": acted_at})
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
