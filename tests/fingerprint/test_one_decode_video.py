"""One decode per video on the match and crawl paths (issue 15 item 5): `analyze_bytes` gives
the vPDQ fingerprint `fingerprint_bytes` gives and the ``trim`` query frames
`video_query_frames` gives, from one pass over the frames.

Benign media only: the conformance videos and small generated ones.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

av = pytest.importorskip("av")

from anshim.fingerprint import VideoFingerprint  # noqa: E402
from anshim.fingerprint import decode_video as decode_video_module  # noqa: E402
from anshim.fingerprint import robust_video as robust_video_module  # noqa: E402
from anshim.fingerprint import vpdq as vpdq_module  # noqa: E402
from anshim.fingerprint.analyze import analyze_bytes  # noqa: E402
from anshim.fingerprint.engine import fingerprint_bytes  # noqa: E402
from anshim.fingerprint.robust_strategy import QueryHash  # noqa: E402
from anshim.fingerprint.robust_video import (  # noqa: E402
    TrimmedQueryFrames,
    video_content_box,
    video_query_frames,
)
from anshim.fingerprint.types import DEFAULT_LIMITS  # noqa: E402

from .media import require_conformance, synthetic_rgb  # noqa: E402
from .test_one_decode import _Counter  # noqa: E402
from .test_robust_video import _mp4  # noqa: E402


def _conformance_videos() -> list[Path]:
    return sorted((require_conformance() / "vpdq" / "videos").glob("*.mp4"))


def _two_passes(data: bytes, seconds_per_hash: float = 1.0,
                ) -> tuple[VideoFingerprint, list[QueryHash]]:
    """What the match path did before: the engine's vPDQ, then `video_query_frames` decoding
    the file again for the ``trim`` frames (`anshim.erasure.matcher.robust_video_queries`)."""
    fp = fingerprint_bytes(data, seconds_per_hash=seconds_per_hash)
    assert isinstance(fp, VideoFingerprint)
    trimmed = video_query_frames(data, seconds_per_hash=seconds_per_hash).get("trim", [])
    return fp, [QueryHash(f.pdq, f.quality, "trim") for f in trimmed]


def test_same_results_as_the_two_passes_on_every_conformance_video() -> None:
    videos = _conformance_videos()
    assert len(videos) >= 9
    bordered = 0
    for path in videos:
        data = path.read_bytes()
        old_fp, old_queries = _two_passes(data)
        new = analyze_bytes(data)
        # 0 bits: the same frames (numbers, qualities, hashes, timestamps) and metadata.
        assert new.fingerprint == old_fp, path.name
        assert list(new.queries) == old_queries, path.name
        bordered += bool(old_queries)
    # Both kinds are covered: letterboxed/padded videos (trim frames) and videos without.
    assert 0 < bordered < len(videos)


def _letterboxed(n: int = 24) -> bytes:
    try:
        av.codec.Codec("libx264", "w")
    except Exception:  # an FFmpeg build without the H.264 encoder
        pytest.skip("PyAV has no libx264 encoder")
    frames = [synthetic_rgb(128, 96, seed=i // 6) for i in range(n)]
    return _mp4([np.pad(f, ((16, 16), (0, 0), (0, 0))) for f in frames])


def _grainy(width: int, height: int, seed: int) -> np.ndarray:
    """A frame without borders: grain on every line, so no row or column is flat (smooth
    gradients alone can look like a thin border to `trim_borders`)."""
    noise = np.random.default_rng(seed).normal(0, 25, (height, width, 3))
    return np.clip(synthetic_rgb(width, height, seed=seed) + noise, 0, 255).astype(np.uint8)


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> dict[str, _Counter]:
    """Count the passes over a video (`iter_video_lumas`, wherever it is called from) and the
    sampled frames turned into luma (`_luma_of_frame`: one per sampled frame and pass)."""
    passes = _Counter(decode_video_module.iter_video_lumas)
    for module in (vpdq_module, robust_video_module):
        monkeypatch.setattr(module, "iter_video_lumas", passes)
    lumas = _Counter(decode_video_module._luma_of_frame)
    monkeypatch.setattr(decode_video_module, "_luma_of_frame", lumas)
    return {"passes": passes, "lumas": lumas}


def test_one_pass_over_a_letterboxed_video(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _letterboxed()
    counters = _count_decodes(monkeypatch)
    result = analyze_bytes(data, seconds_per_hash=0.5)
    assert isinstance(result.fingerprint, VideoFingerprint)
    frames = len(result.fingerprint.frames)
    assert frames == 6 and len(result.queries) == frames
    assert {q.strategy for q in result.queries} == {"trim"}
    assert counters["passes"].calls == 1 and counters["lumas"].calls == frames


def test_the_two_pass_path_decoded_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the counters above measure: the old path's two passes."""
    data = _letterboxed()
    counters = _count_decodes(monkeypatch)
    fp, queries = _two_passes(data, seconds_per_hash=0.5)
    assert counters["passes"].calls == 2 and counters["lumas"].calls == 2 * len(fp.frames)
    assert queries and list(analyze_bytes(data, seconds_per_hash=0.5).queries) == queries


def test_a_video_without_borders_keeps_no_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    kept: list[TrimmedQueryFrames] = []

    class Watched(TrimmedQueryFrames):
        def add(self, number: int, timestamp: float, luma: Any) -> None:
            super().add(number, timestamp, luma)
            kept.append(self)
            # The first frame has no border: nothing is held for the trim.
            assert self._kept is None

    monkeypatch.setattr("anshim.fingerprint.analyze.TrimmedQueryFrames", Watched)
    data = _mp4([_grainy(128, 96, seed=i // 6) for i in range(16)])
    result = analyze_bytes(data, seconds_per_hash=0.5)
    assert result.queries == () and kept


def test_past_the_memory_budget_a_bordered_video_is_decoded_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = _letterboxed()
    expected = _two_passes(data, seconds_per_hash=0.5)
    monkeypatch.setattr(robust_video_module, "KEEP_LUMA_BYTES", 1)
    counters = _count_decodes(monkeypatch)
    result = analyze_bytes(data, seconds_per_hash=0.5)
    assert (result.fingerprint, list(result.queries)) == expected
    assert counters["passes"].calls == 2


def _mkv_growing() -> bytes:
    """An MJPEG Matroska video whose frames grow from 96x64 to 128x96 half-way."""
    buf = io.BytesIO()
    tb = Fraction(1, 4)
    with av.open(buf, "w", format="matroska") as c:
        s = c.add_stream("mjpeg", rate=Fraction(4))
        s.width, s.height, s.pix_fmt = 96, 64, "yuvj420p"
        for i in range(12):
            w, h = (96, 64) if i < 6 else (128, 96)
            enc = av.CodecContext.create("mjpeg", "w")
            enc.width, enc.height, enc.pix_fmt, enc.time_base = w, h, "yuvj420p", tb
            frame = av.VideoFrame.from_ndarray(_grainy(w, h, seed=i // 3), format="rgb24")
            frame = frame.reformat(format="yuvj420p")
            frame.pts, frame.time_base = i, tb
            for p in [*enc.encode(frame), *enc.encode()]:
                p.stream, p.pts, p.dts, p.time_base = s, i, i, tb
                c.mux(p)
    return buf.getvalue()


def test_frames_growing_past_the_first_one_are_decoded_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The union of the content boxes then outgrows the first frame: the old rule trims to it,
    and frames dropped as borderless are needed after all."""
    data = _mkv_growing()
    expected = _two_passes(data)
    assert expected[1], "the union box outgrew the first frame: trim frames expected"
    counters = _count_decodes(monkeypatch)
    result = analyze_bytes(data)
    assert (result.fingerprint, list(result.queries)) == expected
    assert counters["passes"].calls == 2


def test_the_sink_applies_video_content_box() -> None:
    """Fed lumas directly: the box and the frames are `video_content_box`'s."""
    rng = np.random.default_rng(5)
    lumas = [np.pad(rng.uniform(0, 255, (40, 60)).astype(np.float32), ((8, 8), (0, 0)))
             for _ in range(5)]
    sink = TrimmedQueryFrames()
    for i, lu in enumerate(lumas):
        sink.add(i, float(i), lu)
    box = video_content_box(lumas)
    assert box is not None and (box.top, box.bottom) == (8, 48)
    # Everything was kept: the bytes are not read again (none are given).
    frames = sink.frames(b"", "mov", DEFAULT_LIMITS, seconds_per_hash=1.0)
    assert [f.frame_number for f in frames] == list(range(5))
    assert sink.redecodes == 0


def test_crawl_records_carry_the_trim_frames() -> None:
    """The crawl's worker (`fingerprint_media`) sends a video's trim frames with its record, so
    the scan searches them as `anshim match` does (`anshim.erasure.scan.match_records`)."""
    from anshim.crawl.media import fingerprint_media

    data = _letterboxed()
    record = fingerprint_media(data, 0.5)
    queries = analyze_bytes(data, seconds_per_hash=0.5).queries
    assert record["robust"] == [{"pdq": q.pdq, "quality": q.quality, "strategy": "trim"}
                                for q in queries]
    assert "robust" not in fingerprint_media(_mp4([_grainy(128, 96, seed=i // 6)
                                                   for i in range(16)]), 0.5)
