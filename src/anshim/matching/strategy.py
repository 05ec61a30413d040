"""The robust matching rules, in one place (issue 15): which (query strategy, registered variant)
pairs may match, their thresholds, the strategy recorded on a match and the
ranking between strategies. Used by the matching core (`anshim.matching.core`: the app, the
partner lookup, the crawl, `make bench-robustness`) and by `anshim.fingerprint.robust_strategy`.

Query strategies (what produced a query hash): ``original``, ``reduced`` (the reduced-scale
JPEG decode of pre-issue-20 entries), ``dihedral-<name>``, ``trim``, ``screenshot``; for video
frames ``original`` or ``trim``. Registered variants: ``original``, a dihedral name
(``rotate90`` ...: whole pictures, turned), ``trim``, ``crop-T-L-B-R`` and ``trim-crop-T-L-B-R``.

No Django, no image decoding here: plain values in, plain values out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: PDQ quality under which a hash is neither registered (extra variants) nor searched (Meta's
#: guidance: hashes of flat or tiny pictures are unreliable).
MIN_QUALITY = 50
#: A video matches a banked video when this share of either side's frames match.
VIDEO_MATCH_PERCENT = 80.0
#: A robust video strategy (``trim`` query frames, crop-grid variants) matches when this share
#: of the query's frames match: a trimmed or cropped copy holds only part of the registered
#: video, so the query share decides.
ROBUST_VIDEO_QUERY_PERCENT = 50.0
#: Meta's vPDQ frame rule (distance < 31), the cap for the robust video strategies.
ROBUST_VIDEO_MAX_DISTANCE = 30
#: Registered dihedral rows are whole pictures, turned: judged like ``original``. The names of
#: `anshim.fingerprint.types.DIHEDRAL_NAMES` (a test keeps them equal): importing the
#: fingerprint package here would load the media decoders into every matching process.
DIHEDRAL_VARIANTS = frozenset({"rotate90", "rotate180", "rotate270", "flipx", "flipy",
                               "flip_plus1", "flip_minus1"})
#: Among matches of one entry at the same distance, the simplest strategy is reported
#: (exact digests first, then the PDQ strategies, vPDQ last).
STRATEGY_RANK: dict[str, int] = {
    "sha256": 0, "md5": 1, "pdq": 2, "dihedral": 3, "trim": 4, "screenshot": 5, "crop": 6,
    "vpdq": 7,
}
#: When one entry matches several ways, the most certain kind is reported.
KIND_RANK: dict[str, int] = {"sha256": 0, "md5": 1, "pdq": 2, "vpdq": 3}
#: Largest distance per robust strategy (also capped by the bank's own threshold). The plain
#: pairs (pdq, dihedral) only ever use the bank's threshold.
STRATEGY_THRESHOLDS: dict[str, int] = {"trim": 31, "screenshot": 31, "crop": 31}
#: No separate quality gate on the crop and screenshot pairs (issue 15): one equal to
#: MIN_QUALITY measured nothing, since query hashes under it are never searched and crop/trim
#: variants under it never registered; it was removed rather than kept as an untested rule.


def rank(strategy: str) -> int:
    return STRATEGY_RANK.get(strategy, 99)


@dataclass(frozen=True, slots=True)
class QueryHash:
    """One fingerprint of an uploaded copy and the query strategy that produced it."""

    pdq: str
    quality: int
    #: ``original``, ``reduced``, ``dihedral-<name>``, ``trim`` or ``screenshot`` (video
    #: frames: ``original`` or ``trim``).
    strategy: str


@dataclass(frozen=True, slots=True)
class StrategyRules:
    """The safeguards on the robust pairs. `DEFAULT_RULES` is what the app runs;
    `bench-robustness` also runs `UNGUARDED_RULES` to show what the safeguards change."""

    #: Per-strategy distance caps (`STRATEGY_THRESHOLDS`).
    thresholds: dict[str, int] = field(default_factory=lambda: dict(STRATEGY_THRESHOLDS))


DEFAULT_RULES = StrategyRules()
#: No per-strategy cap (benchmark comparison only).
UNGUARDED_RULES = StrategyRules(thresholds={})


def strategy_of(query_strategy: str, variant: str) -> str | None:
    """The strategy a (query hash, registered variant) pair stands for; ``None``: not allowed.

    Rotated/mirrored queries and registered dihedral rows are compared with whole pictures
    only; crops of the registered picture answer plain, trimmed and screenshot queries.
    """
    if variant in DIHEDRAL_VARIANTS:
        plain = strategy_of(query_strategy, "original")
        return "dihedral" if plain == "pdq" else plain
    crop = variant.startswith(("crop-", "trim-crop-"))
    if query_strategy in ("original", "reduced"):
        # "reduced": the whole picture too, hashed as the pre-issue-20 entries were.
        if variant == "original":
            return "pdq"
        return "crop" if crop else "trim"
    if query_strategy.startswith("dihedral-"):
        return None if crop else "dihedral"
    if query_strategy == "trim":
        return "crop" if crop else "trim"
    if query_strategy == "screenshot":
        return "screenshot"
    return None


def image_strategy(query_strategy: str, query_quality: int | None, variant: str,
                   quality: int | None, distance: int, bank_threshold: int,
                   rules: StrategyRules = DEFAULT_RULES) -> str | None:
    """The strategy behind an image hit at `distance`, or None when the rules reject it.

    `query_quality` (None for a bare hash: the partner lookup) and `quality` are not judged
    here: MIN_QUALITY is applied where hashes are searched and registered.
    """
    strategy = strategy_of(query_strategy, variant)
    if strategy is None or distance > bank_threshold:
        return None
    cap = rules.thresholds.get(strategy)
    if cap is not None and distance > cap:
        return None
    return strategy


def video_strategy(query_strategy: str, variant: str, distance: int) -> str | None:
    """The strategy behind a video frame hit: whole-picture rows (``original``, ``trim``)
    answer ``vpdq`` (plain frames against ``original``) or ``trim``; crop-grid rows answer
    ``crop``. Robust pairs keep Meta's frame rule (distance < 31) whatever the bank's
    threshold."""
    if variant in ("original", "trim"):
        strategy = "vpdq" if query_strategy == "original" and variant == "original" else "trim"
    elif "crop-" in variant:
        strategy = "crop"
    else:
        return None
    if strategy != "vpdq" and distance > ROBUST_VIDEO_MAX_DISTANCE:
        return None
    return strategy
