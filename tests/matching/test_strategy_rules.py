"""The robust matching rules of `anshim.matching.strategy`: which pairs may match and up to
which distance (issue 15: the safeguards that stay are the ones the benchmark measures)."""

from __future__ import annotations

import pytest

from anshim.matching.strategy import (
    DEFAULT_RULES,
    STRATEGY_THRESHOLDS,
    UNGUARDED_RULES,
    image_strategy,
    strategy_of,
)


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


def test_the_bank_threshold_bounds_every_pair() -> None:
    for variant in ("original", "trim", "crop-39-39-39-39"):
        assert image_strategy("original", 100, variant, 100, 31, 31) is not None
        assert image_strategy("original", 100, variant, 100, 32, 31) is None


def test_per_strategy_caps_act_only_above_the_default_threshold() -> None:
    # A bank configured at 48: plain and dihedral pairs use it, the robust ones stop at 31.
    assert image_strategy("original", 100, "original", 100, 45, 48) == "pdq"
    assert image_strategy("dihedral-rotate90", 100, "original", 100, 45, 48) == "dihedral"
    for query, variant in (("original", "crop-39-39-39-39"), ("original", "trim"),
                           ("screenshot", "original")):
        cap = STRATEGY_THRESHOLDS[strategy_of(query, variant) or ""]
        assert image_strategy(query, 100, variant, 100, cap, 48) is not None
        assert image_strategy(query, 100, variant, 100, cap + 1, 48, DEFAULT_RULES) is None
        assert image_strategy(query, 100, variant, 100, cap + 1, 48, UNGUARDED_RULES) is not None


def test_no_quality_gate_beyond_min_quality() -> None:
    # The crop/screenshot quality gate equal to MIN_QUALITY measured nothing and was removed:
    # MIN_QUALITY is applied where hashes are searched and registered, not per pair.
    assert image_strategy("screenshot", 60, "original", 40, 10, 31) == "screenshot"
    assert image_strategy("original", None, "crop-39-39-39-39", 80, 10, 31) == "crop"
