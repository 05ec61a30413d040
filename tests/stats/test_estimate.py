"""Engine behaviour beyond the R comparison: typed errors, edge cases, the dense and sparse
variance paths, weights and response rates."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from anshim import stats

from .rsurvey import generate

estimate_mod = importlib.import_module("anshim.stats.estimate")


def _design(seed: int = 0, n: int = 1200) -> tuple[stats.Design, object]:
    g = generate(n, seed=seed, strata=4, psu_per_stratum=4)
    return stats.make_design(g.w, strata=g.stratum, psu=g.psu), g


def test_dense_and_sparse_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    design, g = _design(1)
    by = {"grade": g.grade, "sex": g.sex}  # type: ignore[attr-defined]
    dense = stats.estimate(design, g.y, by=by)  # type: ignore[attr-defined]
    monkeypatch.setattr(estimate_mod, "_DENSE_CELLS", 0)
    sparse = stats.estimate(design, g.y, by=by)  # type: ignore[attr-defined]
    for a, b in zip(dense, sparse, strict=True):
        assert a.by == b.by and a.n == b.n
        assert a.se == pytest.approx(b.se, rel=1e-12)


def test_linearisation_by_hand() -> None:
    # two strata of two PSUs, one response each: var = sum_h 2 * sum_p (z_p - mean z_h)^2
    w = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([1.0, 0.0, 1.0, 1.0])
    d = stats.make_design(w, strata=[1, 1, 2, 2], psu=[1, 2, 1, 2])
    (e,) = stats.prevalence(d, y)
    p = 8 / 10
    z = w * (y - p) / 10
    var = 2 * ((z[0] - z[:2].mean()) ** 2 + (z[1] - z[:2].mean()) ** 2) + 2 * (
        (z[2] - z[2:].mean()) ** 2 + (z[3] - z[2:].mean()) ** 2
    )
    assert e.estimate == pytest.approx(p)
    assert e.se == pytest.approx(math.sqrt(var))
    assert e.df == 2 and e.numerator == 3 and e.n == 4 and e.weighted_n == 10


def test_kind_auto_and_errors() -> None:
    design, g = _design(2)
    assert stats.estimate(design, g.y)[0].kind == "proportion"  # type: ignore[attr-defined]
    assert stats.estimate(design, g.score)[0].kind == "mean"  # type: ignore[attr-defined]
    with pytest.raises(stats.StatsInputError, match="not a 0/1 indicator"):
        stats.prevalence(design, g.score)  # type: ignore[attr-defined]
    with pytest.raises(stats.StatsInputError, match="values, the design"):
        stats.mean(design, [1.0, 2.0])
    with pytest.raises(stats.StatsInputError, match="level"):
        stats.mean(design, g.score, level=1.5)  # type: ignore[attr-defined]
    with pytest.raises(stats.StatsInputError, match="by column 'sex'"):
        stats.mean(design, g.score, by={"sex": ["F"]})  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0, float("nan")], "finite"),
        ([1.0, -2.0], "finite and >= 0"),
        ([0.0, 0.0], "zero"),
        (["a", "b"], "not numeric"),
        ([], "non-empty"),
    ],
)
def test_bad_weights(weights: list[object], message: str) -> None:
    with pytest.raises(stats.StatsInputError, match=message):
        stats.make_design(weights)  # type: ignore[arg-type]


def test_mismatched_lengths() -> None:
    with pytest.raises(stats.StatsInputError, match="strata has 2 values"):
        stats.make_design([1.0, 1.0, 1.0], strata=[1, 2])


def test_all_or_nothing_prevalence_has_a_degenerate_ci() -> None:
    d = stats.make_design(np.ones(40))
    (e,) = stats.prevalence(d, np.zeros(40))
    assert (e.estimate, e.se, e.ci_low, e.ci_high) == (0.0, 0.0, 0.0, 0.0)
    assert e.rse_flag == "ok"


def test_rse_flags() -> None:
    make = lambda est, se: stats.Estimate({}, "mean", 50, None, est, se, 0, 0, 10, 50.0)  # noqa: E731
    assert make(1.0, 0.3).rse_flag == "ok"
    assert make(1.0, 0.31).rse_flag == "caution"
    assert make(1.0, 0.51).rse_flag == "not_shown"
    assert make(0.0, 0.1).rse_flag == "not_shown"


def test_missing_answers_are_left_out_but_the_design_kept() -> None:
    design, g = _design(3)
    y = g.y.copy()  # type: ignore[attr-defined]
    (e,) = stats.prevalence(design, y)
    assert e.n == int((~np.isnan(y)).sum())


def test_domains_numeric_order_and_reuse() -> None:
    design, g = _design(4)
    doms = stats.make_domains({"grade": g.grade.astype(str)}, design.n)  # type: ignore[attr-defined]
    assert [lab["grade"] for lab in doms.labels] == [str(k) for k in range(4, 13)]
    res = stats.estimate_columns(design, {"y": g.y, "score": g.score}, by=doms)  # type: ignore[attr-defined]
    assert [len(v) for v in res.values()] == [10, 10]


def test_zero_weights_count_as_respondents_without_weight() -> None:
    w = np.array([1.0, 0.0, 2.0, 3.0])
    d = stats.make_design(w, psu=[1, 2, 3, 4])
    (e,) = stats.mean(d, [1.0, 100.0, 3.0, 5.0])
    assert e.estimate == pytest.approx((1 + 6 + 15) / 6)
    assert e.n == 4 and e.df == 2


def test_base_and_nonresponse_weights() -> None:
    w = stats.base_weights([0.5, 0.25, 0.1, 0.1])
    np.testing.assert_allclose(w, [2, 4, 10, 10])
    with pytest.raises(stats.StatsInputError, match=r"\(0, 1\]"):
        stats.base_weights([0.5, 0.0])
    adj = stats.nonresponse_adjust(w, [True, False, True, False], cells=["a", "a", "b", "b"])
    np.testing.assert_allclose(adj, [6, 0, 20, 0])
    assert adj.sum() == pytest.approx(w.sum())
    with pytest.raises(stats.CalibrationError, match="'b'"):
        stats.nonresponse_adjust(w, [True, True, False, False], cells=["a", "a", "b", "b"])


def test_post_stratify_and_rake_errors() -> None:
    d = stats.make_design(np.ones(6), psu=[1, 2, 3, 4, 5, 6])
    sex = ["F", "F", "M", "M", "F", "M"]
    ps = stats.post_stratify(d, sex, {"F": 30, "M": 60})
    np.testing.assert_allclose(ps.weights, [10, 10, 20, 20, 10, 20])
    with pytest.raises(stats.CalibrationError, match="'M' has no population total"):
        stats.post_stratify(d, sex, {"F": 30})
    with pytest.raises(stats.CalibrationError, match="no respondent"):
        stats.post_stratify(d, sex, {"F": 30, "M": 60, "X": 5})
    grade = [1, 2, 1, 2, 1, 2]
    raked = stats.rake(d, [(grade, {"1": 40, "2": 50}), (sex, {"F": 45, "M": 45})])
    assert raked.weights.sum() == pytest.approx(90)
    with pytest.raises(stats.CalibrationError, match="different totals: 90, 145"):
        stats.rake(d, [(grade, {"1": 40, "2": 50}), (sex, {"F": 100, "M": 45})])
    # a margin cell with no respondent of a combination the other margin needs: no convergence
    with pytest.raises(stats.CalibrationError, match="cannot meet margin 1"):
        stats.rake(
            d,
            [
                ([1, 1, 1, 2, 2, 2], {"1": 10, "2": 80}),
                (["F", "F", "F", "M", "M", "M"], {"F": 80, "M": 10}),
            ],
        )


def test_response_rates() -> None:
    r = stats.response_rates(
        schools_sampled=40,
        schools_participating=30,
        students_eligible=5000,
        students_responding=4012,
    )
    assert r.school_rate == 0.75 and r.student_rate == pytest.approx(0.8024)
    assert r.overall_rate == pytest.approx(0.75 * 0.8024)
    with pytest.raises(stats.StatsInputError):
        stats.response_rates(
            schools_sampled=1,
            schools_participating=2,
            students_eligible=0,
            students_responding=0,
        )


def test_all_missing_and_weightless_domains() -> None:
    d = stats.make_design([1.0, 1.0, 0.0, 0.0], psu=[1, 2, 3, 4])
    with pytest.raises(stats.StatsInputError, match="no values"):
        stats.mean(d, [float("nan")] * 4)
    rows = stats.mean(d, [1.0, 2.0, 3.0, 4.0], by={"g": ["a", "a", "b", "b"]})
    assert [r.by for r in rows] == [{}, {"g": "a"}]  # "b" weighs nothing: not estimated


def test_missing_group_labels_belong_to_no_domain() -> None:
    d = stats.make_design(np.ones(6), psu=[1, 2, 3, 4, 5, 6])
    y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    for sex in (
        ["F", "F", "", "M", "M", " "],
        ["F", "F", None, "M", "M", None],
        [1.0, 1.0, float("nan"), 2.0, 2.0, float("nan")],
    ):
        rows = stats.mean(d, y, by={"sex": sex})
        assert [r.n for r in rows] == [6, 2, 2]
        assert rows[1].estimate == 1.5 and rows[2].estimate == 4.5
