"""Recognise media formats from their first bytes (never from file names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import UnsupportedMedia

__all__ = ["HEIF_BRANDS", "Sniffed", "sniff"]

#: ISO-BMFF major/compatible brands of still images (HEIF/HEIC/AVIF).
HEIF_BRANDS = frozenset(
    {
        b"heic",
        b"heix",
        b"hevc",
        b"hevx",
        b"heim",
        b"heis",
        b"hevm",
        b"hevs",
        b"mif1",
        b"msf1",
        b"avif",
        b"avis",
    }
)
_VIDEO_BRANDS_HINT = frozenset({b"isom", b"iso2", b"mp41", b"mp42", b"qt  ", b"avc1", b"M4V "})
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


@dataclass(frozen=True, slots=True)
class Sniffed:
    """What the first bytes say: an image (Pillow format name) or a video (FFmpeg demuxer)."""

    kind: Literal["image", "video"]
    format: str


def _ftyp_brands(data: bytes) -> list[bytes]:
    size = int.from_bytes(data[0:4], "big")
    end = min(len(data), size if 16 <= size <= 4096 else 16)
    brands = [data[8:12]]
    brands.extend(data[i : i + 4] for i in range(16, end - 3, 4))
    return brands


def sniff(data: bytes) -> Sniffed:
    """Classify ``data``; raise :class:`UnsupportedMedia` for empty or unrecognised bytes."""
    if not data:
        raise UnsupportedMedia("empty input (0 bytes)")
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "JPEG")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "PNG")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Sniffed("image", "GIF")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return Sniffed("image", "WEBP")
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return Sniffed("video", "avi")
    if head.startswith(b"BM") and len(head) >= 26:
        return Sniffed("image", "BMP")
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return Sniffed("image", "TIFF")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("video", "matroska")
    if head[4:8] == b"ftyp" and len(head) >= 12:
        brands = _ftyp_brands(data[:4096])
        if brands[0] in HEIF_BRANDS or (
            not any(b in _VIDEO_BRANDS_HINT for b in brands)
            and any(b in HEIF_BRANDS for b in brands)
        ):
            return Sniffed("image", "HEIF")
        return Sniffed("video", "mov")
    if head[4:8] in _QUICKTIME_ATOMS and len(head) >= 8:
        return Sniffed("video", "mov")
    raise UnsupportedMedia(
        "unrecognised format: not JPEG, PNG, GIF, WebP, BMP, TIFF, HEIF, MP4/MOV, WebM/MKV or AVI"
    )
