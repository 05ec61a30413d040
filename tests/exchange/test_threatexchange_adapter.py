"""AnshimSignalExchangeAPI without a server: paging, ordering within a page, conversion."""

from __future__ import annotations

import pytest

pytest.importorskip("threatexchange")

from anshim_threatexchange import TX_MANIFEST, AnshimCollabConfig, AnshimSignalExchangeAPI
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal

P1, P2, M1 = "a" * 64, "b" * 64, "c" * 32


class FakeClient:
    def __init__(self, pages):
        self.pages = pages
        self.cursors = []

    def feed_page(self, cursor, limit=1000):
        self.cursors.append(cursor)
        return self.pages[len(self.cursors) - 1]


def item(op, entry_id, hashes=()):
    return {"op": op, "entry_id": entry_id, "bank": "victims",
            "fingerprints": [{"kind": k, "value": v} for k, v in hashes]}


def test_manifest_registers_the_api():
    assert TX_MANIFEST.apis == (AnshimSignalExchangeAPI,)
    assert AnshimSignalExchangeAPI.get_name() == "anshim"
    assert AnshimCollabConfig(name="x").api == "anshim"


def test_fetch_pages_until_caught_up_and_merges_to_the_current_set():
    client = FakeClient([
        {"items": [item("add", 1, [("pdq", P1), ("md5", M1)]), item("add", 2, [("pdq", P1)])],
         "cursor": "c1", "has_more": True},
        {"items": [item("add", 3, [("pdq", P2)]), item("withdraw", 3), item("withdraw", 1)],
         "cursor": "c2", "has_more": False},
    ])
    api = AnshimSignalExchangeAPI(AnshimCollabConfig(name="x"), client)  # type: ignore[arg-type]
    state: dict = {}
    deltas = list(api.fetch_iter([PdqSignal, VideoMD5Signal], None))
    assert [d.checkpoint.cursor for d in deltas] == ["c1", "c2"]
    assert client.cursors == [None, "c1"]
    for delta in deltas:
        AnshimSignalExchangeAPI.naive_fetch_merge(state, delta.updates)
    assert set(state) == {2}
    signals = AnshimSignalExchangeAPI.naive_convert_to_signal_type(
        [PdqSignal, VideoMD5Signal], api.collab, state)
    # P1 stays: entry 2 still holds it although entry 1 (also P1) was withdrawn.
    assert set(signals[PdqSignal]) == {P1}
    assert signals[PdqSignal][P1].entry_ids == {2}
    assert VideoMD5Signal not in signals


def test_resumes_from_the_checkpoint():
    from anshim_threatexchange import AnshimCheckpoint

    client = FakeClient([{"items": [], "cursor": "c9", "has_more": False}])
    api = AnshimSignalExchangeAPI(AnshimCollabConfig(name="x"), client)  # type: ignore[arg-type]
    assert [d.updates for d in api.fetch_iter([PdqSignal], AnshimCheckpoint("c5"))] == [{}]
    assert client.cursors == ["c5"]
