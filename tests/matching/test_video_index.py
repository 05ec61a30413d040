import numpy as np
import pytest

from anshim.matching import (
    DuplicateIdError,
    MalformedHashError,
    UnknownIdError,
    VideoFrame,
    VideoIndex,
    format_pdq_hex,
    match_percentages,
)

from .helpers import flip_random_bits, random_codes

RNG = np.random.default_rng(11)
A = random_codes(RNG, 4)  # four distinct scenes
SCENES = format_pdq_hex(A)
NEAR = format_pdq_hex(flip_random_bits(RNG, A, 10))  # same scenes, re-encoded


def frames(hexes, quality=100):
    return [VideoFrame(h, quality, float(t)) for t, h in enumerate(hexes)]


def test_percentages_on_hand_made_frames():
    index = VideoIndex()
    # video 1: scenes 0,1,2,3 ; video 2: scenes 0,0 and a bad-quality frame of scene 3
    index.add_video(1, frames(SCENES))
    index.add_video(2, [*frames([SCENES[0], SCENES[0]]), VideoFrame(SCENES[3], 10, 2.0)])
    # query: scenes 0 and 1 re-encoded, plus an unrelated frame, plus a low-quality one
    query = [*frames([NEAR[0], NEAR[1], "0" * 64]), VideoFrame(NEAR[3], 49, 3.0)]
    result = index.search(query)
    by_id = {m.video_id: m for m in result}
    assert by_id[1].query_match_percent == pytest.approx(200 / 3)
    assert by_id[1].compared_match_percent == pytest.approx(50.0)
    assert by_id[2].query_match_percent == pytest.approx(100 / 3)
    assert by_id[2].compared_match_percent == pytest.approx(100.0)
    assert [m.video_id for m in result] == [1, 2]
    # agrees with the brute-force definition
    assert match_percentages(query, frames(SCENES)) == pytest.approx(
        (by_id[1].query_match_percent, by_id[1].compared_match_percent)
    )
    assert index.search(query, min_compared_percent=75.0)[0].video_id == 2


def test_remove_video_and_errors():
    index = VideoIndex(quality_threshold=50)
    index.add_video(1, frames(SCENES))
    with pytest.raises(DuplicateIdError):
        index.add_video(1, frames(SCENES))
    index.remove_video(1)
    assert index.search(frames(SCENES)) == []
    with pytest.raises(UnknownIdError):
        index.remove_video(1)
    with pytest.raises(MalformedHashError):
        index.add_video(3, [VideoFrame("nothex", 100)])
    assert index.search(frames(SCENES, quality=0)) == []
    index.add_video(4, frames(SCENES, quality=0))  # nothing considered
    assert 4 in index and index.search(frames(SCENES)) == []
    index.compact()


def test_threshold_override():
    index = VideoIndex(threshold=5)
    index.add_video(1, frames(SCENES))
    assert index.search(frames(NEAR)) == []
    assert index.search(frames(NEAR), threshold=31)[0].query_match_percent == 100.0
