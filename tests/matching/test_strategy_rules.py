"""The robust matching rules of `anshim.matching.strategy`: which pairs may match and up to
which distance (issue 15: safeguards that measured nothing were removed)."""

from __future__ import annotations

import pytest

from anshim.matching.strategy import image_strategy, strategy_of


@pytest.mark.parametrize(("query", "variant", "expected"), [
    ("original", "original", "pdq"),
    ("reduced", "original", "pdq"),
    ("original", "crop-39-56-74-91", "crop"),
    ("trim", "trim-crop-39-39-39-39", "crop"),
    ("original", "trim", "trim"),
    ("dihedral-rotate90", "original", "dihedral"),
    ("dihedral-flipx", "crop-39-39-39-39", None),  # turned queries never meet the crop grid
    ("original", "rotate90", "dihedral"),
    ("screenshot", "crop-39-39-39-39", "screenshot"),
    ("unknown", "original", None),
])
def test_allowed_pairs(query: str, variant: str, expected: str | None) -> None:
    assert strategy_of(query, variant) == expected


@pytest.mark.parametrize("threshold", [31, 40, 48])
def test_every_allowed_pair_uses_the_bank_threshold(threshold: int) -> None:
    # No per-strategy caps (issue 15: at bank thresholds 40-56 they prevented no false match
    # and cost recall): a bank configured above 31 widens every robust pair too.
    for query, variant, strategy in (("original", "original", "pdq"),
                                     ("dihedral-rotate90", "original", "dihedral"),
                                     ("original", "crop-39-39-39-39", "crop"),
                                     ("original", "trim", "trim"),
                                     ("screenshot", "original", "screenshot")):
        assert image_strategy(query, variant, threshold, threshold) == strategy
        assert image_strategy(query, variant, threshold + 1, threshold) is None
    assert image_strategy("dihedral-flipx", "crop-39-39-39-39", 0, threshold) is None
