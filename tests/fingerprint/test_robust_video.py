"""Robust vPDQ strategies on a tiny generated video: a letterboxed copy is found by ``trim``."""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")

from anshim.fingerprint.robust_video import (  # noqa: E402
    match_video_strategies,
    video_query_frames,
    video_registration_frames,
)


def _frames(seed: int, n: int = 24, size: tuple[int, int] = (96, 128)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    params = rng.uniform(-0.2, 0.2, (4, 2))
    for t in range(n):
        img = np.zeros((h, w, 3), dtype=np.float32)
        for k, (fx, fy) in enumerate(params):
            img += 60 * np.sin(fx * x + fy * y + 0.05 * t * (k + 1))[..., None]
        img += 128 + rng.normal(0, 3, img.shape)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def _mp4(frames: list[np.ndarray], rate: int = 8) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(rate))
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "20", "preset": "ultrafast"}
        for arr in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def test_letterboxed_video_is_found_by_trim_and_others_are_not() -> None:
    try:
        av.codec.Codec("libx264", "w")
    except Exception:  # an FFmpeg build without the H.264 encoder
        pytest.skip("PyAV has no libx264 encoder")
    frames = _frames(1)
    registered = {1: video_registration_frames(_mp4(frames), crops=False)}
    boxed = [np.pad(f, ((16, 16), (0, 0), (0, 0))) for f in frames]
    query = video_query_frames(_mp4(boxed))
    assert "trim" in query
    matches = match_video_strategies(query, registered)
    assert [(m.video_id, m.strategy) for m in matches] == [(1, "trim")]
    other = video_query_frames(_mp4(_frames(2)))
    assert match_video_strategies(other, registered) == []
