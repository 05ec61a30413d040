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
On the match path (`anshim.fingerprint.analyze.analyze_bytes`) the ``trim`` query frames come
from the vPDQ decode itself (:class:`TrimmedQueryFrames`, issue 15 item 5);
:func:`video_query_frames` decodes on its own (registration-side tools, tests, the reference).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .decode_video import SkipModeFailed, iter_video_lumas
from .pdq import pdq_from_luma
from .robust_regions import Box, crop_grid, trim_borders
from .sniff import sniff
from .types import DEFAULT_LIMITS, Limits, VpdqFrame

__all__ = [
    "TrimmedQueryFrames",
    "VideoStrategyMatch",
    "match_video_strategies",
    "video_query_frames",
    "video_registration_frames",
]

_MIN_QUALITY = 50


#: Sampled full-size lumas :class:`TrimmedQueryFrames` keeps (bytes) while a video may need
#: its borders trimmed; past this a bordered video is decoded a second time instead (a long HD
#: letterboxed video would otherwise hold gigabytes).
KEEP_LUMA_BYTES = 256 * 2**20


def _iter_lumas(
    data: bytes, fmt: str, seconds_per_hash: float, limits: Limits, *, skip_unsampled: bool
) -> Iterator[tuple[int, float, NDArray[np.float32]]]:
    for item in iter_video_lumas(data, fmt, limits, seconds_per_hash=seconds_per_hash,
                                 skip_unsampled=skip_unsampled):
        if item.luma.shape == (0, 0):
            return
        yield item.frame_number, item.timestamp, item.luma


def _lumas(
    data: bytes, seconds_per_hash: float, limits: Limits
) -> list[tuple[int, float, NDArray[np.float32]]]:
    kind = sniff(data)
    if kind.kind != "video":
        raise ValueError("not a video")
    try:
        return list(_iter_lumas(data, kind.format, seconds_per_hash, limits,
                                skip_unsampled=True))
    except SkipModeFailed:
        # As `vpdq_from_video_bytes`: the same frames, decoded without skipping.
        return list(_iter_lumas(data, kind.format, seconds_per_hash, limits,
                                skip_unsampled=False))


def _frames(
    lumas: Iterable[tuple[int, float, NDArray[np.float32]]], box: Box | None = None
) -> list[VpdqFrame]:
    out = []
    for number, ts, luma in lumas:
        region = luma if box is None else box.of(luma)
        h, q = pdq_from_luma(region)
        out.append(VpdqFrame(number, q, h, ts))
    return out


class _ContentBox:
    """The union of the per-frame content boxes, grown one frame at a time (the one rule of
    :func:`video_content_box` and :class:`TrimmedQueryFrames`)."""

    def __init__(self) -> None:
        self.shape: tuple[int, int] | None = None
        self.union: Box | None = None

    def add(self, luma: NDArray[np.float32]) -> None:
        b = trim_borders(luma)
        if self.union is None:
            self.shape = (int(luma.shape[0]), int(luma.shape[1]))
            self.union = b
            return
        u = self.union
        self.union = Box(min(u.top, b.top), min(u.left, b.left), max(u.bottom, b.bottom),
                         max(u.right, b.right))

    def result(self) -> Box | None:
        """The box to trim every frame to (``None``: no border to trim). The first frame's
        size is the whole picture."""
        if self.union is None or self.shape is None or self.union.is_whole(self.shape):
            return None
        return self.union

    def could_grow(self, luma: NDArray[np.float32]) -> bool:
        """Whether a frame this size could take the union past the first frame's size (only
        such a frame can turn a whole union into a box to trim)."""
        return self.shape is not None and (luma.shape[0] > self.shape[0]
                                           or luma.shape[1] > self.shape[1])


def video_content_box(lumas: Sequence[NDArray[np.float32]]) -> Box | None:
    """The union of the per-frame content boxes (``None``: no border to trim)."""
    box = _ContentBox()
    for lu in lumas:
        box.add(lu)
    return box.result()


class TrimmedQueryFrames:
    """The ``trim`` query frames of a video, made from the frames of its vPDQ decode (a
    `anshim.fingerprint.vpdq.FrameSink`): the same frames :func:`video_query_frames` gives as
    ``trim``, without decoding the video again (issue 15 item 5).

    The box is the union over all frames, known only at the end, so the sampled lumas are kept
    while the video may have borders: a frame without borders makes the union whole and they
    are dropped at once (most videos keep none). A bordered video whose kept lumas pass
    `max_kept_bytes`, or one whose frames grow past the first frame's size after they were
    dropped, is decoded a second time by :meth:`frames` (the same frames, hashed in a stream).
    """

    def __init__(self, *, max_kept_bytes: int | None = None) -> None:
        self.max_kept_bytes = KEEP_LUMA_BYTES if max_kept_bytes is None else max_kept_bytes
        self.reset()

    def reset(self) -> None:
        self._box = _ContentBox()
        self._kept: list[tuple[int, float, NDArray[np.float32]]] | None = []
        self._kept_bytes = 0
        #: The kept lumas were dropped while a trim may still be needed.
        self._incomplete = False
        #: How many times :meth:`frames` decoded the video again (tests, benchmarks).
        self.redecodes = 0

    def add(self, number: int, timestamp: float, luma: NDArray[np.float32]) -> None:
        if self._kept is None:
            if not self._incomplete and self._box.could_grow(luma):
                self._incomplete = True
            self._box.add(luma)
            return
        self._box.add(luma)
        self._kept.append((number, timestamp, luma))
        self._kept_bytes += luma.nbytes
        if self._box.result() is None:
            # Whole already: only a frame larger than the first could change that.
            self._kept, self._kept_bytes = None, 0
        elif self._kept_bytes > self.max_kept_bytes:
            self._kept, self._kept_bytes, self._incomplete = None, 0, True

    def frames(self, data: bytes, fmt: str, limits: Limits, *,
               seconds_per_hash: float) -> list[VpdqFrame]:
        """The trimmed frames (none for a video without borders). `data` and the sampling
        are the vPDQ decode's: they are used only when the kept lumas did not suffice."""
        box = self._box.result()
        if box is None:
            return []
        if self._kept is not None:
            return _frames(self._kept, box)
        assert self._incomplete
        self.redecodes += 1
        try:
            return _frames(_iter_lumas(data, fmt, seconds_per_hash, limits,
                                       skip_unsampled=True), box)
        except SkipModeFailed:
            return _frames(_iter_lumas(data, fmt, seconds_per_hash, limits,
                                       skip_unsampled=False), box)


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
