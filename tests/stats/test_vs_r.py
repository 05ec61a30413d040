"""The estimator against R's survey package on generated designs: estimates to 1e-6, SEs and CI
bounds to 1e-4 (overall and by grade x sex; uncalibrated, post-stratified, raked)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from anshim import stats

from .rsurvey import R_MISSING, Generated, generate, r_available, r_estimates, r_weights

pytestmark = pytest.mark.skipif(not r_available(), reason=R_MISSING)

EST_TOL = 1e-6
SE_TOL = 1e-4


def _ours(design: stats.Design, g: Generated) -> dict[str, tuple[float, float, float, float]]:
    out: dict[str, tuple[float, float, float, float]] = {}
    by = {"grade": g.grade, "sex": g.sex}
    for name, col, kind in (("y", g.y, "proportion"), ("score", g.score, "mean")):
        for e in stats.estimate(design, col, by=by, kind=kind):  # type: ignore[arg-type]
            key = f"{name}|" + (f"{e.by['grade']},{e.by['sex']}" if e.by else "")
            out[key] = (e.estimate, e.se, e.ci_low, e.ci_high)
    return out


def _compare(ours: dict[str, tuple[float, ...]], ref: dict[str, tuple[float, ...]]) -> None:
    assert set(ours) == set(ref)
    for key, (est, se, lo, hi) in ref.items():
        o = ours[key]
        assert abs(o[0] - est) < EST_TOL, (key, "estimate", o[0], est)
        assert abs(o[1] - se) < SE_TOL, (key, "se", o[1], se)
        assert abs(o[2] - lo) < SE_TOL, (key, "ci_low", o[2], lo)
        assert abs(o[3] - hi) < SE_TOL, (key, "ci_high", o[3], hi)


def _design(g: Generated) -> stats.Design:
    return stats.make_design(g.w, strata=g.stratum, psu=g.psu)


@pytest.mark.parametrize(("n", "seed", "strata", "psus"), [(800, 1, 4, 3), (3000, 2, 8, 6)])
def test_uncalibrated_matches_r(tmp_path: Path, n: int, seed: int, strata: int, psus: int) -> None:
    g = generate(n, seed=seed, strata=strata, psu_per_stratum=psus)
    _compare(_ours(_design(g), g), r_estimates(g, tmp_path))


def test_no_missing_values_and_one_stratum(tmp_path: Path) -> None:
    g = generate(500, seed=5, strata=1, psu_per_stratum=12, missing=0.0)
    _compare(_ours(_design(g), g), r_estimates(g, tmp_path))


def _population(g: Generated, seed: int) -> dict[tuple[str, str], float]:
    """Known grade x sex totals: the sample's weighted totals, disturbed (so calibration moves
    the weights)."""
    rng = np.random.default_rng(seed)
    pop: dict[tuple[str, str], float] = {}
    for gr in np.unique(g.grade):
        for sx in ("F", "M"):
            sel = (g.grade == gr) & (g.sex == sx)
            pop[(str(gr), sx)] = float(np.round(g.w[sel].sum() * rng.uniform(0.7, 1.4)))
    return pop


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(header)
        wr.writerows(rows)
    return path


def test_post_stratified_matches_r(tmp_path: Path) -> None:
    g = generate(2500, seed=3, strata=5, psu_per_stratum=4)
    pop = _population(g, 3)
    pop_csv = _write(
        tmp_path / "pop.csv", ["grade", "sex", "Freq"], [[k[0], k[1], v] for k, v in pop.items()]
    )
    design = stats.post_stratify(_design(g), [g.grade, g.sex], pop)
    np.testing.assert_allclose(design.weights, r_weights(g, tmp_path, "post", [pop_csv]), rtol=1e-9)
    _compare(_ours(design, g), r_estimates(g, tmp_path, "post", [pop_csv]))


def test_raked_matches_r(tmp_path: Path) -> None:
    g = generate(2500, seed=4, strata=5, psu_per_stratum=4)
    pop = _population(g, 4)
    by_grade: dict[str, float] = {}
    by_sex: dict[str, float] = {}
    for (gr, sx), v in pop.items():
        by_grade[gr] = by_grade.get(gr, 0.0) + v
        by_sex[sx] = by_sex.get(sx, 0.0) + v
    pg = _write(tmp_path / "pg.csv", ["grade", "Freq"], [[k, v] for k, v in by_grade.items()])
    ps = _write(tmp_path / "ps.csv", ["sex", "Freq"], [[k, v] for k, v in by_sex.items()])
    design = stats.rake(_design(g), [(g.grade, by_grade), (g.sex, by_sex)])
    np.testing.assert_allclose(design.weights, r_weights(g, tmp_path, "rake", [pg, ps]), rtol=1e-9)
    _compare(_ours(design, g), r_estimates(g, tmp_path, "rake", [pg, ps]))


def test_singleton_stratum_is_an_error_as_in_r(tmp_path: Path) -> None:
    g = generate(400, seed=6, strata=3, psu_per_stratum=3, missing=0.0)
    g.psu[g.stratum == 2] = 1  # stratum 2 now has a single school
    with pytest.raises(stats.SingletonStratumError, match="'2'"):
        _design(g)
    with pytest.raises(RuntimeError, match="has only one PSU"):
        r_estimates(g, tmp_path)
