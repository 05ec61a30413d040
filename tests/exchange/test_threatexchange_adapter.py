"""AnshimSignalExchangeAPI without a server: paging, ordering within a page, conversion,
opinions, checkpoints, credentials, the webhook verifier."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import pickle
import time

import pytest

pytest.importorskip("threatexchange")

from anshim_threatexchange import (
    TX_MANIFEST,
    AllowLists,
    AnshimCheckpoint,
    AnshimCollabConfig,
    AnshimCredentials,
    AnshimSignalExchangeAPI,
    AnshimSignalMetadata,
    verify_webhook,
)
from threatexchange.exchanges import fetch_state as state
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal

P1, P2, M1 = "a" * 64, "b" * 64, "c" * 32


class FakeClient:
    def __init__(self, pages):
        self.pages = pages
        self.cursors = []
        self.opinions = []

    def feed_page(self, cursor, limit=1000):
        self.cursors.append(cursor)
        return self.pages[len(self.cursors) - 1]

    def hash_opinions(self, items):
        self.opinions.extend(items)
        return {"results": [{"status": "recorded", "entry_ids": [1]} for _ in items]}


def item(op, entry_id, hashes=(), opinion="positive", bank="victims"):
    return {"op": op, "entry_id": entry_id, "bank": bank, "opinion": opinion,
            "purpose": "allow_list" if opinion == "negative" else "victim_images",
            "fingerprints": [{"kind": k, "value": v} for k, v in hashes]}


def collab(**options):
    return AnshimCollabConfig(name="x", base_url="http://127.0.0.1:9/", **options)


def test_manifest_registers_the_api():
    assert TX_MANIFEST.apis == (AnshimSignalExchangeAPI,)
    assert AnshimSignalExchangeAPI.get_name() == "anshim"
    assert collab().api == "anshim"


def test_base_url_is_required_and_every_field_has_help():
    """HMA and the threatexchange CLI build their forms from the dataclass fields."""
    with pytest.raises(TypeError):
        AnshimCollabConfig(name="x")  # type: ignore[call-arg]
    fields = {f.name: f for f in dataclasses.fields(AnshimCollabConfig) if f.init}
    assert fields["base_url"].default is dataclasses.MISSING
    for name in ("base_url", "allow_lists", "token_file"):
        assert fields[name].metadata["help"]
    (token,) = dataclasses.fields(AnshimCredentials)
    assert token.name == "token" and token.metadata["help"]


def test_fetch_pages_until_caught_up_and_merges_to_the_current_set():
    client = FakeClient([
        {"items": [item("add", 1, [("pdq", P1), ("md5", M1)]), item("add", 2, [("pdq", P1)])],
         "cursor": "c1", "has_more": True, "as_of": None},
        {"items": [item("add", 3, [("pdq", P2)]), item("withdraw", 3), item("withdraw", 1)],
         "cursor": "c2", "has_more": False, "as_of": "2026-11-20T01:00:00+00:00"},
    ])
    api = AnshimSignalExchangeAPI(collab(), client)  # type: ignore[arg-type]
    merged: dict = {}
    deltas = list(api.fetch_iter([PdqSignal, VideoMD5Signal], None))
    assert [d.checkpoint.cursor for d in deltas] == ["c1", "c2"]
    assert client.cursors == [None, "c1"]
    # get_progress_timestamp: HMA shows how far the copy is (issue 18).
    assert deltas[0].checkpoint.get_progress_timestamp() is None
    assert deltas[1].checkpoint.get_progress_timestamp() == 1795136400  # 2026-11-20T01:00Z
    for delta in deltas:
        AnshimSignalExchangeAPI.naive_fetch_merge(merged, delta.updates)
    assert set(merged) == {2}
    signals = AnshimSignalExchangeAPI.naive_convert_to_signal_type(
        [PdqSignal, VideoMD5Signal], api.collab, merged)
    # P1 stays: entry 2 still holds it although entry 1 (also P1) was withdrawn.
    assert set(signals[PdqSignal]) == {P1}
    assert signals[PdqSignal][P1].entry_ids == {2}
    assert VideoMD5Signal not in signals


def test_resumes_from_the_checkpoint_and_keeps_its_progress():
    client = FakeClient([{"items": [], "cursor": "c9", "has_more": False}])
    api = AnshimSignalExchangeAPI(collab(), client)  # type: ignore[arg-type]
    deltas = list(api.fetch_iter([PdqSignal], AnshimCheckpoint("c5", 0, 1234)))
    assert [d.updates for d in deltas] == [{}]
    assert client.cursors == ["c5"]
    assert deltas[0].checkpoint.get_progress_timestamp() == 1234


def test_checkpoints_and_records_pickled_by_the_previous_version_still_load():
    """HMA pickles checkpoints and records; the classes gained fields since 0.1."""
    old = AnshimCheckpoint("c1", 5)
    del old.__dict__["progress_time"]
    assert pickle.loads(pickle.dumps(old)).get_progress_timestamp() is None
    meta = AnshimSignalMetadata({1}, {"victims"})
    del meta.__dict__["negative_banks"]
    (opinion,) = pickle.loads(pickle.dumps(meta)).get_as_opinions()
    assert opinion.category == state.SignalOpinionCategory.POSITIVE_CLASS


def test_allow_lists_are_skipped_by_default_and_negative_on_request():
    client = FakeClient([{"items": [item("add", 1, [("pdq", P1)]),
                                    item("add", 2, [("pdq", P2)], "negative", "fp"),
                                    item("add", 3, [("pdq", P1)], "negative", "fp")],
                          "cursor": "c", "has_more": False}])
    (delta,) = AnshimSignalExchangeAPI(collab(), client).fetch_iter(  # type: ignore[arg-type]
        [PdqSignal], None)
    fetched = dict(delta.updates)
    skipped = AnshimSignalExchangeAPI.naive_convert_to_signal_type([PdqSignal], collab(),
                                                                   fetched)
    assert set(skipped[PdqSignal]) == {P1}
    assert [o.category for o in skipped[PdqSignal][P1].get_as_opinions()] == [
        state.SignalOpinionCategory.POSITIVE_CLASS]
    both = AnshimSignalExchangeAPI.naive_convert_to_signal_type(
        [PdqSignal], collab(allow_lists=AllowLists.NEGATIVE), fetched)
    assert both[PdqSignal][P2].get_as_aggregate_opinion().category == (
        state.AggregateSignalOpinionCategory.NEGATIVE_CLASS)
    # A hash both in a bank to act on and in an allow-list is disputed, not a positive.
    assert both[PdqSignal][P1].get_as_aggregate_opinion().category == (
        state.AggregateSignalOpinionCategory.DISPUTED)


def test_vpdq_goes_to_the_signal_type_named_vpdq_when_asked_for():
    class VPDQSignal(PdqSignal):  # stands in for threatexchange's (its name is what counts)
        @classmethod
        def get_name(cls):
            return "vpdq"

    client = FakeClient([{"items": [item("add", 7, [("vpdq", '["' + P1 + ',100,0.0"]')])],
                          "cursor": "c", "has_more": False}])
    (delta,) = AnshimSignalExchangeAPI(collab(), client).fetch_iter(  # type: ignore[arg-type]
        [VPDQSignal], None)
    fetched = dict(delta.updates)
    assert AnshimSignalExchangeAPI.naive_convert_to_signal_type([PdqSignal], collab(),
                                                                fetched) == {}
    out = AnshimSignalExchangeAPI.naive_convert_to_signal_type([VPDQSignal], collab(), fetched)
    assert list(out[VPDQSignal]) == ['["' + P1 + ',100,0.0"]']


def test_report_opinion_and_report_seen_speak_the_feedback_vocabulary():
    client = FakeClient([])
    api = AnshimSignalExchangeAPI(collab(), client)  # type: ignore[arg-type]
    api.report_opinion(PdqSignal, P1, state.SignalOpinion(
        True, state.SignalOpinionCategory.NEGATIVE_CLASS, {"logo"}))
    api.report_opinion(VideoMD5Signal, M1, state.SignalOpinion(
        True, state.SignalOpinionCategory.POSITIVE_CLASS, set()))
    api.report_seen(PdqSignal, P2)
    assert [(o["kind"], o["value"], o["opinion"], o.get("reason", "")) for o in
            client.opinions] == [("pdq", P1, "disputed", "logo"), ("md5", M1, "confirmed", ""),
                                 ("pdq", P2, "seen", "")]


def test_credentials_from_a_token_file_in_the_collab(tmp_path, monkeypatch):
    monkeypatch.delenv("TX_ANSHIM_TOKEN", raising=False)
    path = tmp_path / "token"
    path.write_text("anx_" + "t" * 40 + "\n")
    api = AnshimSignalExchangeAPI.for_collab(collab(token_file=str(path)))
    assert api.client.session.headers["Authorization"] == "Bearer anx_" + "t" * 40
    # HMA passes the credentials it stored from its form: they win.
    api = AnshimSignalExchangeAPI.for_collab(collab(token_file=str(path)),
                                             AnshimCredentials("anx_" + "h" * 40))
    assert api.client.session.headers["Authorization"] == "Bearer anx_" + "h" * 40


def test_the_webhook_verifier_needs_no_django_and_agrees_with_the_server():
    from anshim.security import signing

    body = b'{"event":"fingerprints.changed"}'
    headers = signing.signed_headers("s3cret", body)
    assert verify_webhook("s3cret", headers, body)
    lowered = {k.lower(): v for k, v in headers.items()}
    assert verify_webhook("s3cret", lowered, body)
    assert not verify_webhook("other", headers, body)
    assert not verify_webhook("s3cret", headers, body + b" ")
    old = str(int(time.time()) - 3600)
    stale = {"X-Anshim-Timestamp": old, "X-Anshim-Signature": hmac.new(
        b"s3cret", old.encode() + b"." + body, hashlib.sha256).hexdigest()}
    assert not verify_webhook("s3cret", stale, body)
    import anshim_threatexchange.webhooks as module

    assert "django" not in open(module.__file__).read().lower().replace(
        "no django", "")
