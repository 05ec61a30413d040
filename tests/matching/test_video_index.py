"""Video matching through the matching core (issue 15 item 6): frames in the core's per-bank
vPDQ index behind the `BankStore`, judged by `video_index.VideoHits` — and the percentages agree
with the brute-force vPDQ definition (`match_percentages`)."""

import numpy as np
import pytest

from anshim.matching import VideoFrame, format_pdq_hex, match_percentages
from anshim.matching.core import FileQuery, MatchingCore
from anshim.matching.store import MemoryBankStore
from anshim.matching.strategy import QueryHash

from .helpers import flip_random_bits, random_codes

RNG = np.random.default_rng(11)
A = random_codes(RNG, 8)  # eight distinct scenes
SCENES = format_pdq_hex(A)
NEAR = format_pdq_hex(flip_random_bits(RNG, A, 10))  # same scenes, re-encoded


def frames(hexes, quality=100):
    return [VideoFrame(h, quality, float(t)) for t, h in enumerate(hexes)]


def video(hexes, strategy="original", quality=100):
    return FileQuery(frames=[QueryHash(h, quality, strategy) for h in hexes], is_video=True)


@pytest.fixture
def bank():
    store = MemoryBankStore()
    bank_id = store.add_bank("videos")
    return store, bank_id


def register(store, bank_id, hexes, variant="original", quality=100):
    return store.add_entry(bank_id, [("vpdq", h, quality, variant) for h in hexes])


def test_core_percentages_agree_with_the_brute_force_definition(bank):
    store, bank_id = bank
    whole = register(store, bank_id, SCENES)  # 8 scenes
    half = register(store, bank_id, SCENES[:2])  # 2 of them
    core = MatchingCore(store)
    query = [NEAR[0], NEAR[1], NEAR[2], NEAR[3], "0" * 64, "1" * 64]
    [found] = core.match_files([video(query)])
    by_entry = {m.entry_id: m for m in found}
    for entry, registered in ((whole, SCENES), (half, SCENES[:2])):
        q_pct, c_pct = match_percentages(frames(query), frames(registered))
        if max(q_pct, c_pct) >= 80.0:  # Meta's rule: 80 % of either side
            m = by_entry[entry]
            assert (m.query_percent, m.compared_percent) == (round(q_pct, 1), round(c_pct, 1))
            assert m.kind == "vpdq" and m.strategy == "vpdq"
        else:
            assert entry not in by_entry
    assert set(by_entry) == {half}  # 67 % / 50 % of the whole video: no match


def test_low_quality_frames_are_not_counted(bank):
    store, bank_id = bank
    entry = register(store, bank_id, SCENES[:4])
    core = MatchingCore(store)
    [[m]] = core.match_files([video(NEAR[:4])])
    assert m.entry_id == entry and m.query_percent == 100.0
    assert core.match_files([video(NEAR[:4], quality=40)]) == [[]]


def test_trimmed_frames_match_by_the_query_share_and_withdrawal_applies(bank):
    store, bank_id = bank
    entry = register(store, bank_id, SCENES[:4], variant="trim")
    core = MatchingCore(store)
    [[m]] = core.match_files([video(NEAR[:2], strategy="trim")])
    assert (m.entry_id, m.strategy, m.variant, m.query_percent) == (entry, "trim", "trim", 100.0)
    store.withdraw(entry)
    assert core.match_files([video(NEAR[:2], strategy="trim")]) == [[]]


def test_match_percentages_on_hand_made_frames():
    query = [*frames([NEAR[0], NEAR[1], "0" * 64]), VideoFrame(NEAR[3], 49, 3.0)]
    assert match_percentages(query, frames(SCENES[:4])) == pytest.approx((200 / 3, 50.0))
    assert match_percentages(query, frames(SCENES[:4]), threshold=5) == (0.0, 0.0)
    assert match_percentages(frames(SCENES, quality=0), frames(SCENES)) == (0.0, 0.0)
