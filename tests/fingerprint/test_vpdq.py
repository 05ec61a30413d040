"""vPDQ text format and comparison, and agreement with Meta's vpdq package."""

from __future__ import annotations

import pytest

from anshim.fingerprint import (
    VideoFingerprint,
    VpdqFrame,
    fingerprint_file,
    format_vpdq,
    hamming_distance,
    match_vpdq,
    parse_vpdq,
)

from .media import require_conformance


def _meta_brute(
    target: list[VpdqFrame], query: list[VpdqFrame], quality: int, distance: int
) -> tuple[float, float]:
    """Straight port of Meta's ``match_VPDQ_hash_brute`` (target %, query %)."""

    def dedupe(hs: list[VpdqFrame]) -> list[VpdqFrame]:
        seen: set[str] = set()
        out = []
        for h in hs:
            if h.pdq not in seen:
                seen.add(h.pdq)
                out.append(h)
        return out

    def filt(hs: list[VpdqFrame]) -> list[VpdqFrame]:
        return [h for h in hs if h.quality >= quality]

    def count(a: list[VpdqFrame], b: list[VpdqFrame]) -> int:
        return sum(any(hamming_distance(x.pdq, y.pdq) < distance for y in b) for x in a)

    t, q = filt(dedupe(target)), filt(dedupe(query))
    return count(t, q) * 100 / len(t), count(q, t) * 100 / len(q)


def test_text_format_roundtrip() -> None:
    conf = require_conformance()
    for path in sorted((conf / "vpdq/hashes").glob("*.txt"))[:6]:
        text = path.read_text()
        frames = parse_vpdq(text)
        assert frames
        assert format_vpdq(frames) == text


def test_parse_rejects_bad_lines() -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_vpdq("1,2,zz,0.0\n")
    with pytest.raises(ValueError):
        parse_vpdq("nonsense\n")


def test_match_identical_and_different() -> None:
    conf = require_conformance()
    a = parse_vpdq((conf / "vpdq/hashes/chair-22-sd-grey-bar.txt").read_text())
    b = parse_vpdq((conf / "vpdq/hashes/chair-22-with-small-logo-bar.txt").read_text())
    c = parse_vpdq((conf / "vpdq/hashes/pattern-sd-grey-bar.txt").read_text())
    same = match_vpdq(a, a)
    assert same.query_match_percent == 100.0 and same.compared_match_percent == 100.0
    for query, compared in ((a, b), (a, c), (c, b)):
        mine = match_vpdq(query, compared)
        target_pct, query_pct = _meta_brute(compared, query, 50, 31)
        assert mine.query_match_percent == pytest.approx(query_pct)
        assert mine.compared_match_percent == pytest.approx(target_pct)
    assert match_vpdq(a, b).query_match_percent > 90
    assert match_vpdq(a, c).query_match_percent < 10


def test_match_thresholds_and_empty() -> None:
    frames = [VpdqFrame(0, 40, "f" * 64, 0.0)]
    assert match_vpdq(frames, frames).query_match_percent == 0.0  # quality under 50
    assert match_vpdq(frames, frames, quality_tolerance=0).query_match_percent == 100.0
    near = [VpdqFrame(0, 100, "0" * 56 + "7fffffff", 0.0)]  # 31 bits
    zero = [VpdqFrame(0, 100, "0" * 64, 0.0)]
    assert match_vpdq(near, zero, distance_tolerance=32).query_match_percent == 100.0
    assert match_vpdq(near, zero, distance_tolerance=31).query_match_percent == 0.0


def test_agrees_with_vpdq_package() -> None:
    vpdq = pytest.importorskip("vpdq")
    conf = require_conformance()
    for name in ("pattern-sd-grey-bar.mp4", "test-padded-dimensions.mp4"):
        path = conf / "vpdq/videos" / name
        ref = vpdq.computeHash(str(path), seconds_per_hash=1.0, thread_count=1)
        fp = fingerprint_file(path, seconds_per_hash=1.0)
        assert isinstance(fp, VideoFingerprint)
        assert [f.frame_number for f in fp.frames] == [r.frame_number for r in ref]
        for mine, theirs in zip(fp.frames, ref, strict=True):
            assert mine.timestamp == pytest.approx(theirs.timestamp, abs=1e-3)
            if theirs.quality >= 50:
                assert hamming_distance(mine.pdq, theirs.hex) <= 31
        ours = match_vpdq(
            list(fp.frames), [VpdqFrame(r.frame_number, r.quality, r.hex, r.timestamp) for r in ref]
        )
        assert ours.query_match_percent == 100.0


def test_skipping_unsampled_frames_changes_nothing() -> None:
    from anshim.fingerprint import Limits
    from anshim.fingerprint.vpdq import _vpdq_video

    from .media import video_bytes

    samples = [video_bytes("mp4", "libx264", frames=60, rate=10)]
    conf = require_conformance()
    samples.append((conf / "vpdq/videos/doorknob-hd-no-bar.mp4").read_bytes())
    for data in samples:
        for sph in (0.5, 1.0):
            fast = _vpdq_video(data, "mov", Limits(), sph, skip_unsampled=True)
            plain = _vpdq_video(data, "mov", Limits(), sph, skip_unsampled=False)
            assert fast.frames == plain.frames
            assert fast.frame_count == plain.frame_count
            assert fast.duration == pytest.approx(plain.duration)
