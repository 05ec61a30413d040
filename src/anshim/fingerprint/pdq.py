"""The PDQ algorithm on luminance arrays (numpy).

This follows Meta's reference (``pdq/cpp/hashing/pdqhashing.cpp``): two passes of a Jarosz
box-filter pair along rows and columns with window ``ceil(n / 128)``, decimation to 64x64 at pixel
centres, a quality metric from the 64x64 gradients, the 16x16 low-frequency block of the 2D DCT
(coefficients 1..16) and one bit per coefficient above the median.

The box filters and the decimation are linear and separable, so they are folded into two small
matrices (64 x rows and 64 x columns) per image shape: ``A64 = R @ luma @ C.T``. That is two matrix
products instead of four passes over the full image, and it works on a batch of same-shape frames.

Bits are returned in hex order: ``bits[0]`` is the most significant bit of the first hex digit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .types import DIHEDRAL_NAMES

__all__ = [
    "LUMA_WEIGHTS",
    "MIN_HASHABLE_DIM",
    "Axis",
    "bits_to_hex",
    "dct16_from_luma",
    "dihedral_dct16",
    "downsample_64",
    "downsample_64_2d",
    "downsample_64_rgb",
    "hamming_distance",
    "hex_to_bits",
    "jarosz_window",
    "luma_from_rgb",
    "pdq_dihedral_from_luma",
    "pdq_from_64",
    "pdq_from_luma",
    "pdq_from_luma_batch",
    "quality_64",
]

#: Luma weights of the reference (ITU-R BT.601).
LUMA_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)
_LUMA_VECTOR = np.array(LUMA_WEIGHTS, dtype=np.float32)
#: Images smaller than this along either side get an all-zero hash and quality 0, as in Meta's.
MIN_HASHABLE_DIM = 5

_DCT_16x64: NDArray[np.float32] = (
    np.sqrt(2.0 / 64.0)
    * np.cos(
        (np.pi / 2.0 / 64.0)
        * np.arange(1, 17, dtype=np.float64)[:, None]
        * (2 * np.arange(64, dtype=np.float64)[None, :] + 1)
    )
).astype(np.float32)


def luma_from_rgb(rgb: NDArray[np.generic]) -> NDArray[np.float32]:
    """Float32 luminance ``0.299 R + 0.587 G + 0.114 B`` of an ``(..., 3)`` array."""
    r, g, b = LUMA_WEIGHTS
    arr = np.asarray(rgb)
    out = arr[..., 0].astype(np.float32) * np.float32(r)
    out += arr[..., 1].astype(np.float32) * np.float32(g)
    out += arr[..., 2].astype(np.float32) * np.float32(b)
    return out


def jarosz_window(old_dim: int, new_dim: int = 64) -> int:
    """Box-filter window size of the reference: ``ceil(old / (2 * new))``."""
    return (old_dim + 2 * new_dim - 1) // (2 * new_dim)


@lru_cache(maxsize=64)
def _downsample_matrix(n: int) -> NDArray[np.float32]:
    """The 64 x n matrix of two reference box-filter passes followed by centre decimation."""
    window = jarosz_window(n)
    half = (window + 2) // 2
    left = window - half  # samples to the left of the output position
    right = half - 1  # samples to the right
    k = np.arange(n)
    lo = np.maximum(0, k - left)
    hi = np.minimum(n - 1, k + right)
    count = (hi - lo + 1).astype(np.float64)
    idx = (((np.arange(64) + 0.5) * n) / 64).astype(np.int64)
    # First pass, only the rows we keep: row r averages [lo[idx_r], hi[idx_r]].
    first = np.zeros((64, n), dtype=np.float64)
    for r, i in enumerate(idx):
        first[r, lo[i] : hi[i] + 1] = 1.0 / count[i]
    # Second pass (row vector times box matrix B): input j receives first[r, k] / count[k]
    # from every output k whose window [lo[k], hi[k]] holds j, i.e. k in [j - right, j + left].
    scaled = first / count[None, :]
    csum = np.zeros((64, n + 1), dtype=np.float64)
    np.cumsum(scaled, axis=1, out=csum[:, 1:])
    a = np.maximum(0, k - right)
    b = np.minimum(n - 1, k + left)
    second = csum[:, b + 1] - csum[:, a]
    second.setflags(write=False)
    return second.astype(np.float32)


#: Largest number of float32 elements gathered at once by :func:`downsample_64` (32 MB).
_GATHER_BUDGET = 8_000_000


@dataclass(frozen=True, slots=True)
class Axis:
    """How one axis of a luma array relates to the full-resolution image.

    ``full`` pixels of the displayed image were decoded as ``ceil(full / scale)`` pixels (the
    JPEG decoder averaged blocks of ``scale``); ``reversed`` says the stored axis runs the other
    way (EXIF orientation applied after decoding).
    """

    full: int
    scale: int = 1
    reversed: bool = False


@lru_cache(maxsize=128)
def _axis_band(axis: Axis, n: int) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Band of the 64 x n filter matrix for an axis of ``n`` stored pixels.

    With ``scale > 1`` the full-resolution filter is summed over the blocks each reduced pixel
    stands for, so the blur and the sample positions are those of the full image. Only the nonzero
    band is kept (per output row, ``K`` input indices and weights, ``K`` about ``n / 32``): the
    products cost O(n) per line instead of O(64 n).
    """
    if axis.scale <= 1:
        dense = _downsample_matrix(n).astype(np.float64)
    else:
        s = axis.scale
        full = _downsample_matrix(axis.full).astype(np.float64)
        if axis.reversed:
            full = full[:, ::-1]
        padded = np.zeros((64, n * s), dtype=np.float64)
        m = min(axis.full, n * s)
        padded[:, :m] = full[:, :m]
        dense = padded.reshape(64, n, s).sum(axis=2)
        if axis.reversed:
            dense = dense[:, ::-1]
    nonzero = dense != 0
    starts = np.argmax(nonzero, axis=1)
    ends = n - np.argmax(nonzero[:, ::-1], axis=1)
    width = int((ends - starts).max())
    idx = starts[:, None] + np.arange(width)[None, :]
    inside = idx < ends[:, None]
    idx = np.minimum(idx, n - 1)
    weights = np.where(inside, np.take_along_axis(dense, idx, axis=1), 0.0).astype(np.float32)
    idx = idx.astype(np.intp)
    idx.setflags(write=False)
    weights.setflags(write=False)
    return idx, weights


def downsample_64(
    luma: NDArray[np.floating], axes: tuple[Axis, Axis] | None = None
) -> NDArray[np.float32]:
    """Blur and decimate a ``(H, W)`` or ``(N, H, W)`` luma array to ``(..., 64, 64)``.

    Equivalent to ``R @ luma @ C.T`` with the reference's filter matrices, computed on their
    nonzero bands with ``einsum`` (no BLAS threads: predictable on busy machines). ``axes``
    describes a reduced-scale decode (see :class:`Axis`); by default the array is full size.
    """
    arr = np.asarray(luma, dtype=np.float32)
    h, w = arr.shape[-2:]
    if axes is None:
        if h == 64 and w == 64:
            return arr.copy()
        if arr.ndim == 2:
            return downsample_64_2d(arr)
        axes = (Axis(h), Axis(w))
    ridx, rw = _axis_band(axes[0], h)
    cidx, cw = _axis_band(axes[1], w)
    # The gathered band holds 64 * K rows (about twice the image): do it in row chunks so that
    # a large image needs only a bounded amount of extra memory.
    batch = int(np.prod(arr.shape[:-2], dtype=np.int64))
    per_row = max(1, ridx.shape[1] * w * batch)
    step = max(1, min(64, _GATHER_BUDGET // per_row))
    rows = np.empty((*arr.shape[:-2], 64, w), dtype=np.float32)
    for r0 in range(0, 64, step):
        r1 = min(64, r0 + step)
        rows[..., r0:r1, :] = np.einsum("rk,...rkw->...rw", rw[r0:r1], arr[..., ridx[r0:r1], :])
    return np.einsum("ck,...rck->...rc", cw, rows[..., cidx])


def _slab_weights(n: int) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """For each of the 64 rows of :func:`_downsample_matrix` ``(n)``: where its nonzero run
    starts and ends and its weights (padded with zeros), computed on the run only: O(n), not
    O(64 n), which matters when every upload has a new size."""
    window = jarosz_window(n)
    half = (window + 2) // 2
    left = window - half
    right = half - 1
    k = np.arange(n)
    lo = np.maximum(0, k - left)
    hi = np.minimum(n - 1, k + right)
    inv = 1.0 / (hi - lo + 1).astype(np.float64)
    cum = np.zeros(n + 1, dtype=np.float64)
    np.cumsum(inv, out=cum[1:])
    idx = (((np.arange(64) + 0.5) * n) / 64).astype(np.int64)
    # Output r averages, over k in [lo[i], hi[i]] (i = idx[r]), the first pass's box around k:
    # input j gets inv[i] * sum(inv[k]) over those k whose box [lo[k], hi[k]] holds j,
    # i.e. k in [j - right, j + left] (clipped), as in _downsample_matrix.
    starts = lo[lo[idx]]
    ends = hi[hi[idx]] + 1
    width = int((ends - starts).max())
    j = starts[:, None] + np.arange(width)[None, :]
    inside = j < ends[:, None]
    jc = np.minimum(j, n - 1)
    first = np.maximum(lo[idx][:, None], np.maximum(0, jc - right))
    last = np.minimum(hi[idx][:, None], np.minimum(n - 1, jc + left))
    weights = np.where(inside & (last >= first), cum[last + 1] - cum[first], 0.0)
    weights *= inv[idx][:, None]
    return starts, ends, weights


@dataclass(frozen=True, slots=True)
class _Slabs:
    """The 64 x n filter matrix as 64 contiguous runs: output line ``i`` reads inputs
    ``starts[i]:ends[i]`` with ``weights[i, :ends[i] - starts[i]]``; ``dense_t`` is the whole
    matrix transposed (n x 64), for the second, small product."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    weights: NDArray[np.float32]
    dense_t: NDArray[np.float32]


@lru_cache(maxsize=256)
def _slabs(n: int) -> _Slabs:
    starts, ends, weights = _slab_weights(n)
    w32 = weights.astype(np.float32)
    cols = starts[:, None] + np.arange(weights.shape[1])[None, :]
    inside = cols < ends[:, None]
    dense_t = np.zeros((n, 64), dtype=np.float32)
    dense_t[cols[inside], np.nonzero(inside)[0]] = w32[inside]
    w32.setflags(write=False)
    dense_t.setflags(write=False)
    return _Slabs(tuple(starts.tolist()), tuple(ends.tolist()), w32, dense_t)


def downsample_64_2d(luma: NDArray[np.floating]) -> NDArray[np.float32]:
    """:func:`downsample_64` of one full-size ``(H, W)`` array, by slabs.

    Each of the 64 output rows reads a contiguous slab of about ``H / 64`` input rows (the
    filter's support): one small matrix-vector product per slab reads the image about twice, with
    no gathered copy; the 64 x W result then takes one small product with the column filter.
    """
    arr = np.asarray(luma)
    h, w = arr.shape
    band = _slabs(h)
    rows = np.empty((64, w), dtype=np.float32)
    for i, (start, end) in enumerate(zip(band.starts, band.ends, strict=True)):
        np.matmul(band.weights[i, : end - start], arr[start:end].astype(np.float32, copy=False),
                  out=rows[i])
    return np.matmul(rows, _slabs(w).dense_t)


#: EXIF orientation -> (stored axes swapped for display, stored rows reversed, stored columns
#: reversed), in the filter's terms (checked against :func:`numpy.rot90` views in the tests).
_ORIENTED_FILTERS: dict[int, tuple[bool, bool, bool]] = {
    1: (False, False, False),
    2: (False, False, True),
    3: (False, True, True),
    4: (False, True, False),
    5: (True, False, False),
    6: (True, True, False),
    7: (True, True, True),
    8: (True, False, True),
}


def downsample_64_rgb(rgb: NDArray[np.uint8], orientation: int = 1) -> NDArray[np.float32]:
    """Luma, blur and decimation of a full-size ``(H, W, 3)`` uint8 RGB array in one pass.

    The same as ``downsample_64(luma_from_rgb(apply_orientation(rgb, orientation)))`` (all the
    steps are linear; the results agree to float32 rounding), but the row filter runs on the
    interleaved bytes slab by slab (each slab converted to float32 while it is in cache), the
    luma weights are applied to the 64 x 3W result, and an EXIF orientation turns the filters,
    not the pixels (a turned copy of a 3-channel photo is a slow, cache-hostile gather): no
    full-size float or turned image is ever made. About 8x less time than luma then filter.
    """
    arr = np.asarray(rgb)
    h, w = arr.shape[0], arr.shape[1]
    swap, rows_rev, cols_rev = _ORIENTED_FILTERS.get(orientation, (False, False, False))
    flat = arr.reshape(h, w * 3)
    band = _slabs(h)
    rows = np.empty((64, w * 3), dtype=np.float32)
    for i, (start, end) in enumerate(zip(band.starts, band.ends, strict=True)):
        weights = band.weights[i, : end - start]
        if rows_rev:
            start, end, weights = h - end, h - start, weights[::-1]
        np.matmul(weights, flat[start:end].astype(np.float32), out=rows[i])
    luma_rows = np.matmul(rows.reshape(64 * w, 3), _LUMA_VECTOR).reshape(64, w)
    cols_t = _slabs(w).dense_t
    out = np.matmul(luma_rows, cols_t[::-1] if cols_rev else cols_t)
    return np.ascontiguousarray(out.T) if swap else out


def quality_64(buf64: NDArray[np.floating]) -> NDArray[np.int64]:
    """PDQ quality (0-100) of ``(..., 64, 64)`` downsampled luma, as the reference computes it."""
    a = np.asarray(buf64, dtype=np.float32)
    dv = np.trunc((a[..., :-1, :] - a[..., 1:, :]) * np.float32(100) / np.float32(255))
    dh = np.trunc((a[..., :, :-1] - a[..., :, 1:]) * np.float32(100) / np.float32(255))
    total = np.abs(dv).sum(axis=(-2, -1), dtype=np.int64) + np.abs(dh).sum(
        axis=(-2, -1), dtype=np.int64
    )
    return np.minimum(total // 90, 100)


def dct16_from_64(buf64: NDArray[np.floating]) -> NDArray[np.float32]:
    """The 16x16 block of DCT coefficients 1..16 of ``(..., 64, 64)`` arrays."""
    d = _DCT_16x64
    return np.matmul(np.matmul(d, np.asarray(buf64, dtype=np.float32)), d.T)


def dct16_from_luma(
    luma: NDArray[np.floating], axes: tuple[Axis, Axis] | None = None
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """DCT block and quality of ``(H, W)`` or ``(N, H, W)`` luma."""
    buf = downsample_64(luma, axes)
    return dct16_from_64(buf), quality_64(buf)


def _bits_from_dct(dct: NDArray[np.float32]) -> NDArray[np.bool_]:
    flat = dct.reshape(*dct.shape[:-2], 256)
    # Torben's median of 256 values = the 128th smallest.
    median = np.partition(flat, 127, axis=-1)[..., 127:128]
    above = flat > median
    # Bit k = 16 i + j; the hex string prints word 15 first, most significant bit first.
    return np.ascontiguousarray(above[..., ::-1])


def bits_to_hex(bits: NDArray[np.bool_]) -> str:
    """256 hex-order bits -> 64 lowercase hex characters."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def hex_to_bits(hex_hash: str) -> NDArray[np.bool_]:
    """64 hex characters -> 256 hex-order bits."""
    raw = bytes.fromhex(hex_hash)
    if len(raw) != 32:
        raise ValueError("a PDQ hash has 64 hex characters")
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8)).astype(bool)


def hamming_distance(a: str, b: str) -> int:
    """Number of differing bits between two PDQ hex hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _too_small(shape: tuple[int, ...]) -> bool:
    return shape[-2] < MIN_HASHABLE_DIM or shape[-1] < MIN_HASHABLE_DIM


_ZERO_HASH = "0" * 64


def _full_shape(arr: NDArray[np.float32], axes: tuple[Axis, Axis] | None) -> tuple[int, int]:
    if axes is None:
        return (int(arr.shape[-2]), int(arr.shape[-1]))
    return (axes[0].full, axes[1].full)


def pdq_from_luma(luma: ArrayLike, axes: tuple[Axis, Axis] | None = None) -> tuple[str, int]:
    """PDQ hash (hex) and quality of one ``(H, W)`` luma array (values 0-255).

    ``axes`` describes a reduced-scale decode (see :class:`Axis`); by default the array is the
    full image.
    """
    arr = np.asarray(luma, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError("luma must be a 2-D array")
    if _too_small(_full_shape(arr, axes)) or _too_small(arr.shape):
        return _ZERO_HASH, 0
    dct, quality = dct16_from_luma(arr, axes)
    return bits_to_hex(_bits_from_dct(dct)), int(quality)


def pdq_from_luma_batch(lumas: ArrayLike) -> tuple[list[str], NDArray[np.int64]]:
    """PDQ hashes and qualities of an ``(N, H, W)`` stack of same-shape luma arrays."""
    arr = np.asarray(lumas, dtype=np.float32)
    if arr.ndim != 3:
        raise ValueError("lumas must be a 3-D array (N, H, W)")
    if _too_small(arr.shape):
        return [_ZERO_HASH] * arr.shape[0], np.zeros(arr.shape[0], dtype=np.int64)
    dct, quality = dct16_from_luma(arr)
    bits = _bits_from_dct(dct)
    return [bits_to_hex(b) for b in bits], quality.astype(np.int64)


def pdq_from_64(buf64: NDArray[np.float32], dihedral: bool = False,
                ) -> tuple[str, int, dict[str, str] | None]:
    """PDQ hash, quality and (when ``dihedral``) the 8 variants of one downsampled 64x64 array."""
    dct = dct16_from_64(buf64)
    quality = int(quality_64(buf64))
    if not dihedral:
        return bits_to_hex(_bits_from_dct(dct)), quality, None
    variants = dihedral_dct16(dct)
    hashes = {name: bits_to_hex(_bits_from_dct(variants[name])) for name in DIHEDRAL_NAMES}
    return hashes["original"], quality, hashes


def pdq_from_64_batch(buf64: NDArray[np.float32]) -> tuple[list[str], NDArray[np.int64]]:
    """PDQ hashes and qualities of already downsampled ``(N, 64, 64)`` arrays."""
    bits = _bits_from_dct(dct16_from_64(buf64))
    return [bits_to_hex(b) for b in bits], quality_64(buf64)


def dihedral_dct16(dct: NDArray[np.float32]) -> dict[str, NDArray[np.float32]]:
    """The DCT blocks of the 8 dihedral transforms of the image, derived from its DCT block.

    As in Meta's ``dct16OriginalTo*``: flipping the image along an axis negates the coefficients
    of odd frequency (even 0-based index) along that axis, and transposing the image transposes
    the block.
    """
    i = np.arange(16)
    even = np.where(i % 2 == 0, -1.0, 1.0).astype(np.float32)  # sign under a flip of that axis
    rows = even[:, None]
    cols = even[None, :]
    return {
        "original": dct,
        "rotate90": (dct * cols).T,
        "rotate180": dct * rows * cols,
        "rotate270": (dct * rows).T,
        "flipx": dct * rows,
        "flipy": dct * cols,
        "flip_plus1": dct.T,
        "flip_minus1": (dct * rows * cols).T,
    }


def pdq_dihedral_from_luma(
    luma: ArrayLike, axes: tuple[Axis, Axis] | None = None
) -> tuple[dict[str, str], int]:
    """The 8 dihedral PDQ hashes (name -> hex, names in :data:`DIHEDRAL_NAMES`) and quality."""
    arr = np.asarray(luma, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError("luma must be a 2-D array")
    if _too_small(_full_shape(arr, axes)) or _too_small(arr.shape):
        return dict.fromkeys(DIHEDRAL_NAMES, _ZERO_HASH), 0
    dct, quality = dct16_from_luma(arr, axes)
    variants = dihedral_dct16(dct)
    return {name: bits_to_hex(_bits_from_dct(variants[name])) for name in DIHEDRAL_NAMES}, int(
        quality
    )
