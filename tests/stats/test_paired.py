"""Paired pre/post analysis: linkage by self-generated code, the t-test and Wilcoxon signed-rank
test against scipy and R (t.test / wilcox.test with paired = TRUE), Cohen's d, terciles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from anshim import stats

from .rsurvey import R_MISSING, r_available, run_r


def _waves(n: int, seed: int) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = [stats.make_code("지민하서JKL"[k % 7], 1 + k % 12, k % 4, 1 + k % 28) for k in range(n)]
    codes = list(dict.fromkeys(codes))  # unique codes
    pre = np.round(rng.normal(60, 12, len(codes)), 1)
    post = np.round(pre + rng.normal(6, 8, len(codes)), 1)
    return codes, pre, codes, post


def test_linkage_reports_unmatched_and_duplicates() -> None:
    before = ["지0317", "민0521", "하1102", "서0710", "서0710"]
    after = ["지 03-1-7", "민0521", "K0101", "서0710"]
    link = stats.link_waves(before, [10, 20, 30, 40, 41], after, [15, 22, 50, 45])
    assert link.codes == ("민0521", "지0317")
    assert link.before == (20.0, 10.0) and link.after == (22.0, 15.0)
    assert link.unmatched_before == ("하1102",)
    assert link.unmatched_after == ("K0101",)
    assert link.duplicated == ("서0710",)


def test_overall_matches_scipy() -> None:
    codes, pre, codes2, post = _waves(120, 1)
    rep = stats.paired_analysis(codes, pre, codes2, post)
    r = rep.overall
    assert r.n_pairs == len(codes)
    d = post - pre
    t = sps.ttest_rel(post, pre)
    w = sps.wilcoxon(post, pre)
    assert r.mean_change == pytest.approx(d.mean(), abs=1e-12)
    assert r.t_statistic == pytest.approx(t.statistic, rel=1e-12)
    assert r.t_pvalue == pytest.approx(t.pvalue, rel=1e-9)
    assert r.wilcoxon_statistic == pytest.approx(w.statistic)
    assert r.wilcoxon_pvalue == pytest.approx(w.pvalue, rel=1e-9)
    ci = t.confidence_interval(0.95)
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert r.cohens_dz == pytest.approx(d.mean() / d.std(ddof=1))
    assert r.cohens_dz * math.sqrt(r.n_pairs) == pytest.approx(r.t_statistic)
    assert rep.unmatched == 0


def test_terciles_partition_the_pairs_by_prior_score() -> None:
    codes, pre, codes2, post = _waves(90, 2)
    rep = stats.paired_analysis(codes, pre, codes2, post)
    assert [g.group for g in rep.by_tercile] == ["low", "middle", "high"]
    assert sum(g.n_pairs for g in rep.by_tercile) == rep.overall.n_pairs
    assert rep.by_tercile[0].mean_before < rep.by_tercile[1].mean_before
    assert rep.by_tercile[1].mean_before < rep.by_tercile[2].mean_before


def test_too_few_pairs_and_bad_scores_are_typed_errors() -> None:
    with pytest.raises(stats.StatsInputError, match="at least 2"):
        stats.paired_analysis(["A0101"], [1.0], ["A0101"], [2.0])
    with pytest.raises(stats.StatsInputError, match="missing"):
        stats.paired_analysis(["A0101", "B0202"], [1.0, float("nan")], ["A0101"], [2.0])
    with pytest.raises(stats.StatsInputError):
        stats.normalise_code("  - ")


def test_no_change_at_all() -> None:
    r = stats.paired_analysis(
        ["A0101", "B0202", "C0303"], [5, 6, 7], ["a0101", "b0202", "c0303"], [5, 6, 7]
    ).overall
    assert r.mean_change == 0 and r.t_pvalue == 1.0 and r.wilcoxon_pvalue == 1.0


def test_code_scheme() -> None:
    assert stats.make_code("지영", 3, 1, 27) == "지0317"
    assert stats.make_code("jennifer", 11, 12, 5) == "J1195"
    assert stats.is_scheme_code("j 11-9-5") and not stats.is_scheme_code("J1395")
    with pytest.raises(stats.StatsInputError):
        stats.make_code("3", 3, 1, 1)


@pytest.mark.skipif(not r_available(), reason=R_MISSING)
def test_matches_r_t_test_and_wilcox_test(tmp_path: object) -> None:
    codes, pre, codes2, post = _waves(40, 3)
    post = post + np.arange(len(post)) * 1e-3  # distinct differences: exact Wilcoxon in both
    r = stats.paired_analysis(codes, pre, codes2, post).overall
    vec = lambda a: "c(" + ",".join(repr(float(x)) for x in a) + ")"  # noqa: E731
    script = (
        f"a <- {vec(post)}; b <- {vec(pre)}; t <- t.test(a, b, paired = TRUE); "
        "w <- wilcox.test(a, b, paired = TRUE, exact = TRUE); "
        "cat(sprintf('%.15g', c(t$statistic, t$p.value, t$conf.int, w$statistic, w$p.value)))"
    )
    proc = run_r(script, [])
    assert proc.returncode == 0, proc.stderr
    t_stat, t_p, lo, hi, v, w_p = (float(x) for x in proc.stdout.split())
    assert r.t_statistic == pytest.approx(t_stat, rel=1e-9)
    assert r.t_pvalue == pytest.approx(t_p, rel=1e-6)
    assert (r.ci_low, r.ci_high) == pytest.approx((lo, hi), rel=1e-9)
    # R reports V = the sum of positive ranks, scipy min(W+, W-); the p-values agree
    n = r.n_pairs
    assert min(v, n * (n + 1) / 2 - v) == pytest.approx(r.wilcoxon_statistic)
    assert r.wilcoxon_pvalue == pytest.approx(w_p, rel=1e-6)
