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

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .types import DIHEDRAL_NAMES

__all__ = [
    "LUMA_WEIGHTS",
    "MIN_HASHABLE_DIM",
    "bits_to_hex",
    "dct16_from_luma",
    "dihedral_dct16",
    "downsample_64",
    "hamming_distance",
    "hex_to_bits",
    "jarosz_window",
    "luma_from_rgb",
    "pdq_dihedral_from_luma",
    "pdq_from_luma",
    "pdq_from_luma_batch",
    "quality_64",
]

#: Luma weights of the reference (ITU-R BT.601).
LUMA_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)
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
    # Second pass: out[j] = sum_k v[k] * B[k, j], where output k averages input [lo[k], hi[k]].
    # So input j receives v[k] / count[k] from every output k whose window holds j,
    # i.e. k in [j - right, j + left].
    scaled = first / count[None, :]
    csum = np.zeros((64, n + 1), dtype=np.float64)
    np.cumsum(scaled, axis=1, out=csum[:, 1:])
    a = np.maximum(0, k - right)
    b = np.minimum(n - 1, k + left)
    # B[k, j] is nonzero for the first-pass output k reading input j; row vector v = first[r]
    # holds weights on *first-pass outputs*, so the composite weight on input j is
    # sum_k first[r, k] * B[k, j] = sum_{k: lo[k] <= j <= hi[k]} first[r, k] / count[k].
    second = csum[:, b + 1] - csum[:, a]
    second.setflags(write=False)
    return second.astype(np.float32)


def downsample_64(luma: NDArray[np.floating]) -> NDArray[np.float32]:
    """Blur and decimate a ``(H, W)`` or ``(N, H, W)`` luma array to ``(..., 64, 64)``."""
    arr = np.asarray(luma, dtype=np.float32)
    h, w = arr.shape[-2:]
    if h == 64 and w == 64:
        return arr.copy()
    rows = _downsample_matrix(h)
    cols = _downsample_matrix(w)
    return np.matmul(np.matmul(rows, arr), cols.T)


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
    luma: NDArray[np.floating],
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """DCT block and quality of ``(H, W)`` or ``(N, H, W)`` luma."""
    buf = downsample_64(luma)
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


def pdq_from_luma(luma: ArrayLike) -> tuple[str, int]:
    """PDQ hash (hex) and quality of one ``(H, W)`` luma array (values 0-255)."""
    arr = np.asarray(luma, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError("luma must be a 2-D array")
    if _too_small(arr.shape):
        return _ZERO_HASH, 0
    dct, quality = dct16_from_luma(arr)
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


def pdq_from_64_batch(buf64: NDArray[np.float32]) -> tuple[list[str], NDArray[np.int64]]:
    """PDQ hashes and qualities of already downsampled ``(N, 64, 64)`` arrays."""
    bits = _bits_from_dct(dct16_from_64(buf64))
    return [bits_to_hex(b) for b in bits], quality_64(buf64)


def dihedral_dct16(dct: NDArray[np.float32]) -> dict[str, NDArray[np.float32]]:
    """The DCT blocks of the 8 dihedral transforms of the image, derived from its DCT block.

    A flip of the image negates odd-indexed... (see the reference): coefficient ``k`` of the
    DCT (1-based frequency ``k + 1``) changes sign under a flip when ``k`` is even, and a
    transpose of the image transposes the block.
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


def pdq_dihedral_from_luma(luma: ArrayLike) -> tuple[dict[str, str], int]:
    """The 8 dihedral PDQ hashes (name -> hex, names in :data:`DIHEDRAL_NAMES`) and quality."""
    arr = np.asarray(luma, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError("luma must be a 2-D array")
    if _too_small(arr.shape):
        return dict.fromkeys(DIHEDRAL_NAMES, _ZERO_HASH), 0
    dct, quality = dct16_from_luma(arr)
    variants = dihedral_dct16(dct)
    return {name: bits_to_hex(_bits_from_dct(variants[name])) for name in DIHEDRAL_NAMES}, int(
        quality
    )
