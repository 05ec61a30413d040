"""Decode videos from bytes in memory with PyAV, with limits, yielding luma of sampled frames.

Frame sampling follows Meta's vpdq: frames are numbered in decoder output order from 0, and
frame ``n`` is hashed when ``n % max(1, int(seconds_per_hash * frame_rate)) == 0``
(``seconds_per_hash == 0``: every frame); its timestamp is ``n / frame_rate``.

For 8-bit YUV frames the luma is taken straight from the Y plane: with BT.601 coefficients the
chroma terms of ``0.299 R + 0.587 G + 0.114 B`` cancel, so the reference's RGB24 conversion
reduces to a range expansion of Y (limited range: ``(Y - 16) * 255 / 219``). Other pixel formats
go through an RGB24 conversion.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import av.error
import numpy as np
from numpy.typing import NDArray

from .errors import CorruptMedia, FingerprintError, MediaTooLarge, NoVideoStream
from .pdq import luma_from_rgb
from .types import Limits

__all__ = ["DecodedFrame", "VideoInfo", "iter_video_lumas", "open_video"]

_DEFAULT_FRAME_RATE = 25.0


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the container says about the video stream."""

    format: str
    width: int
    height: int
    frame_rate: float
    frame_mod: int


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """A sampled frame: its number in output order, timestamp (seconds) and float32 luma."""

    frame_number: int
    timestamp: float
    luma: NDArray[np.float32]


def _describe(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    if len(text) > 160:
        text = text[:160] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _rate(stream: Any) -> float:
    for attr in ("average_rate", "guessed_rate", "base_rate"):
        value = getattr(stream, attr, None)
        if value is None:
            continue
        try:
            rate = float(value)
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if 0.0 < rate < 100_000.0:
            return rate
    return _DEFAULT_FRAME_RATE


def open_video(data: bytes, fmt: str, limits: Limits) -> tuple[Any, Any]:
    """Open a container from bytes; return ``(container, video_stream)`` after limit checks."""
    try:
        container = av.open(io.BytesIO(data), mode="r", format=fmt)
    except MemoryError:
        raise MediaTooLarge(f"{fmt} container needs too much memory") from None
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise CorruptMedia(f"cannot open {fmt} container: {_describe(exc)}") from None
    try:
        videos = [s for s in container.streams.video if s.codec_context is not None]
        if not videos:
            kinds: list[str] = sorted({str(s.type) for s in container.streams}) or ["none"]
            raise NoVideoStream(
                f"{fmt} container has no video stream (streams: {', '.join(kinds)})"
            )
        stream = videos[0]
        width = int(stream.codec_context.width or 0)
        height = int(stream.codec_context.height or 0)
        if width * height > limits.max_pixels:
            raise MediaTooLarge(
                f"video frames are {width}x{height} = {width * height} pixels, "
                f"over the limit of {limits.max_pixels}"
            )
        durations = []
        if container.duration is not None and container.duration > 0:
            durations.append(container.duration / 1_000_000)
        if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
            durations.append(float(stream.duration * stream.time_base))
        if durations and max(durations) > limits.max_video_seconds:
            raise MediaTooLarge(
                f"video claims a duration of {max(durations):.0f} s, "
                f"over the limit of {limits.max_video_seconds:.0f} s"
            )
        if stream.frames and stream.frames > limits.max_video_frames:
            raise MediaTooLarge(
                f"video claims {stream.frames} frames, over the limit of {limits.max_video_frames}"
            )
    except BaseException:
        container.close()
        raise
    return container, stream


def _luma_of_frame(frame: Any) -> NDArray[np.float32]:
    """Luma of a frame from its RGB as FFmpeg's swscale makes it, as Meta's vpdq hashes it.

    The Y plane alone (rescaled from limited range) is close but not the same: measured on the
    conformance videos it put frame hashes up to 4 bits (mean 0.8) from the vpdq package;
    through RGB they are identical (issue 20).
    """
    rgb = frame.to_ndarray(format="rgb24")
    return luma_from_rgb(rgb)


#: Packets the decoder may reject before the whole video counts as corrupt.
MAX_PACKET_ERRORS = 50


def _decode_tolerantly(container: Any, stream: Any, fmt: str) -> Iterator[Any]:
    """Decoded frames in output order; damaged packets are skipped (up to a limit), and a
    damaged container tail ends the stream once frames have come out."""
    errors = 0
    produced = False
    demuxer = container.demux(stream)
    while True:
        try:
            packet = next(demuxer)
        except StopIteration:
            return
        except (av.error.FFmpegError, OSError, ValueError, EOFError) as exc:
            if produced:
                return
            raise CorruptMedia(f"cannot read {fmt} container: {_describe(exc)}") from None
        try:
            frames = packet.decode()
        except (av.error.FFmpegError, ValueError) as exc:
            errors += 1
            if errors > MAX_PACKET_ERRORS:
                raise CorruptMedia(
                    f"{fmt} video has too many undecodable packets ({_describe(exc)})"
                ) from None
            continue
        for frame in frames:
            produced = True
            yield frame


#: Codecs whose non-reference frames can be skipped without changing any other frame.
_SKIPPABLE_CODECS = frozenset({"h264", "hevc"})


class SkipModeFailed(Exception):
    """The stream broke an assumption of the non-reference skipping; decode it plainly."""


def _skip_plan(
    container: Any, stream: Any, frame_mod: int, limits: Limits
) -> tuple[list[Any], dict[int, int]] | None:
    """Packets and their output-order frame numbers, when unsampled non-reference frames can be
    skipped: every packet holds one frame with a distinct pts, so a frame's number (vpdq counts
    frames in output order) is the rank of its pts. ``None`` when that does not hold."""
    if frame_mod <= 1 or stream.codec_context.name not in _SKIPPABLE_CODECS:
        return None
    packets: list[Any] = []
    pts_seen: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.pts is None or len(packets) >= limits.max_video_frames:
                return None
            packets.append(packet)
            pts_seen.append(int(packet.pts))
    except (av.error.FFmpegError, OSError, ValueError, EOFError):
        return None
    if not packets or len(set(pts_seen)) != len(pts_seen):
        return None
    rank = {pts: i for i, pts in enumerate(sorted(pts_seen))}
    return packets, rank


def _decode_skipping(
    stream: Any, packets: list[Any], rank: dict[int, int], frame_mod: int, fmt: str
) -> Iterator[tuple[int, Any]]:
    """(frame number, frame) in output order; non-reference frames that are not sampled are not
    decoded at all (``skip_frame = NONREF`` for their packets)."""
    cc = stream.codec_context
    errors = 0
    flush = [None]
    for packet in [*packets, *flush]:
        if packet is not None:
            sampled = rank[int(packet.pts)] % frame_mod == 0
            cc.skip_frame = "DEFAULT" if sampled else "NONREF"
        try:
            frames = stream.decode(packet)
        except (av.error.FFmpegError, ValueError) as exc:
            errors += 1
            if errors > MAX_PACKET_ERRORS:
                raise CorruptMedia(
                    f"{fmt} video has too many undecodable packets ({_describe(exc)})"
                ) from None
            continue
        for frame in frames:
            number = rank.get(frame.pts) if frame.pts is not None else None
            if number is None:
                raise SkipModeFailed
            yield number, frame


def _configure_threads(stream: Any, limits: Limits) -> None:
    cc = stream.codec_context
    if limits.video_threads == 1:
        cc.thread_count = 1
        cc.thread_type = "SLICE"
    else:
        cc.thread_count = max(0, limits.video_threads)
        cc.thread_type = "AUTO"


def _decode_counting(container: Any, stream: Any, fmt: str) -> Iterator[tuple[int, Any]]:
    yield from enumerate(_decode_tolerantly(container, stream, fmt))


def iter_video_lumas(
    data: bytes,
    fmt: str,
    limits: Limits,
    *,
    seconds_per_hash: float = 1.0,
    info_out: list[VideoInfo] | None = None,
    skip_unsampled: bool = True,
) -> Iterator[DecodedFrame]:
    """Decode the first video stream; yield the frames vPDQ samples.

    When ``info_out`` is a list, the :class:`VideoInfo` is appended to it once the container is
    open. After the generator finishes, the number of decoded frames is the ``frame_number`` of
    the final sentinel item, which has an empty luma array and the decoded duration as timestamp.

    With ``skip_unsampled``, H.264/HEVC frames that are neither sampled nor referenced by other
    frames are not decoded (see :func:`_skip_plan`); if the stream turns out not to fit that
    scheme, :class:`SkipModeFailed` is raised and the caller decodes again without it.
    """
    if seconds_per_hash < 0:
        raise ValueError("seconds_per_hash must be >= 0")
    started = time.monotonic()
    container, stream = open_video(data, fmt, limits)
    try:
        rate = _rate(stream)
        frame_mod = max(1, int(seconds_per_hash * rate))
        _configure_threads(stream, limits)
        cc = stream.codec_context
        info = VideoInfo(
            format=fmt,
            width=int(cc.width or 0),
            height=int(cc.height or 0),
            frame_rate=rate,
            frame_mod=frame_mod,
        )
        if info_out is not None:
            info_out.append(info)
        plan = _skip_plan(container, stream, frame_mod, limits) if skip_unsampled else None
        if plan is not None:
            packets, rank = plan
            decoded = _decode_skipping(stream, packets, rank, frame_mod, fmt)
        else:
            if skip_unsampled and frame_mod > 1 and cc.name in _SKIPPABLE_CODECS:
                # The plan read (part of) the packets: start again from a fresh demuxer.
                container.close()
                container, stream = open_video(data, fmt, limits)
                _configure_threads(stream, limits)
            decoded = _decode_counting(container, stream, fmt)
        count = 0
        last_time = 0.0
        for number, frame in decoded:
            if count >= limits.max_video_frames:
                raise MediaTooLarge(
                    f"video has more than {limits.max_video_frames} frames (the limit)"
                )
            t = frame.time
            if t is not None:
                if t > limits.max_video_seconds:
                    raise MediaTooLarge(
                        f"video runs past {limits.max_video_seconds:.0f} s (the limit)"
                    )
                last_time = max(last_time, float(t))
            if frame.width * frame.height > limits.max_pixels:
                raise MediaTooLarge(
                    f"a video frame is {frame.width}x{frame.height}, over the pixel limit of "
                    f"{limits.max_pixels}"
                )
            if number % frame_mod == 0:
                yield DecodedFrame(number, number / rate, _luma_of_frame(frame))
            count += 1
            if (
                limits.max_decode_seconds is not None
                and time.monotonic() - started > limits.max_decode_seconds
            ):
                raise MediaTooLarge(
                    f"decoding took longer than the limit of {limits.max_decode_seconds} s"
                )
        if count == 0:
            raise CorruptMedia(f"{fmt} video stream has no decodable frames")
        if plan is not None:
            count = len(plan[0])
        duration = max(last_time + 1.0 / rate, count / rate)
        yield DecodedFrame(count, duration, np.zeros((0, 0), dtype=np.float32))
    except FingerprintError:
        raise
    except MemoryError:
        raise MediaTooLarge(f"{fmt} video needs too much memory to decode") from None
    except (av.error.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise CorruptMedia(f"cannot decode {fmt} video: {_describe(exc)}") from None
    finally:
        container.close()
