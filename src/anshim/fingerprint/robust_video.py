"""vPDQ with the robust strategies: letterboxed and cropped copies of a registered video.

* Registration: the vPDQ frames of the video (``original``, every 0.1 s) plus, every second,
  the crop grid of :mod:`.robust_regions` (``crop-T-L-B-R``; for a video with borders
  also ``trim`` and ``trim-crop-…``) — a cropped copy's frames then match.
* Query: the vPDQ frames as decoded (``original``) and with the video's uniform borders trimmed
  (``trim``; one box for the whole video, the union of the per-frame content boxes, so dark
  scenes do not lose their edges).
* Matching (:func:`match_video_strategies`): Meta's rule on frames (distance < 31 for
  ``original``, quality >= 50), per strategy; a video matches when enough of the query's frames
  match (a trimmed copy holds only part of the registered video, so the query share decides).

Frames are decoded in memory by the fingerprint engine's decoder; nothing is written to disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .decode_video import iter_video_lumas
from .pdq import pdq_from_luma
from .robust_regions import Box, crop_grid, trim_borders
from .sniff import sniff
from .types import DEFAULT_LIMITS, Limits, VpdqFrame

__all__ = [
    "VideoStrategyMatch",
    "match_video_strategies",
    "video_query_frames",
    "video_registration_frames",
]

_MIN_QUALITY = 50


def _lumas(
    data: bytes, seconds_per_hash: float, limits: Limits
) -> list[tuple[int, float, NDArray[np.float32]]]:
    kind = sniff(data)
    if kind.kind != "video":
        raise ValueError("not a video")
    out = []
    for item in iter_video_lumas(data, kind.format, limits, seconds_per_hash=seconds_per_hash):
        if item.luma.shape == (0, 0):
            break
        out.append((item.frame_number, item.timestamp, item.luma))
    return out


def _frames(
    lumas: Sequence[tuple[int, float, NDArray[np.float32]]], box: Box | None = None
) -> list[VpdqFrame]:
    out = []
    for number, ts, luma in lumas:
        region = luma if box is None else box.of(luma)
        h, q = pdq_from_luma(region)
        out.append(VpdqFrame(number, q, h, ts))
    return out


def video_content_box(lumas: Sequence[NDArray[np.float32]]) -> Box | None:
    """The union of the per-frame content boxes (``None``: no border to trim)."""
    boxes = [trim_borders(lu) for lu in lumas]
    if not boxes:
        return None
    shape = lumas[0].shape
    box = Box(
        min(b.top for b in boxes),
        min(b.left for b in boxes),
        max(b.bottom for b in boxes),
        max(b.right for b in boxes),
    )
    return None if box.is_whole(shape) else box


def video_registration_frames(
    data: bytes,
    *,
    seconds_per_hash: float = 0.1,
    crop_seconds: float = 1.0,
    crops: bool = True,
    limits: Limits | None = None,
) -> dict[str, list[VpdqFrame]]:
    """Registered frame lists per variant: ``original``, ``trim`` and the crop grids.

    ``original`` and ``trim`` are sampled densely (every 0.1 s): a copy trimmed in time is
    sampled at other instants than the original, and with camera motion a frame 0.25 s away
    is 50-110 bits away (measured: a 1 s or 0.5 s registration misses a trimmed copy of the
    chair conformance video). The 256 crops are taken every ``crop_seconds``.
    """
    lumas = _lumas(data, seconds_per_hash, limits or DEFAULT_LIMITS)
    out = {"original": _frames(lumas)}
    box = video_content_box([lu for _, _, lu in lumas])
    step = max(1, round(crop_seconds / seconds_per_hash)) if seconds_per_hash > 0 else 1
    sparse = lumas[::step]
    bases = [("", sparse)]
    if box is not None:
        out["trim"] = _frames(lumas, box)
        # Crops of the trimmed video answer copies cropped into the picture, crops of the
        # whole one copies that kept part of the borders (as for images).
        bases.append(("trim-", [(n, t, np.ascontiguousarray(box.of(lu))) for n, t, lu in sparse]))
    if crops and sparse:
        for prefix, base in bases:
            shape = base[0][2].shape
            for name, cbox in crop_grid((shape[0], shape[1])):
                out[prefix + name] = [
                    f for f in _frames(base, cbox) if f.quality >= _MIN_QUALITY
                ]
    return out


def video_query_frames(
    data: bytes, *, seconds_per_hash: float = 1.0, limits: Limits | None = None
) -> dict[str, list[VpdqFrame]]:
    """Query frame lists per strategy: ``original`` and, for a bordered copy, ``trim``."""
    lumas = _lumas(data, seconds_per_hash, limits or DEFAULT_LIMITS)
    out = {"original": _frames(lumas)}
    box = video_content_box([lu for _, _, lu in lumas])
    if box is not None:
        out["trim"] = _frames(lumas, box)
    return out


@dataclass(frozen=True, slots=True)
class VideoStrategyMatch:
    video_id: int
    strategy: str
    query_match_percent: float


def _bits(frames: Sequence[VpdqFrame]) -> NDArray[np.uint8]:
    hexes = [f.pdq for f in frames if f.quality >= _MIN_QUALITY]
    if not hexes:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(-1, 32)


def match_video_strategies(
    query: Mapping[str, Sequence[VpdqFrame]],
    registered: Mapping[int, Mapping[str, Sequence[VpdqFrame]]],
    *,
    distance_tolerance: int = 31,
    min_query_percent: float = 50.0,
) -> list[VideoStrategyMatch]:
    """Registered videos whose frames match at least ``min_query_percent`` of the query's.

    A query frame matches when some registered frame of an allowed variant is at distance
    ``< distance_tolerance`` (Meta's vPDQ rule). ``original``/``trim`` query frames are compared
    with the ``original``/``trim`` frames first (strategy ``vpdq``/``trim``), then with the crop
    grid (strategy ``crop``).
    """
    out = []
    for video_id, variants in registered.items():
        whole = _bits([f for v in ("original", "trim") for f in variants.get(v, ())])
        crops = _bits([f for v, fs in variants.items() if "crop-" in v for f in fs])
        best: VideoStrategyMatch | None = None
        for qs, frames in query.items():
            q = _bits(frames)
            if q.shape[0] == 0:
                continue
            for ref, strategy in ((whole, "vpdq" if qs == "original" else "trim"),
                                  (crops, "crop")):
                if ref.shape[0] == 0:
                    continue
                dist = np.bitwise_count(q[:, None, :] ^ ref[None, :, :]).sum(axis=2)
                pct = 100.0 * float((dist < distance_tolerance).any(axis=1).mean())
                if pct >= min_query_percent and (best is None or pct > best.query_match_percent):
                    best = VideoStrategyMatch(video_id, strategy, pct)
                if best is not None and best.strategy in ("vpdq", "trim"):
                    break
        if best is not None:
            out.append(best)
    out.sort(key=lambda m: (-m.query_match_percent, m.video_id))
    return out
