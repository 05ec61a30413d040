"""Paired analysis of pre / post / follow-up tests linked by a self-generated code.

Students write the same code at every wave (see :mod:`anshim.stats.codes` and docs/stats.md);
answers are linked by the normalised code alone. A code that appears more than once in a wave
cannot be linked safely (two students chose the same code, or one answered twice) and is left
out of the pairs and reported, as are codes found in only one wave.

Statistics of the changes d = after - before over the linked pairs:

- mean change with its 95% t interval, and the paired t-test (``scipy.stats.ttest_rel``);
- the Wilcoxon signed-rank test (``scipy.stats.wilcoxon`` with its defaults: zero differences
  dropped, exact distribution for small samples without ties, else the normal approximation);
- Cohen's d for paired data as d_z = mean(d) / sd(d) (sd with n - 1). d_z is what a paired
  t-test's power depends on (t = d_z * sqrt(n)); ``d_av`` = mean(d) / mean of the two waves' SDs
  is given as well for comparison with between-group effect sizes.
- the same by prior-score tercile: pairs ranked by their *before* score and cut into thirds at
  the 1/3 and 2/3 quantiles (``numpy.quantile``, linear); ties at a cut go to the lower group.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _st

from .codes import normalise_code
from .errors import StatsInputError

__all__ = ["Linkage", "PairedReport", "PairedResult", "link_waves", "paired_analysis"]

TERCILES = ("low", "middle", "high")


@dataclass(frozen=True, slots=True)
class Linkage:
    """Which codes of two waves were linked."""

    #: the normalised codes linked, in sorted order, with both scores
    codes: tuple[str, ...]
    before: tuple[float, ...]
    after: tuple[float, ...]
    #: codes found in only one wave
    unmatched_before: tuple[str, ...]
    unmatched_after: tuple[str, ...]
    #: codes found more than once in a wave (left out)
    duplicated: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PairedResult:
    """Statistics of the changes over one group of linked pairs."""

    group: str
    n_pairs: int
    mean_before: float
    mean_after: float
    mean_change: float
    sd_change: float
    ci_low: float
    ci_high: float
    t_statistic: float
    t_df: int
    t_pvalue: float
    wilcoxon_statistic: float
    wilcoxon_pvalue: float
    cohens_dz: float
    cohens_dav: float


@dataclass(frozen=True, slots=True)
class PairedReport:
    """The overall result, the results by prior-score tercile, and the linkage losses."""

    overall: PairedResult
    by_tercile: tuple[PairedResult, ...]
    linkage: Linkage

    @property
    def unmatched(self) -> int:
        return len(self.linkage.unmatched_before) + len(self.linkage.unmatched_after)


def link_waves(
    before_codes: Sequence[str],
    before_scores: ArrayLike,
    after_codes: Sequence[str],
    after_scores: ArrayLike,
) -> Linkage:
    """Link two waves by normalised code (see the module docstring)."""
    bs = _scores(before_scores, len(before_codes), "before")
    as_ = _scores(after_scores, len(after_codes), "after")
    bc = [normalise_code(c) for c in before_codes]
    ac = [normalise_code(c) for c in after_codes]
    cb, ca = Counter(bc), Counter(ac)
    dup = sorted({c for c, k in cb.items() if k > 1} | {c for c, k in ca.items() if k > 1})
    dups = set(dup)
    bmap = {c: float(s) for c, s in zip(bc, bs, strict=True) if c not in dups}
    amap = {c: float(s) for c, s in zip(ac, as_, strict=True) if c not in dups}
    both = sorted(bmap.keys() & amap.keys())
    return Linkage(
        codes=tuple(both),
        before=tuple(bmap[c] for c in both),
        after=tuple(amap[c] for c in both),
        unmatched_before=tuple(sorted(bmap.keys() - amap.keys())),
        unmatched_after=tuple(sorted(amap.keys() - bmap.keys())),
        duplicated=tuple(dup),
    )


def _scores(values: ArrayLike, n: int, wave: str) -> np.ndarray:
    try:
        s = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise StatsInputError(f"{wave} scores are not numeric") from None
    if s.shape != (n,):
        raise StatsInputError(f"{wave}: {n} codes but {s.shape} scores")
    if not np.isfinite(s).all():
        raise StatsInputError(f"{wave} scores must all be numbers (a missing score?)")
    return s


def paired_analysis(
    before_codes: Sequence[str],
    before_scores: ArrayLike,
    after_codes: Sequence[str],
    after_scores: ArrayLike,
    *,
    level: float = 0.95,
) -> PairedReport:
    """Link two waves and analyse the changes, overall and by prior-score tercile.

    Raises :class:`StatsInputError` when fewer than 2 pairs link (no variance).
    """
    link = link_waves(before_codes, before_scores, after_codes, after_scores)
    if len(link.codes) < 2:
        raise StatsInputError(
            f"only {len(link.codes)} code(s) link the two waves; at least 2 pairs are needed"
        )
    b = np.array(link.before)
    a = np.array(link.after)
    overall = paired_result("all", b, a, level=level)
    q1, q2 = np.quantile(b, [1 / 3, 2 / 3])
    groups = np.where(b <= q1, 0, np.where(b <= q2, 1, 2))
    terciles = tuple(
        paired_result(TERCILES[g], b[groups == g], a[groups == g], level=level)
        for g in range(3)
        if (groups == g).sum() >= 2
    )
    return PairedReport(overall=overall, by_tercile=terciles, linkage=link)


def paired_result(
    group: str, before: np.ndarray, after: np.ndarray, *, level: float = 0.95
) -> PairedResult:
    """Statistics of ``after - before`` over one group of at least 2 pairs."""
    n = int(before.shape[0])
    if n < 2:
        raise StatsInputError("at least 2 pairs are needed")
    d = after - before
    md = float(d.mean())
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    q = float(_st.t.ppf(0.5 + level / 2, n - 1))
    if sd > 0:
        tt = _st.ttest_rel(after, before)
        t_stat, t_p = float(tt.statistic), float(tt.pvalue)
    else:  # all changes equal: t is infinite (or undefined for no change)
        t_stat = math.copysign(math.inf, md) if md else math.nan
        t_p = 0.0 if md else 1.0
    if np.any(d != 0):
        wx = _st.wilcoxon(after, before)
        w_stat, w_p = float(wx.statistic), float(wx.pvalue)
    else:
        w_stat, w_p = 0.0, 1.0
    sd_av = (float(before.std(ddof=1)) + float(after.std(ddof=1))) / 2
    return PairedResult(
        group=group,
        n_pairs=n,
        mean_before=float(before.mean()),
        mean_after=float(after.mean()),
        mean_change=md,
        sd_change=sd,
        ci_low=md - q * se,
        ci_high=md + q * se,
        t_statistic=t_stat,
        t_df=n - 1,
        t_pvalue=t_p,
        wilcoxon_statistic=w_stat,
        wilcoxon_pvalue=w_p,
        cohens_dz=md / sd if sd > 0 else math.nan,
        cohens_dav=md / sd_av if sd_av > 0 else math.nan,
    )
