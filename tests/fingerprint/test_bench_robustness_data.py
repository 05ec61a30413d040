"""The generated pictures of `make bench-robustness` (issue 15): deterministic by seed, the
registered and negative sets disjoint, every picture usable by PDQ."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository's bench/

from bench.bench_robustness_data import MIN_QUALITY, generated_picture, generated_sets

from anshim.fingerprint.pdq import hamming_distance, luma_from_rgb, pdq_from_luma


def test_pictures_are_deterministic_by_seed_and_differ_between_seeds() -> None:
    a, b, c = generated_picture(11), generated_picture(11), generated_picture(12)
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)
    assert 160 <= a.shape[0] <= 320 and 200 <= a.shape[1] <= 320


def test_sets_are_disjoint_and_usable() -> None:
    registered, negatives = generated_sets(12, 12)
    assert len(registered) == 12 and len(negatives) == 12
    assert not {i.group for i in registered} & {i.group for i in negatives}
    hashes = {}
    for item in registered + negatives:
        h, quality = pdq_from_luma(luma_from_rgb(item.rgb))
        assert quality >= MIN_QUALITY
        hashes[item.name] = h
    # No negative is near a registered picture (the sets share no content).
    assert min(hamming_distance(hashes[r.name], hashes[n.name])
               for r in registered for n in negatives) > 31
    assert generated_sets(12, 12)[1][0].name == negatives[0].name
