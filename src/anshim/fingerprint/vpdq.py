"""vPDQ: PDQ hashes of sampled video frames; Meta's text format; Meta's brute-force comparison."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .decode_image import animation_frame_count, iter_animation_lumas
from .decode_video import SkipModeFailed, VideoInfo, iter_video_lumas
from .pdq import MIN_HASHABLE_DIM, downsample_64, hamming_distance, pdq_from_64_batch
from .types import Limits, VpdqFrame, VpdqMatch

__all__ = [
    "DEFAULT_DISTANCE_TOLERANCE",
    "DEFAULT_QUALITY_TOLERANCE",
    "FrameSink",
    "VpdqResult",
    "format_vpdq",
    "match_vpdq",
    "parse_vpdq",
    "vpdq_from_animation",
    "vpdq_from_video_bytes",
]

#: Frames at this Hamming distance or more do not match (Meta: ``distance < 31``).
DEFAULT_DISTANCE_TOLERANCE = 31
#: Frames under this quality are not compared (Meta: ``quality >= 50``).
DEFAULT_QUALITY_TOLERANCE = 50

_ZERO = "0" * 64


class VpdqResult:
    """Frames of a vPDQ hash plus what was learnt while decoding."""

    __slots__ = ("duration", "format", "frame_count", "frame_rate", "frames", "height", "width")

    def __init__(
        self,
        frames: tuple[VpdqFrame, ...],
        *,
        width: int,
        height: int,
        frame_rate: float,
        duration: float,
        frame_count: int,
        format: str,
    ) -> None:
        self.frames = frames
        self.width = width
        self.height = height
        self.frame_rate = frame_rate
        self.duration = duration
        self.frame_count = frame_count
        self.format = format


class _Accumulator:
    """Reduces sampled frames to 64x64 at once (little memory), hashes them in one batch."""

    def __init__(self) -> None:
        self.numbers: list[int] = []
        self.times: list[float] = []
        self.bufs: list[NDArray[np.float32]] = []
        self.small: set[int] = set()

    def add(self, number: int, timestamp: float, luma: NDArray[np.float32]) -> None:
        if luma.shape[0] < MIN_HASHABLE_DIM or luma.shape[1] < MIN_HASHABLE_DIM:
            self.small.add(len(self.numbers))
            buf = np.zeros((64, 64), dtype=np.float32)
        else:
            buf = downsample_64(luma)
        self.numbers.append(number)
        self.times.append(timestamp)
        self.bufs.append(buf)

    def frames(self) -> tuple[VpdqFrame, ...]:
        if not self.bufs:
            return ()
        hashes, qualities = pdq_from_64_batch(np.stack(self.bufs))
        out = []
        for i, (number, ts) in enumerate(zip(self.numbers, self.times, strict=True)):
            if i in self.small:
                out.append(VpdqFrame(number, 0, _ZERO, ts))
            else:
                out.append(VpdqFrame(number, int(qualities[i]), hashes[i], ts))
        return tuple(out)


class FrameSink(Protocol):
    """Something else made of the sampled frames' full-size luma during the vPDQ decode (the
    match path's trimmed query frames: `robust_video.TrimmedQueryFrames`), so that a video is
    decoded once for all of it (issue 15 item 5)."""

    def add(self, number: int, timestamp: float, luma: NDArray[np.float32]) -> None:
        """One sampled frame, in output order (the array is not modified afterwards)."""

    def reset(self) -> None:
        """Forget the frames seen so far: the decode starts again from the first frame."""


def vpdq_from_video_bytes(
    data: bytes, fmt: str, limits: Limits, *, seconds_per_hash: float = 1.0,
    sink: FrameSink | None = None,
) -> VpdqResult:
    """vPDQ of a video container (``fmt`` is the FFmpeg demuxer name) held in memory.

    `sink` also gets every sampled frame's luma (the same frames, in the same order, as the
    hashes are made of)."""
    try:
        return _vpdq_video(data, fmt, limits, seconds_per_hash, skip_unsampled=True, sink=sink)
    except SkipModeFailed:
        # The skipping decode gave up part-way: what the sink saw is replayed from frame 0.
        if sink is not None:
            sink.reset()
        return _vpdq_video(data, fmt, limits, seconds_per_hash, skip_unsampled=False, sink=sink)


def _vpdq_video(
    data: bytes, fmt: str, limits: Limits, seconds_per_hash: float, *, skip_unsampled: bool,
    sink: FrameSink | None = None,
) -> VpdqResult:
    acc = _Accumulator()
    info_out: list[VideoInfo] = []
    frame_count = 0
    duration = 0.0
    for item in iter_video_lumas(
        data,
        fmt,
        limits,
        seconds_per_hash=seconds_per_hash,
        info_out=info_out,
        skip_unsampled=skip_unsampled,
    ):
        if item.luma.shape == (0, 0):
            frame_count, duration = item.frame_number, item.timestamp
            break
        acc.add(item.frame_number, item.timestamp, item.luma)
        if sink is not None:
            sink.add(item.frame_number, item.timestamp, item.luma)
    info = info_out[0]
    return VpdqResult(
        acc.frames(),
        width=info.width,
        height=info.height,
        frame_rate=info.frame_rate,
        duration=duration,
        frame_count=frame_count,
        format=fmt,
    )


def vpdq_from_animation(
    im: Image.Image, limits: Limits, *, seconds_per_hash: float = 1.0
) -> VpdqResult:
    """vPDQ of an animated GIF/WebP.

    Frames carry their own delays, so sampling is by time: a frame is hashed when it starts at or
    after the next multiple of ``seconds_per_hash`` (every frame when it is 0); its timestamp is
    its start time.
    """
    if seconds_per_hash < 0:
        raise ValueError("seconds_per_hash must be >= 0")
    started = time.monotonic()
    n_frames = animation_frame_count(im, limits)
    next_due = [0.0]

    def want(index: int, start: float) -> bool:
        if seconds_per_hash == 0:
            return True
        if start + 1e-9 >= next_due[0]:
            next_due[0] = (math.floor(start / seconds_per_hash + 1e-9) + 1) * seconds_per_hash
            return True
        return False

    acc = _Accumulator()
    duration = 0.0
    for item in iter_animation_lumas(im, limits, n_frames=n_frames, want=want, started=started):
        if item.index == n_frames:
            duration = item.timestamp
            break
        acc.add(item.index, item.timestamp, item.luma)
    width, height = im.size
    return VpdqResult(
        acc.frames(),
        width=width,
        height=height,
        frame_rate=(n_frames / duration) if duration > 0 else 0.0,
        duration=duration,
        frame_count=n_frames,
        format=im.format or "image",
    )


def format_vpdq(frames: Iterable[VpdqFrame]) -> str:
    """Meta's text format: one ``frame_number,quality,pdq_hex,timestamp`` line per frame."""
    return "".join(f"{f.frame_number},{f.quality},{f.pdq},{f.timestamp:.3f}\n" for f in frames)


def parse_vpdq(text: str) -> list[VpdqFrame]:
    """Parse Meta's vPDQ text format (the timestamp column is optional, as in old files)."""
    frames = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) not in (3, 4):
            raise ValueError(f"line {lineno}: expected frame_number,quality,pdq_hex[,timestamp]")
        number_s, quality_s, pdq_hex = parts[:3]
        if len(pdq_hex) != 64 or any(c not in "0123456789abcdefABCDEF" for c in pdq_hex):
            raise ValueError(f"line {lineno}: the PDQ hash must be 64 hex characters")
        try:
            number = int(number_s)
            quality = int(quality_s)
            timestamp = float(parts[3]) if len(parts) == 4 else 0.0
        except ValueError:
            raise ValueError(f"line {lineno}: bad number") from None
        frames.append(VpdqFrame(number, quality, pdq_hex.lower(), timestamp))
    return frames


def _dedupe_filter(frames: Sequence[VpdqFrame], quality_tolerance: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for f in frames:
        if f.pdq in seen:
            continue
        seen.add(f.pdq)
        if f.quality >= quality_tolerance:
            out.append(f.pdq)
    return out


def _bits_matrix(hashes: list[str]) -> NDArray[np.uint8]:
    if not hashes:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(hashes)), dtype=np.uint8).reshape(-1, 32)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


def _distances(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> NDArray[np.uint16]:
    """All pairwise Hamming distances (len(a) x len(b)), in row blocks to bound memory."""
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.uint16)
    step = max(1, 2_000_000 // max(1, b.shape[0] * 32))
    for i in range(0, a.shape[0], step):
        x = np.bitwise_xor(a[i : i + step, None, :], b[None, :, :])
        out[i : i + step] = _POPCOUNT[x].sum(axis=2, dtype=np.uint16)
    return out


def match_vpdq(
    query: Sequence[VpdqFrame],
    compared: Sequence[VpdqFrame],
    *,
    distance_tolerance: int = DEFAULT_DISTANCE_TOLERANCE,
    quality_tolerance: int = DEFAULT_QUALITY_TOLERANCE,
) -> VpdqMatch:
    """Compare two vPDQ hashes as Meta's ``match_VPDQ_hash_brute``.

    Both sides are deduplicated (identical hashes kept once) and frames with quality under
    ``quality_tolerance`` dropped. A frame matches when some frame on the other side is at a
    Hamming distance strictly less than ``distance_tolerance``. Returns the percentage of query
    frames matched and of compared frames matched (0 when a side has no frames left).
    """
    q = _dedupe_filter(query, quality_tolerance)
    c = _dedupe_filter(compared, quality_tolerance)
    if not q or not c:
        return VpdqMatch(0.0, 0.0)
    dist = _distances(_bits_matrix(q), _bits_matrix(c))
    close = dist < distance_tolerance
    q_matched = int(close.any(axis=1).sum())
    c_matched = int(close.any(axis=0).sum())
    return VpdqMatch(q_matched * 100 / len(q), c_matched * 100 / len(c))


def frame_distance(a: VpdqFrame, b: VpdqFrame) -> int:
    """Hamming distance between the PDQ hashes of two frames."""
    return hamming_distance(a.pdq, b.pdq)
