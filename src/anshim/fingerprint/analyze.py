"""Everything the match and crawl paths need of one file, from one decode (issue 15 item 5).

:func:`analyze_bytes` sniffs and decodes the file once and derives from that one decode the
engine's fingerprint (PDQ and quality, the 8 dihedral hashes on request, MD5 and SHA-256) and
the robust query hashes (the 7 other orientations, border trim, the picture inside a
screenshot). Calling :func:`~anshim.fingerprint.engine.fingerprint_bytes` and then
:func:`~anshim.fingerprint.robust_strategy.query_fingerprints` decodes every image twice at full
size (plus once more at reduced scale); this gives the same hashes for one full-size decode.

What is decoded once: the full-size pixels (simplejpeg RGB for YCbCr JPEGs, Pillow for the
rest). What is still decoded separately, because no full-size decode can give it: the
``reduced`` query hash of a JPEG (libjpeg scales inside the IDCT, 1/2-1/8 of the work) that
finds entries registered before issue 20, whose stored hashes were made that way; pass
``reduced=False`` where no such entry can exist.

A video is decoded once too: the vPDQ decode hands every sampled frame's luma to
:class:`~anshim.fingerprint.robust_video.TrimmedQueryFrames`, which makes the ``trim`` query
frames (the video's uniform borders cut) that ``video_query_frames`` decoded the file again
for. Animated GIF/WebP get no robust query frames (as before).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .decode_image import (
    _FLOAT_LUMA_MAX_PIXELS,
    REDUCED_MIN_SIDE,
    DecodedImage,
    apply_orientation,
    decode_image,
    decode_jpeg_rgb,
    is_animated,
    open_image,
)
from .engine import LOW_QUALITY, _hash, _video
from .errors import FingerprintError, MediaTooLarge
from .exact import md5_hex, sha256_hex
from .pdq import MIN_HASHABLE_DIM, Axis, downsample_64_rgb, luma_from_rgb, pdq_from_64
from .robust_strategy import QueryHash, query_fingerprints_of_luma
from .robust_video import TrimmedQueryFrames
from .sniff import sniff
from .types import DECODE_EXACT, DEFAULT_LIMITS, ImageFingerprint, Limits, VideoFingerprint
from .vpdq import vpdq_from_animation, vpdq_from_video_bytes

__all__ = ["MediaAnalysis", "analyze_bytes"]


@dataclass(frozen=True, slots=True)
class MediaAnalysis:
    """One file's fingerprint and robust query hashes, made from one decode."""

    fingerprint: ImageFingerprint | VideoFingerprint
    #: Robust query hashes of a still image besides its plain hash (strategies
    #: ``dihedral-<name>``, ``reduced``, ``trim``, ``screenshot``; low-quality ones left out);
    #: of a video, its border-trimmed frames (strategy ``trim``, every frame, as
    #: ``video_query_frames(...)["trim"]``). Empty for animations, videos without borders,
    #: and when ``robust=False``.
    queries: tuple[QueryHash, ...] = field(default=())

    @property
    def md5(self) -> str:
        return self.fingerprint.md5

    @property
    def sha256(self) -> str:
        return self.fingerprint.sha256


@dataclass(frozen=True, slots=True)
class _StillDecode:
    fingerprint: ImageFingerprint
    luma: NDArray[np.float32]
    axes: tuple[Axis, Axis] | None


def _luma_of_rgb(rgb: NDArray[np.uint8], orientation: int) -> NDArray[np.float32]:
    """The luma `decode_image` makes of the same pixels (float32 weights; Pillow's integer
    luma above its float-luma size, as `decode_image`'s Pillow path does for huge images)."""
    if rgb.shape[0] * rgb.shape[1] > _FLOAT_LUMA_MAX_PIXELS:
        luma = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32)
    else:
        luma = luma_from_rgb(rgb)
    return np.ascontiguousarray(apply_orientation(luma, orientation))


def _still(data: bytes, fmt: str, im: Image.Image, limits: Limits, dihedral: bool,
           md5: str, sha256: str) -> _StillDecode:
    jpeg = decode_jpeg_rgb(data, im)
    if jpeg is not None and min(jpeg[0].shape[0], jpeg[0].shape[1]) >= MIN_HASHABLE_DIM:
        # The engine's fast path: RGB straight into the fused luma + PDQ filter (the same
        # hash, bit for bit, as fingerprint_bytes); the luma of those same pixels then serves
        # the robust queries.
        rgb, orientation = jpeg
        pdq_hex, quality, variants = pdq_from_64(downsample_64_rgb(rgb, orientation), dihedral)
        turned = orientation >= 5
        fp = ImageFingerprint(
            md5=md5, sha256=sha256, pdq=pdq_hex, quality=quality,
            width=rgb.shape[0] if turned else rgb.shape[1],
            height=rgb.shape[1] if turned else rgb.shape[0],
            format=fmt, dihedral=variants, decode=DECODE_EXACT,
        )
        return _StillDecode(fp, _luma_of_rgb(rgb, orientation), None)
    decoded: DecodedImage = decode_image(data, fmt, limits, min_side=0, im=im)
    pdq_hex, quality, variants = _hash(decoded, dihedral)
    # A full-size decode: the engine's low-quality redo (for reduced decodes) never applies.
    assert not (quality < LOW_QUALITY and any(a.scale > 1 for a in decoded.axes))
    fp = ImageFingerprint(
        md5=md5, sha256=sha256, pdq=pdq_hex, quality=quality, width=decoded.width,
        height=decoded.height, format=decoded.format, dihedral=variants, decode=DECODE_EXACT,
    )
    return _StillDecode(fp, decoded.luma, decoded.axes)


def analyze_bytes(
    data: bytes,
    *,
    dihedral: bool = False,
    robust: bool = True,
    reduced: bool = True,
    seconds_per_hash: float = 1.0,
    limits: Limits | None = None,
) -> MediaAnalysis:
    """Fingerprint ``data`` and make its robust query hashes from one decode.

    The fingerprint equals ``fingerprint_bytes(data, dihedral=dihedral,
    seconds_per_hash=seconds_per_hash, limits=limits)`` (exact decode) and ``queries`` equals
    ``[q for q in query_fingerprints(data) if q.strategy != "original"]`` for an image, the
    ``trim`` frames of ``video_query_frames(data, seconds_per_hash=seconds_per_hash)`` as
    ``QueryHash(pdq, quality, "trim")`` for a video. Raises the engine's
    :class:`~anshim.fingerprint.errors.FingerprintError` subclasses on bad input, as
    ``fingerprint_bytes`` does; a failure of the robust hashes alone (after the fingerprint
    succeeded) leaves ``queries`` empty, as the crawl and the matcher did before.
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
        return _analyze_video(data, kind.format, limits, seconds_per_hash, robust)
    im = open_image(data, kind.format, limits)
    try:
        if kind.format in ("GIF", "WEBP") and is_animated(im):
            result = vpdq_from_animation(im, limits, seconds_per_hash=seconds_per_hash)
            return MediaAnalysis(_video(data, result, seconds_per_hash))
        still = _still(data, kind.format, im, limits, dihedral, md5_hex(data), sha256_hex(data))
    finally:
        im.close()
    if not robust:
        return MediaAnalysis(still.fingerprint)
    fp = still.fingerprint
    # Only a JPEG whose shorter side allows at least a 1/2 scale has a reduced decode that
    # differs from the full one (decode_image's rule): anything else would be decoded again
    # at full size for nothing.
    reduced = reduced and fp.format == "JPEG" and min(fp.width, fp.height) // 2 >= REDUCED_MIN_SIDE
    try:
        queries = query_fingerprints_of_luma(still.luma, still.axes, data, limits=limits,
                                             reduced=reduced)
    except (FingerprintError, ValueError):
        queries = []
    return MediaAnalysis(still.fingerprint,
                         tuple(q for q in queries if q.strategy != "original"))


def _analyze_video(data: bytes, fmt: str, limits: Limits, seconds_per_hash: float,
                   robust: bool) -> MediaAnalysis:
    trim = TrimmedQueryFrames() if robust else None
    result = vpdq_from_video_bytes(data, fmt, limits, seconds_per_hash=seconds_per_hash,
                                   sink=trim)
    fp = _video(data, result, seconds_per_hash)
    if trim is None:
        return MediaAnalysis(fp)
    try:
        frames = trim.frames(data, fmt, limits, seconds_per_hash=seconds_per_hash)
    except (FingerprintError, ValueError):
        frames = []  # the robust part alone failed: the plain frames still match
    return MediaAnalysis(fp, tuple(QueryHash(f.pdq, f.quality, "trim") for f in frames))
