"""Survey weights: selection probabilities, non-response adjustment, post-stratification,
raking, and response rates.

``post_stratify`` and ``rake`` follow R's survey package (``postStratify``, ``rake`` with its
default ``control = list(maxit = 10, epsilon = 1)``) so that weights, estimates and SEs agree; the
calibration is recorded on the returned :class:`~anshim.stats.design.Design` so that the variance
is computed as R computes it after calibration.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .design import CalibrationStage, Design, FloatArray, IntArray, factorize
from .errors import CalibrationError, StatsInputError

__all__ = [
    "ResponseRates",
    "base_weights",
    "nonresponse_adjust",
    "post_stratify",
    "rake",
    "response_rates",
]


def base_weights(selection_probability: ArrayLike) -> FloatArray:
    """Design weights 1/pi from each response's overall selection probability (0 < pi <= 1).

    For a two-stage school sample, pi = P(school selected) * P(class/student selected | school).
    """
    p = np.asarray(selection_probability, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(p) | (p <= 0) | (p > 1))
    if bad.size:
        k = int(bad[0])
        raise StatsInputError(
            f"selection probabilities must be in (0, 1]: {bad.size} are not "
            f"(first: row {k + 1}, {p[k]!r})"
        )
    out: FloatArray = 1.0 / p
    return out


def nonresponse_adjust(
    weights: ArrayLike, responded: ArrayLike, cells: ArrayLike | None = None
) -> FloatArray:
    """Weighting-class non-response adjustment over the *sampled* units.

    Each respondent's weight is multiplied by (sum of the weights of everyone sampled in its
    cell) / (sum of the weights of the respondents in the cell); non-respondents get 0. The
    adjusted respondent weights therefore still add up to each cell's sampled total. A cell with
    sampled units but no respondent is an error (collapse it with a neighbour first).
    """
    w = np.asarray(weights, dtype=np.float64)
    r = np.asarray(responded, dtype=bool)
    if w.shape != r.shape or w.ndim != 1:
        raise StatsInputError("weights and responded must be one-dimensional and equally long")
    if cells is None:
        codes: IntArray = np.zeros(w.shape[0], dtype=np.intp)
        labels = ["all"]
    else:
        codes, labels = factorize(cells, name="non-response cells")
        if codes.shape != w.shape:
            raise StatsInputError("non-response cells must have one value per sampled unit")
    total = np.bincount(codes, weights=w, minlength=len(labels))
    resp = np.bincount(codes, weights=w * r, minlength=len(labels))
    empty = [labels[k] for k in np.flatnonzero((total > 0) & (resp == 0)).tolist()]
    if empty:
        raise CalibrationError(
            f"non-response cell(s) without any respondent: {', '.join(map(repr, empty))}"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(resp > 0, total / resp, 0.0)
    out: FloatArray = np.where(r, w * factor[codes], 0.0)
    return out


def _cells(groups: ArrayLike | Sequence[ArrayLike], n: int) -> tuple[IntArray, list[Hashable]]:
    """Cell codes of one column or of the combinations of several; keys as labels or tuples."""
    # a list of columns (each one-dimensional), or one column given as a list of labels
    several = isinstance(groups, (list, tuple)) and len(groups) > 0 and np.ndim(groups[0]) == 1
    arr: list[Any] = list(groups) if several else [groups]  # type: ignore[arg-type]
    cols = [factorize(g, name="calibration variable") for g in arr]
    for c, _ in cols:
        if c.shape != (n,):
            raise StatsInputError(f"a calibration variable has {c.shape[0]} values, not {n}")
    if len(cols) == 1:
        return cols[0][0], list(cols[0][1])
    dims = tuple(len(lab) for _, lab in cols)
    flat = np.ravel_multi_index(tuple(c for c, _ in cols), dims)
    present, code = np.unique(flat, return_inverse=True)
    idx = np.unravel_index(present, dims)
    keys: list[Hashable] = [
        tuple(cols[j][1][int(idx[j][k])] for j in range(len(cols))) for k in range(present.size)
    ]
    return code.astype(np.intp, copy=False), keys


def _normalise_key(key: Hashable) -> Hashable:
    if isinstance(key, tuple):
        return tuple(str(k) for k in key)
    return str(key)


def _poststratify_weights(
    w: FloatArray, code: IntArray, keys: list[Hashable], population: Mapping[Hashable, float]
) -> FloatArray:
    pop = {_normalise_key(k): float(v) for k, v in population.items()}
    sample = np.bincount(code, weights=w, minlength=len(keys))
    factor = np.empty(len(keys))
    for k, key in enumerate(keys):
        if key not in pop:
            raise CalibrationError(f"sample cell {key!r} has no population total")
        total = pop[key]
        if not np.isfinite(total) or total < 0:
            raise CalibrationError(f"population total of {key!r} is not a number >= 0: {total}")
        if sample[k] <= 0:
            raise CalibrationError(f"cell {key!r} has no weight in the sample")
        factor[k] = total / sample[k]
    present = set(keys)
    missing = [k for k, v in pop.items() if k not in present and v > 0]
    if missing:
        raise CalibrationError(
            "population cell(s) with no respondent: " + ", ".join(map(repr, missing[:10]))
        )
    out: FloatArray = w * factor[code]
    return out


def post_stratify(
    design: Design, groups: ArrayLike | Sequence[ArrayLike], population: Mapping[Hashable, float]
) -> Design:
    """Post-stratify the weights so that each cell's weights add up to its population total.

    ``groups``: one column, or a list of columns whose combinations are the cells (grade x sex:
    ``[grade, sex]`` with population keys ``("4", "F")``...; labels compare as strings).
    As R's ``postStratify(design, ~grade+sex, population)``.
    """
    code, keys = _cells(groups, design.n)
    old = design.weights
    new = _poststratify_weights(old, code, keys, population)
    stage = CalibrationStage(kind="poststratify", groups=(code,), after=(new,), before=(old,))
    return design.with_weights(new, stage)


def rake(
    design: Design,
    margins: Sequence[tuple[ArrayLike | Sequence[ArrayLike], Mapping[Hashable, float]]],
    *,
    max_iter: int = 10,
    epsilon: float = 1.0,
) -> Design:
    """Rake the weights to several population margins by iterative post-stratification.

    ``margins``: ``[(grade, {"4": 52000, ...}), (sex, {"F": ..., "M": ...})]``. As R's
    ``rake(design, list(~grade, ~sex), list(pop_grade, pop_sex))``: each iteration
    post-stratifies on every margin in turn; it stops when no cell of the cross table of all
    margin variables changes by ``epsilon`` or more between iterations (``epsilon < 1``: a
    fraction of the total weight), or after ``max_iter`` iterations (then
    :class:`~anshim.stats.errors.CalibrationError`, where R warns).
    """
    if not margins:
        raise StatsInputError("rake needs at least one margin")
    cells = [_cells(g, design.n) for g, _ in margins]
    pops = [p for _, p in margins]
    # margins with different grand totals can never all hold; the iteration would then stop on
    # a cycle (as R's rake does) with the earlier margins wrong
    totals = [float(sum(p.values())) for p in pops]
    if max(totals) - min(totals) > 1e-6 * max(abs(t) for t in totals):
        raise CalibrationError(
            "the raking margins have different totals: " + ", ".join(f"{t:g}" for t in totals)
        )
    eps = epsilon * float(design.weights.sum()) if epsilon < 1 else epsilon
    # the cross table of all margin variables, for the convergence test
    cross_dims = tuple(len(k) for _, k in cells)
    cross = (
        np.ravel_multi_index(tuple(c for c, _ in cells), cross_dims)
        if len(cells) > 1
        else cells[0][0]
    )
    size = int(np.prod(cross_dims))
    w = design.weights
    old_table = np.bincount(cross, weights=w, minlength=size)
    after: list[FloatArray] = []
    for _ in range(max_iter):
        after = []
        for (code, keys), pop in zip(cells, pops, strict=True):
            w = _poststratify_weights(w, code, keys, pop)
            after.append(w)
        new_table = np.bincount(cross, weights=w, minlength=size)
        if np.max(np.abs(old_table - new_table)) < eps:
            break
        old_table = new_table
    else:
        raise CalibrationError(
            f"raking did not converge in {max_iter} iterations: the margins may be inconsistent "
            "(their totals differ) or a cell is nearly empty"
        )
    # a stable cycle also ends the iteration (R accepts it silently): every margin must hold
    for m_no, ((code, keys), pop) in enumerate(zip(cells, pops, strict=True), start=1):
        got = np.bincount(code, weights=w, minlength=len(keys))
        want = {_normalise_key(k): float(v) for k, v in pop.items()}
        for k, key in enumerate(keys):
            if abs(got[k] - want[key]) > 1e-3 * want[key] + eps:
                raise CalibrationError(
                    f"raking cannot meet margin {m_no}: cell {key!r} totals {got[k]:.6g}, "
                    f"the population {want[key]:.6g} (the sample has no respondents in a "
                    "combination of cells that the margins need)"
                )
    stage = CalibrationStage(kind="rake", groups=tuple(c for c, _ in cells), after=tuple(after))
    return design.with_weights(w, stage)


@dataclass(frozen=True, slots=True)
class ResponseRates:
    """School and student response rates of a two-stage survey (unweighted, as AAPOR RR1)."""

    schools_sampled: int
    schools_participating: int
    students_eligible: int
    students_responding: int

    @property
    def school_rate(self) -> float:
        return self.schools_participating / self.schools_sampled if self.schools_sampled else 0.0

    @property
    def student_rate(self) -> float:
        """Respondents among the eligible students of the participating schools."""
        if not self.students_eligible:
            return 0.0
        return self.students_responding / self.students_eligible

    @property
    def overall_rate(self) -> float:
        """School rate times student rate (as the CDC's YRBS reports)."""
        return self.school_rate * self.student_rate


def response_rates(
    *,
    schools_sampled: int,
    schools_participating: int,
    students_eligible: int,
    students_responding: int,
) -> ResponseRates:
    """Response rates; counts must be >= 0 and each respondent count at most its base."""
    vals = (schools_sampled, schools_participating, students_eligible, students_responding)
    if any(v < 0 for v in vals):
        raise StatsInputError("response counts must be >= 0")
    if schools_participating > schools_sampled:
        raise StatsInputError("more schools participating than sampled")
    if students_responding > students_eligible:
        raise StatsInputError("more students responding than eligible")
    return ResponseRates(*vals)
