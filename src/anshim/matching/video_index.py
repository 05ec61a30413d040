"""vPDQ matching rules: per-video match percentages and the strategy verdict the matching core
applies to a query video's frame hits (issue 15 item 6: the app's video matching goes through
here, over the core's frame index and the same `BankStore` as images).

Definitions follow Meta's vPDQ: frames whose quality is below ``quality_threshold``
are ignored on both sides; a query frame *matches* a video if some (considered) frame
of that video is within ``threshold``;

* ``query_match_percent``   = matched query frames / considered query frames * 100
* ``compared_match_percent`` = video frames within ``threshold`` of some considered
  query frame / considered frames of the video * 100
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from anshim.matching.pdq_codes import parse_pdq_hex
from anshim.matching.pdq_index import DEFAULT_THRESHOLD
from anshim.matching.strategy import ROBUST_VIDEO_QUERY_PERCENT, VIDEO_MATCH_PERCENT

DEFAULT_QUALITY_THRESHOLD = 50


@dataclass(frozen=True)
class VideoFrame:
    """One vPDQ frame: PDQ hash (64 hex), PDQ quality (0-100), timestamp in seconds."""

    pdq_hex: str
    quality: int
    timestamp: float = 0.0


@dataclass
class _StrategyHits:
    best: int
    variant: str
    query: set[str] = field(default_factory=set)
    compared: set[str] = field(default_factory=set)
    made_by: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class VideoVerdict:
    """How a queried video matched one banked video, by the strategy that decided it."""

    strategy: str  # vpdq, trim or crop
    distance: int
    variant: str
    query_percent: float
    compared_percent: float


@dataclass
class VideoHits:
    """The frame hits of a query video on one banked video, per strategy (each strategy is
    judged alone). The matching core's video path (`anshim.matching.core`): the frames live
    in the core's per-bank vPDQ index, the hits are re-checked through the `BankStore`."""

    per_strategy: dict[str, _StrategyHits] = field(default_factory=dict)

    def add(self, strategy: str, made_by: str, query_hash: str, registered_hash: str,
            distance: int, variant: str) -> None:
        """A query frame ``query_hash`` (made by query strategy `made_by`: ``original`` or
        ``trim``) within `distance` of the registered frame ``registered_hash``."""
        s = self.per_strategy.setdefault(strategy, _StrategyHits(distance, variant))
        if distance < s.best:
            s.best, s.variant = distance, variant
        s.query.add(query_hash)
        s.made_by.add(made_by)
        s.compared.add(registered_hash)

    def verdict(self, query_frames: dict[str, int], registered_frames: int | None,
                ) -> VideoVerdict | None:
        """Plain vPDQ when either side's share reaches `VIDEO_MATCH_PERCENT` (Meta's rule;
        shares as `match_percentages` defines them, over distinct frames); else the robust
        strategy whose query share is highest and reaches `ROBUST_VIDEO_QUERY_PERCENT`.
        `query_frames`: the query's distinct frames per query strategy; `registered_frames`:
        the banked video's distinct good ``original`` frames."""
        c_total = registered_frames or 1
        best: VideoVerdict | None = None
        for strategy, s in self.per_strategy.items():
            q_total = sum(query_frames.get(x, 0) for x in s.made_by) or 1
            q_pct = round(100.0 * len(s.query) / q_total, 1)
            c_pct = round(100.0 * min(len(s.compared), c_total) / c_total, 1)
            if strategy == "vpdq":
                ok = max(q_pct, c_pct) >= VIDEO_MATCH_PERCENT
            else:
                ok = q_pct >= ROBUST_VIDEO_QUERY_PERCENT
            if not ok:
                continue
            found = VideoVerdict(strategy, s.best, s.variant, q_pct, c_pct)
            if strategy == "vpdq":
                return found
            if best is None or (q_pct, -s.best) > (best.query_percent, -best.distance):
                best = found
        return best


def match_percentages(
    query: Sequence[VideoFrame],
    compared: Sequence[VideoFrame],
    *,
    threshold: int = DEFAULT_THRESHOLD,
    quality_threshold: int = DEFAULT_QUALITY_THRESHOLD,
) -> tuple[float, float]:
    """Brute-force vPDQ percentages of two videos (the reference definition)."""
    q = [f for f in query if f.quality >= quality_threshold]
    c = [f for f in compared if f.quality >= quality_threshold]
    if not q or not c:
        return 0.0, 0.0
    qc, cc = parse_pdq_hex([f.pdq_hex for f in q]), parse_pdq_hex([f.pdq_hex for f in c])
    within = np.bitwise_count(qc[:, None, :] ^ cc[None, :, :]).sum(axis=2) <= threshold
    return (
        100.0 * float(within.any(axis=1).sum()) / len(q),
        100.0 * float(within.any(axis=0).sum()) / len(c),
    )
