"""Shared data makers and the brute-force oracle for the matching tests."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from anshim.matching import hamming_matrix


def random_codes(rng: np.random.Generator, n: int) -> NDArray[np.uint64]:
    return rng.integers(0, 2**64, (n, 4), dtype=np.uint64, endpoint=False)


def flip_random_bits(
    rng: np.random.Generator, codes: NDArray[np.uint64], bits: int
) -> NDArray[np.uint64]:
    """Copy of codes with exactly ``bits`` distinct bits flipped in each row."""
    out = codes.copy()
    for row in range(out.shape[0]):
        for p in rng.choice(256, size=bits, replace=False):
            out[row, p >> 6] ^= np.uint64(1) << np.uint64(p & 63)
    return out


def clustered_codes(rng: np.random.Generator, n: int, clusters: int) -> NDArray[np.uint64]:
    centers = random_codes(rng, clusters)
    out = centers[rng.integers(0, clusters, n)]
    for row in range(n):
        for p in rng.choice(256, size=int(rng.integers(0, 20)), replace=False):
            out[row, p >> 6] ^= np.uint64(1) << np.uint64(p & 63)
    return out


def brute_force(
    ids: NDArray[np.int64], codes: NDArray[np.uint64], queries: NDArray[np.uint64], threshold: int
) -> list[list[tuple[int, int]]]:
    dist = hamming_matrix(queries, codes)
    out = []
    for row in dist:
        hit = np.nonzero(row <= threshold)[0]
        out.append(sorted((int(row[h]), int(ids[h])) for h in hit))
    return [[(i, d) for d, i in found] for found in out]


def queries_near(
    rng: np.random.Generator, codes: NDArray[np.uint64], count: int
) -> NDArray[np.uint64]:
    """Queries at every distance 0..64 from bank entries, plus random ones."""
    src = codes[rng.integers(0, codes.shape[0], count)]
    q = np.concatenate([flip_random_bits(rng, src[i : i + 1], i % 65) for i in range(count)])
    return np.concatenate([q, random_codes(rng, 5)])
