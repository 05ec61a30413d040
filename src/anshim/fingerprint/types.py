"""Result and configuration types of the fingerprinting engine (plain frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DECODE_EXACT",
    "DECODE_REDUCED",
    "DEFAULT_LIMITS",
    "DIHEDRAL_NAMES",
    "ENGINE_VERSION",
    "ImageFingerprint",
    "Limits",
    "VideoFingerprint",
    "VpdqFrame",
    "VpdqMatch",
]

#: Name and version of this engine, stored with every fingerprint it makes (stored hashes cannot
#: be recomputed: the media is never kept). Bump it when a hash of the same file can change.
ENGINE_VERSION = "anshim-pdq/2"
#: Full-resolution decode: the hash agrees with Meta's PDQ (pdqhash on Pillow's RGB) within a
#: few bits. What everything stored, shared or compared uses.
DECODE_EXACT = "exact"
#: Reduced-scale JPEG decode (1/2-1/8 in the IDCT): faster, up to ~40 bits off the reference.
#: An explicit opt-in for triage only.
DECODE_REDUCED = "reduced"

#: Names of the eight dihedral variants, in Meta's order.
DIHEDRAL_NAMES: tuple[str, ...] = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flip_plus1",
    "flip_minus1",
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits that protect the engine from hostile input.

    Exceeding any of them raises :class:`~anshim.fingerprint.errors.MediaTooLarge`.
    """

    #: Largest accepted input, in bytes.
    max_bytes: int = 2 * 1024**3
    #: Largest image (or video frame) area in pixels; checked from headers before decoding.
    max_pixels: int = 50_000_000
    #: Largest number of frames decoded from an animated image.
    max_animation_frames: int = 20_000
    #: Largest total number of pixels decoded from an animated image (all frames). Every frame
    #: of a GIF/WebP is composited on the full logical screen, however tiny its own data: a
    #: 138 KB GIF of 150 frames on a 5000 x 5000 screen is 3.75 G pixels, about a minute of
    #: decoding (issue 17). 600 M is 300 frames of a 2 MP screen or 2400 of 500 x 500: every real
    #: animation, a few seconds at most.
    max_animation_pixels: int = 600_000_000
    #: Longest accepted video (seconds of media time), from metadata and while decoding.
    max_video_seconds: float = 4 * 3600.0
    #: Largest number of decoded video frames.
    max_video_frames: int = 4 * 3600 * 60
    #: Wall-clock budget for decoding one file, in seconds (``None``: no budget).
    max_decode_seconds: float | None = 900.0
    #: Wall-clock budget for decoding one animated GIF/WebP, in seconds (``None``: only
    #: ``max_decode_seconds``). Animations are short; a video's hours of frames are not.
    max_animation_seconds: float | None = 20.0
    #: Decoder threads for video (0: let FFmpeg decide, 1: one core).
    video_threads: int = 0


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class ImageFingerprint:
    """Fingerprint of a still image."""

    md5: str
    sha256: str
    #: PDQ hash, 64 lowercase hex characters.
    pdq: str
    #: PDQ quality, 0-100 (under ~50 the hash is unreliable).
    quality: int
    width: int
    height: int
    #: Container format as Pillow names it ("JPEG", "PNG", "HEIF", ...).
    format: str
    #: The 8 dihedral variants (name -> hex) when requested, else ``None``.
    dihedral: dict[str, str] | None = None
    #: Which decode produced the hash (:data:`DECODE_EXACT` or :data:`DECODE_REDUCED`).
    decode: str = DECODE_EXACT
    engine: str = ENGINE_VERSION
    kind: Literal["image"] = "image"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "md5": self.md5,
            "sha256": self.sha256,
            "pdq": self.pdq,
            "quality": self.quality,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "decode": self.decode,
            "engine": self.engine,
        }
        if self.dihedral is not None:
            out["dihedral"] = dict(self.dihedral)
        return out


@dataclass(frozen=True, slots=True)
class VpdqFrame:
    """One vPDQ feature: the PDQ hash of one sampled frame."""

    frame_number: int
    quality: int
    pdq: str
    timestamp: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame_number": self.frame_number,
            "quality": self.quality,
            "pdq": self.pdq,
            "timestamp": round(self.timestamp, 3),
        }


@dataclass(frozen=True, slots=True)
class VideoFingerprint:
    """Fingerprint of a video (or animated image): vPDQ frames plus exact hashes."""

    md5: str
    sha256: str
    frames: tuple[VpdqFrame, ...]
    width: int
    height: int
    #: Frame rate used for sampling and timestamps.
    frame_rate: float
    #: Duration in seconds (from the decoded frames).
    duration: float
    #: Container format ("mp4", "matroska", "avi", "GIF", "WEBP", ...).
    format: str
    seconds_per_hash: float = 1.0
    frame_count: int = 0
    #: Video frames are always decoded at full size.
    decode: str = DECODE_EXACT
    engine: str = ENGINE_VERSION
    kind: Literal["video"] = "video"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "kind": self.kind,
            "md5": self.md5,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
            "frame_rate": self.frame_rate,
            "duration": round(self.duration, 3),
            "frame_count": self.frame_count,
            "format": self.format,
            "seconds_per_hash": self.seconds_per_hash,
            "decode": self.decode,
            "engine": self.engine,
            "vpdq": [f.to_dict() for f in self.frames],
        }


@dataclass(frozen=True, slots=True)
class VpdqMatch:
    """Result of comparing two vPDQ hashes (as Meta's ``match_VPDQ_hash_brute``)."""

    #: Percentage of (deduplicated, quality-filtered) query frames that match a compared frame.
    query_match_percent: float
    #: Percentage of (deduplicated, quality-filtered) compared frames that match a query frame.
    compared_match_percent: float
