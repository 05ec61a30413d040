"""Decode still and animated images from bytes into luminance arrays, with limits.

* Headers are read first (Pillow opens lazily) and the pixel count is checked before any pixel
  data is decoded.
* By default every image is decoded at full size to RGB, and luma is ``0.299 R + 0.587 G +
  0.114 B`` in float32 as Meta's PDQ computes it (issue 20): the hash then agrees with pdqhash.
  Even the JPEG's own Y channel is not close enough: Pillow's RGB is rounded and clipped, and on
  photos with a PDQ quality of 50 or more Y alone (or Pillow's integer "L") puts hashes up to 6
  bits off. YCbCr JPEGs are decoded by libjpeg-turbo through ``simplejpeg`` (bit-identical RGB to
  Pillow's, about 1.3x faster) in :func:`decode_jpeg_rgb`.
* Opt-in for triage only, never for what is stored or shared (``min_side > 0``): JPEGs decoded
  with ``Image.draft``, libjpeg scaling by 1/2, 1/4 or 1/8 inside the IDCT and delivering only
  the luma (Y) channel, with the PDQ filter applied with full-resolution geometry (see
  :class:`.pdq.Axis`). Up to ~40 bits off the reference.
* EXIF orientation is applied to the luma array (the hash is that of the image as people see it).
* Alpha is dropped (as the reference hashers do); every Pillow mode is handled.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import simplejpeg
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError
from pillow_heif import register_heif_opener

from .errors import CorruptMedia, FingerprintError, MediaTooLarge, UnsupportedMedia
from .pdq import Axis, luma_from_rgb
from .types import Limits

# HEIF/HEIC (phone photos): pillow-heif is a pinned dependency; a missing one is a crash at
# start, never phone photos silently refused.
register_heif_opener()
_HEIF_FORMATS: tuple[str, ...] = ("HEIF", "AVIF")

__all__ = [
    "DEFAULT_MIN_SIDE",
    "REDUCED_MIN_SIDE",
    "DecodedImage",
    "apply_orientation",
    "decode_image",
    "decode_jpeg_rgb",
    "iter_animation_lumas",
    "open_image",
]

#: Above this many pixels, luma is computed by Pillow (uint8) rather than in float32.
_FLOAT_LUMA_MAX_PIXELS = 16_000_000

#: Default ``min_side``: 0, the exact full-size decode.
DEFAULT_MIN_SIDE = 0
#: ``min_side`` of the reduced triage decode (the engine's default before issue 20): the shorter
#: side stays at least this many pixels.
REDUCED_MIN_SIDE = 160

_PILLOW_FORMATS: dict[str, tuple[str, ...]] = {
    "JPEG": ("JPEG", "MPO"),
    "PNG": ("PNG",),
    "GIF": ("GIF",),
    "WEBP": ("WEBP",),
    "BMP": ("BMP", "DIB"),
    "TIFF": ("TIFF",),
    "HEIF": _HEIF_FORMATS,
}

# Pillow's own decoder errors, all meaning "damaged data".
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    RuntimeError,
    AttributeError,
    UnidentifiedImageError,
)


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """Luma of an image as displayed (possibly decoded at reduced scale), plus its displayed
    full size, format and how the luma axes relate to the full image (for :mod:`.pdq`)."""

    luma: NDArray[np.float32]
    width: int
    height: int
    format: str
    axes: tuple[Axis, Axis]


def _describe(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    if len(text) > 160:
        text = text[:160] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_image(data: bytes, fmt: str, limits: Limits) -> Image.Image:
    """Open ``data`` (format ``fmt`` as sniffed) lazily and check its size against ``limits``."""
    formats = _PILLOW_FORMATS.get(fmt)
    if formats is None:
        raise UnsupportedMedia(f"unsupported image format {fmt}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's warnings on odd headers: not ours to show
            im = Image.open(io.BytesIO(data), formats=list(formats))
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge(f"{fmt} image too large: {_describe(exc)}") from None
    except MemoryError:
        raise MediaTooLarge(f"{fmt} image header needs too much memory") from None
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"cannot read {fmt} header: {_describe(exc)}") from None
    width, height = im.size
    if width <= 0 or height <= 0:
        raise CorruptMedia(f"{fmt} image has an empty size {width}x{height}")
    if width * height > limits.max_pixels:
        raise MediaTooLarge(
            f"{fmt} image is {width}x{height} = {width * height} pixels, "
            f"over the limit of {limits.max_pixels}"
        )
    return im


def _orientation(im: Image.Image) -> int:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = im.getexif().get(0x0112, 1)
    except Exception:  # broken EXIF is not worth failing the image for
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def apply_orientation[P: np.generic](arr: NDArray[P], orientation: int) -> NDArray[P]:
    """Transform an ``(H, W)`` or ``(H, W, C)`` array as EXIF orientation ``orientation`` (1-8)
    says to display it (views, no copy)."""
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1, :]
    if orientation == 5:
        return np.swapaxes(arr, 0, 1)
    if orientation == 6:
        return np.rot90(arr, -1)
    if orientation == 7:
        return np.swapaxes(arr[::-1, ::-1], 0, 1)
    if orientation == 8:
        return np.rot90(arr, 1)
    return arr


# For each EXIF orientation: (displayed rows come from stored cols?, rows reversed?, cols reversed?)
_ORIENTATION_AXES: dict[int, tuple[bool, bool, bool]] = {
    1: (False, False, False),
    2: (False, False, True),
    3: (False, True, True),
    4: (False, True, False),
    5: (True, False, False),
    6: (True, False, True),
    7: (True, True, True),
    8: (True, True, False),
}


def oriented_axes(
    stored_height: int, stored_width: int, scale: int, orientation: int
) -> tuple[Axis, Axis]:
    """The :class:`Axis` pair of a luma array decoded at ``1/scale`` and then oriented."""
    swap, rows_rev, cols_rev = _ORIENTATION_AXES.get(orientation, (False, False, False))
    full_rows, full_cols = (stored_width, stored_height) if swap else (stored_height, stored_width)
    return (Axis(full_rows, scale, rows_rev), Axis(full_cols, scale, cols_rev))


def _luma_of_loaded(im: Image.Image) -> NDArray[np.float32]:
    """Float luma (0-255 scale) of a loaded image in any Pillow mode; alpha is ignored."""
    mode = im.mode
    if mode == "L":
        return np.asarray(im, dtype=np.float32)
    if mode in ("1", "LA", "La"):
        return np.asarray(im.convert("L"), dtype=np.float32)
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        if mode.startswith("I;16") or (arr.size and float(arr.max()) > 255.0):
            arr = arr * np.float32(255.0 / 65535.0)
        return np.clip(arr, 0.0, 255.0, out=arr)
    if im.width * im.height > _FLOAT_LUMA_MAX_PIXELS:
        # Huge images: Pillow's integer luma (same weights, rounded) keeps memory bounded.
        if mode not in ("RGB", "L"):
            im = im.convert("RGB")
        return np.asarray(im.convert("L"), dtype=np.float32)
    if mode != "RGB":
        im = im.convert("RGBA" if mode in ("P", "PA") and "transparency" in im.info else "RGB")
        if im.mode == "RGBA":
            im = im.convert("RGB")
    return luma_from_rgb(np.asarray(im))


def _jpeg_scale(width: int, height: int, min_side: int) -> int:
    shorter = min(width, height)
    for scale in (8, 4, 2):
        if shorter // scale >= min_side:
            return scale
    return 1


def decode_image(
    data: bytes,
    fmt: str,
    limits: Limits,
    *,
    min_side: int = DEFAULT_MIN_SIDE,
    im: Image.Image | None = None,
) -> DecodedImage:
    """Decode the first frame of an image to float32 luma, oriented as displayed.

    ``min_side`` bounds the reduced decode: the shorter side stays at least that many pixels
    (0 disables reduction: full-resolution decode).
    """
    if im is None:
        im = open_image(data, fmt, limits)
    width, height = im.size
    if min_side <= 0 and width * height <= _FLOAT_LUMA_MAX_PIXELS:
        decoded = decode_jpeg_rgb(data, im)
        if decoded is not None:
            luma = np.ascontiguousarray(apply_orientation(luma_from_rgb(decoded[0]), decoded[1]))
            rows, cols = luma.shape
            return DecodedImage(luma=luma, width=cols, height=rows, format=fmt,
                                axes=(Axis(rows), Axis(cols)))
    orientation = _orientation(im)
    scale = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if im.format in ("JPEG", "MPO") and min_side > 0:
                scale = _jpeg_scale(width, height, min_side)
                if scale > 1:
                    want_mode = "L" if im.mode in ("RGB", "L", "YCbCr") else im.mode
                    im.draft(want_mode, (max(1, width // scale), max(1, height // scale)))
                    got_w, got_h = im.size
                    if (got_w, got_h) != (-(-width // scale), -(-height // scale)):
                        scale = 1  # the decoder did not scale as asked: hash what it gives
            im.load()
            luma = _luma_of_loaded(im)
    except FingerprintError:
        raise
    except MemoryError:
        raise MediaTooLarge(f"{fmt} image needs too much memory to decode") from None
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge(f"{fmt} image too large: {_describe(exc)}") from None
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"cannot decode {fmt} image: {_describe(exc)}") from None
    if scale > 1 and luma.shape != (-(-height // scale), -(-width // scale)):
        scale = 1
    axes = oriented_axes(
        height if scale > 1 else luma.shape[0],
        width if scale > 1 else luma.shape[1],
        scale,
        orientation,
    )
    luma = np.ascontiguousarray(apply_orientation(luma, orientation))
    if orientation >= 5:
        width, height = height, width
    return DecodedImage(luma=luma, width=width, height=height, format=fmt, axes=axes)


def decode_jpeg_rgb(data: bytes, im: Image.Image) -> tuple[NDArray[np.uint8], int] | None:
    """Full-size RGB of a YCbCr JPEG opened as ``im`` (header already checked against the
    limits), as stored, and its EXIF orientation, by libjpeg-turbo through simplejpeg; None for
    what this path does not take (other formats and colour spaces, data simplejpeg refuses):
    the caller then decodes with Pillow, which gives the typed error for damaged data.

    simplejpeg and Pillow both run libjpeg-turbo with the accurate integer IDCT and fancy
    upsampling: the bytes are identical (checked on the benchmark corpus every run).
    """
    if im.format not in ("JPEG", "MPO") or im.mode != "RGB":
        return None
    try:
        rgb = simplejpeg.decode_jpeg(data, colorspace="RGB")
    except (ValueError, RuntimeError, OSError):
        return None
    if rgb.shape[:2] != (im.height, im.width):
        return None  # not the picture Pillow would show (an MPO's other frame): let Pillow do it
    return rgb, _orientation(im)


def is_animated(im: Image.Image) -> bool:
    """Whether an opened image has more than one frame (animated GIF/WebP)."""
    return bool(getattr(im, "is_animated", False)) and im.format in ("GIF", "WEBP")


@dataclass(frozen=True, slots=True)
class AnimationFrame:
    """One decoded frame of an animated image."""

    index: int
    #: Start time in seconds.
    timestamp: float
    luma: NDArray[np.float32]


def animation_frame_count(im: Image.Image, limits: Limits) -> int:
    """Frame count of an animated image, checked against the frame and pixel limits."""
    try:
        n = int(getattr(im, "n_frames", 1))
    except MemoryError:
        raise MediaTooLarge("animated image needs too much memory") from None
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"cannot read animation frames: {_describe(exc)}") from None
    if n > limits.max_animation_frames:
        raise MediaTooLarge(
            f"animated image has {n} frames, over the limit of {limits.max_animation_frames}"
        )
    width, height = im.size
    if n * width * height > limits.max_animation_pixels:
        raise MediaTooLarge(
            f"animated image has {n} frames of {width}x{height} = {n * width * height} pixels, "
            f"over the limit of {limits.max_animation_pixels}"
        )
    return n


def _frame_seconds(im: Image.Image) -> float:
    duration = im.info.get("duration", 0)
    try:
        ms = float(duration)
    except (TypeError, ValueError):
        ms = 0.0
    # Browsers show frames with a delay of 10 ms or less for 100 ms.
    return 0.1 if ms <= 10.0 else ms / 1000.0


def iter_animation_lumas(
    im: Image.Image,
    limits: Limits,
    *,
    n_frames: int,
    want: Callable[[int, float], bool],
    started: float | None = None,
) -> Iterator[AnimationFrame]:
    """Decode every frame of an animated image in order; yield the frames ``want`` selects.

    ``want(index, start_seconds)`` is asked for every frame. Every frame has to be decoded (frames
    are deltas on earlier ones) but only selected frames are converted to luma. The last yielded
    item is always a sentinel with ``index == n_frames`` and the total duration as ``timestamp``
    (its luma is an empty array).
    """
    fmt = im.format or "image"
    orientation = _orientation(im)
    t = 0.0
    start = time.monotonic() if started is None else started
    budgets = [b for b in (limits.max_decode_seconds, limits.max_animation_seconds)
               if b is not None]
    budget = min(budgets) if budgets else None
    for index in range(n_frames):
        try:
            im.seek(index)
            im.load()
            seconds = _frame_seconds(im)
            luma = _luma_of_loaded(im) if want(index, t) else None
        except FingerprintError:
            raise
        except MemoryError:
            raise MediaTooLarge(f"animated {fmt} needs too much memory to decode") from None
        except _DECODE_ERRORS as exc:
            raise CorruptMedia(
                f"cannot decode frame {index} of animated {fmt}: {_describe(exc)}"
            ) from None
        if budget is not None and time.monotonic() - start > budget:
            raise MediaTooLarge(
                f"decoding the animation took longer than the limit of {budget} s "
                f"(stopped at frame {index} of {n_frames})"
            )
        if luma is not None:
            luma = np.ascontiguousarray(apply_orientation(luma, orientation))
            yield AnimationFrame(index=index, timestamp=t, luma=luma)
        t += seconds
    yield AnimationFrame(index=n_frames, timestamp=t, luma=np.zeros((0, 0), dtype=np.float32))
