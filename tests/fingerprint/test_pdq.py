"""Unit tests of the PDQ core on arrays."""

from __future__ import annotations

import numpy as np
import pytest

from anshim.fingerprint import pdq
from anshim.fingerprint.pdq import Axis

from .media import synthetic_rgb


def _box1d(v: np.ndarray, window: int) -> np.ndarray:
    """Direct port of the reference's box filter semantics (clipped window average)."""
    n = len(v)
    half = (window + 2) // 2
    out = np.empty(n)
    for o in range(n):
        lo, hi = max(0, o - (window - half)), min(n - 1, o + half - 1)
        out[o] = v[lo : hi + 1].mean()
    return out


def _reference_downsample(luma: np.ndarray) -> np.ndarray:
    a = luma.astype(np.float64)
    h, w = a.shape
    wr, wc = pdq.jarosz_window(w), pdq.jarosz_window(h)
    for _ in range(2):
        a = np.apply_along_axis(_box1d, 1, a, wr)
        a = np.apply_along_axis(_box1d, 0, a, wc)
    ri = (((np.arange(64) + 0.5) * h) / 64).astype(int)
    ci = (((np.arange(64) + 0.5) * w) / 64).astype(int)
    return a[ri][:, ci]


@pytest.mark.parametrize("shape", [(5, 9), (64, 64 + 1), (130, 257), (301, 199)])
def test_downsample_matches_direct_box_filters(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    luma = rng.uniform(0, 255, size=shape).astype(np.float32)
    np.testing.assert_allclose(pdq.downsample_64(luma), _reference_downsample(luma), atol=1e-3)


def test_batch_equals_single() -> None:
    rng = np.random.default_rng(2)
    stack = rng.uniform(0, 255, size=(4, 90, 120)).astype(np.float32)
    hashes, qualities = pdq.pdq_from_luma_batch(stack)
    for i in range(4):
        assert (hashes[i], int(qualities[i])) == pdq.pdq_from_luma(stack[i])


def test_hex_roundtrip_and_distance() -> None:
    luma = pdq.luma_from_rgb(synthetic_rgb())
    h, q = pdq.pdq_from_luma(luma)
    assert len(h) == 64 and h == h.lower() and 0 <= q <= 100
    assert pdq.bits_to_hex(pdq.hex_to_bits(h)) == h
    assert int(pdq.hex_to_bits(h).sum()) == 128  # median threshold: half the bits
    assert pdq.hamming_distance(h, h) == 0
    flipped = format(int(h, 16) ^ 0b1011, "064x")
    assert pdq.hamming_distance(h, flipped) == 3


def test_tiny_image_gives_zero_hash() -> None:
    assert pdq.pdq_from_luma(np.ones((4, 100), dtype=np.float32)) == ("0" * 64, 0)


def test_dihedral_variants_match_transformed_images() -> None:
    # 320 = 64 * 5: the box windows (3) and the sample grid are mirror-symmetric, so the DCT
    # identities hold exactly and the variants equal the hashes of the transformed images.
    luma = pdq.luma_from_rgb(synthetic_rgb(320, 320, seed=3))
    variants, _ = pdq.pdq_dihedral_from_luma(luma)
    # Meta's names: rotations are counter-clockwise, flipx mirrors top-bottom.
    transforms = {
        "original": luma,
        "rotate90": np.rot90(luma, 1),
        "rotate180": np.rot90(luma, 2),
        "rotate270": np.rot90(luma, -1),
        "flipx": luma[::-1, :],
        "flipy": luma[:, ::-1],
        "flip_plus1": luma.T,
        "flip_minus1": np.rot90(luma, 2).T,
    }
    for name, arr in transforms.items():
        direct, _ = pdq.pdq_from_luma(np.ascontiguousarray(arr))
        assert pdq.hamming_distance(variants[name], direct) <= 2, name


def test_scaled_axes_approximate_full_resolution() -> None:
    rgb = synthetic_rgb(800, 600, seed=4)
    luma = pdq.luma_from_rgb(rgb)
    full, q_full = pdq.pdq_from_luma(luma)
    small = luma.reshape(150, 4, 200, 4).mean(axis=(1, 3))
    scaled, q_scaled = pdq.pdq_from_luma(small, (Axis(600, 4), Axis(800, 4)))
    assert pdq.hamming_distance(full, scaled) <= 8
    assert abs(q_full - q_scaled) <= 5


def test_matches_pdqhash_binding_on_arrays() -> None:
    pdqhash = pytest.importorskip("pdqhash")
    for seed in range(3):
        rgb = synthetic_rgb(300 + 50 * seed, 200 + 30 * seed, seed=seed)
        bits, quality = pdqhash.compute(rgb)
        ref = pdq.bits_to_hex(bits.astype(bool))
        mine, q = pdq.pdq_from_luma(pdq.luma_from_rgb(rgb))
        assert pdq.hamming_distance(ref, mine) <= 2
        assert abs(int(quality) - q) <= 1
