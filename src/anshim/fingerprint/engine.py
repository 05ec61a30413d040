"""Fingerprint one piece of media held in memory: sniff, decode, hash."""

from __future__ import annotations

import os
from pathlib import Path

from .decode_image import (
    DEFAULT_MIN_SIDE,
    DecodedImage,
    decode_image,
    decode_jpeg_rgb,
    is_animated,
    open_image,
)
from .errors import FingerprintError, MediaTooLarge, UnsupportedMedia
from .exact import md5_hex, sha256_hex
from .pdq import (
    MIN_HASHABLE_DIM,
    downsample_64_rgb,
    pdq_dihedral_from_luma,
    pdq_from_64,
    pdq_from_luma,
)
from .sniff import sniff
from .types import (
    DECODE_EXACT,
    DECODE_REDUCED,
    DEFAULT_LIMITS,
    ImageFingerprint,
    Limits,
    VideoFingerprint,
)
from .vpdq import VpdqResult, vpdq_from_animation, vpdq_from_video_bytes

__all__ = ["Fingerprint", "fingerprint_bytes", "fingerprint_file", "read_media_file"]

Fingerprint = ImageFingerprint | VideoFingerprint


#: PDQ quality under which a hash is not used for matching (Meta's threshold).
LOW_QUALITY = 50


def _hash(decoded: DecodedImage, dihedral: bool) -> tuple[str, int, dict[str, str] | None]:
    if dihedral:
        variants, quality = pdq_dihedral_from_luma(decoded.luma, decoded.axes)
        return variants["original"], quality, variants
    pdq_hex, quality = pdq_from_luma(decoded.luma, decoded.axes)
    return pdq_hex, quality, None


def _video(data: bytes, result: VpdqResult, seconds_per_hash: float) -> VideoFingerprint:
    return VideoFingerprint(
        md5=md5_hex(data),
        sha256=sha256_hex(data),
        frames=result.frames,
        width=result.width,
        height=result.height,
        frame_rate=result.frame_rate,
        duration=result.duration,
        format=result.format,
        seconds_per_hash=seconds_per_hash,
        frame_count=result.frame_count,
    )


def fingerprint_bytes(
    data: bytes,
    *,
    dihedral: bool = False,
    seconds_per_hash: float = 1.0,
    limits: Limits | None = None,
    min_side: int = DEFAULT_MIN_SIDE,
) -> ImageFingerprint | VideoFingerprint:
    """Fingerprint an image or video given as bytes.

    Images get PDQ (and the 8 dihedral variants when ``dihedral``); videos, animated GIFs and
    animated WebPs get vPDQ with one hash per ``seconds_per_hash`` (0: every frame). Both get MD5
    and SHA-256 of the bytes. Nothing is written to disk.

    Images are decoded at full size (``decode == "exact"``): the hash agrees with Meta's PDQ
    (pdqhash) on the same file. ``min_side > 0`` opts into the reduced-scale JPEG decode for
    triage (``decode == "reduced"``, faster, up to ~40 bits off): never for what is stored,
    shared or compared.

    Raises a :class:`~anshim.fingerprint.errors.FingerprintError` subclass on bad input.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("data must be bytes")
    data = bytes(data)
    limits = limits or DEFAULT_LIMITS
    if seconds_per_hash < 0 or seconds_per_hash != seconds_per_hash:
        raise ValueError("seconds_per_hash must be >= 0")
    if len(data) > limits.max_bytes:
        raise MediaTooLarge(f"input is {len(data)} bytes, over the limit of {limits.max_bytes}")
    kind = sniff(data)
    if kind.kind == "video":
        result = vpdq_from_video_bytes(data, kind.format, limits, seconds_per_hash=seconds_per_hash)
        return _video(data, result, seconds_per_hash)
    im = open_image(data, kind.format, limits)
    try:
        if kind.format in ("GIF", "WEBP") and is_animated(im):
            result = vpdq_from_animation(im, limits, seconds_per_hash=seconds_per_hash)
            return _video(data, result, seconds_per_hash)
        jpeg = decode_jpeg_rgb(data, im) if min_side <= 0 else None
        if jpeg is not None and min(jpeg[0].shape[0], jpeg[0].shape[1]) >= MIN_HASHABLE_DIM:
            # The exact decode's fast path (most uploads): RGB straight into the fused
            # luma + PDQ filter, no full-size float image.
            rgb, orientation = jpeg
            buf64 = downsample_64_rgb(rgb, orientation)
            pdq_hex, quality, variants = pdq_from_64(buf64, dihedral)
            turned = orientation >= 5
            return ImageFingerprint(
                md5=md5_hex(data),
                sha256=sha256_hex(data),
                pdq=pdq_hex,
                quality=quality,
                width=rgb.shape[0] if turned else rgb.shape[1],
                height=rgb.shape[1] if turned else rgb.shape[0],
                format=kind.format,
                dihedral=variants,
                decode=DECODE_EXACT,
            )
        decoded = decode_image(data, kind.format, limits, min_side=min_side, im=im)
    finally:
        im.close()
    pdq_hex, quality, variants = _hash(decoded, dihedral)
    if quality < LOW_QUALITY and any(axis.scale > 1 for axis in decoded.axes):
        # Near-flat images have fragile hashes: redo them from a full-resolution decode so they
        # agree with the reference binding too (costs a second decode, for rare images only).
        with open_image(data, kind.format, limits) as again:
            decoded = decode_image(data, kind.format, limits, min_side=0, im=again)
        pdq_hex, quality, variants = _hash(decoded, dihedral)
    return ImageFingerprint(
        md5=md5_hex(data),
        sha256=sha256_hex(data),
        pdq=pdq_hex,
        quality=quality,
        width=decoded.width,
        height=decoded.height,
        format=decoded.format,
        dihedral=variants,
        decode=DECODE_REDUCED if any(a.scale > 1 for a in decoded.axes) else DECODE_EXACT,
    )


def read_media_file(path: str | os.PathLike[str], limits: Limits | None = None) -> bytes:
    """Read a whole file into memory, refusing files over ``limits.max_bytes``."""
    limits = limits or DEFAULT_LIMITS
    p = Path(path)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise UnsupportedMedia(f"not a regular file: {p.name}")
        if size > limits.max_bytes:
            raise MediaTooLarge(f"file is {size} bytes, over the limit of {limits.max_bytes}")
        with p.open("rb") as fh:
            data = fh.read(limits.max_bytes + 1)
    except FingerprintError:
        raise
    except OSError as exc:
        raise FingerprintError(f"cannot read file: {exc.strerror or type(exc).__name__}") from None
    if len(data) > limits.max_bytes:
        raise MediaTooLarge(f"file is over the limit of {limits.max_bytes} bytes")
    return data


def fingerprint_file(
    path: str | os.PathLike[str],
    *,
    dihedral: bool = False,
    seconds_per_hash: float = 1.0,
    limits: Limits | None = None,
    min_side: int = DEFAULT_MIN_SIDE,
) -> ImageFingerprint | VideoFingerprint:
    """Fingerprint the file at ``path`` (read into memory; the extension is ignored)."""
    data = read_media_file(path, limits)
    return fingerprint_bytes(
        data,
        dihedral=dihedral,
        seconds_per_hash=seconds_per_hash,
        limits=limits,
        min_side=min_side,
    )
