"""Design-based estimates: weighted proportions and means, overall and by domains.

The numbers are those of R's survey package for ``svydesign(ids=~psu, strata=~stratum,
weights=~w, nest=TRUE)`` (with any ``postStratify``/``rake`` applied):

- estimate: ``svymean`` — sum(w*y)/sum(w) over the domain's responses with a value.
- SE: Taylor linearisation, ``svyrecvar``: the linearised values z = w*(y - estimate)/sum(w) of
  the domain (zero outside it, so the full design is kept, as ``svyby`` does), residualised
  within the calibration cells when the weights were calibrated, totalled per PSU;
  var = sum over strata of n_h/(n_h-1) * sum over its PSUs of (Z - mean Z)^2.
- proportion CI: ``svyciprop(method="logit")`` — logit(p) +/- t(df) * SE/(p(1-p)), back-
  transformed, with df = PSUs minus strata among the domain's responses (``degf``). A domain
  with df < 1 (all of it in one PSU) uses df = 1 where R gives NaN. p = 0 or 1 gives [p, p].
- mean CI: ``confint(svymean)`` — estimate +/- z * SE (normal quantile).

Missing values (NaN) of y are left out as R's ``na.rm=TRUE`` does: a domain of the responses
with a value, the design kept whole.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as _st

from .design import Design, FloatArray, IntArray, as_float_column, degrees_of_freedom, factorize
from .errors import StatsInputError

__all__ = [
    "CAUTION_RSE",
    "NOT_SHOWN_RSE",
    "Domains",
    "Estimate",
    "estimate",
    "make_domains",
    "mean",
    "prevalence",
]

#: Relative standard error above which an estimate is shown with a caution flag.
CAUTION_RSE = 0.30
#: Relative standard error above which an estimate is not shown.
NOT_SHOWN_RSE = 0.50

Kind = Literal["proportion", "mean"]
RseFlag = Literal["ok", "caution", "not_shown"]

# Dense (domain x PSU) accumulators up to this many cells; sparse (sorted keys) above.
_DENSE_CELLS = 1 << 24


@dataclass(frozen=True, slots=True)
class Estimate:
    """One weighted estimate of one domain (``by == {}``: all responses)."""

    by: dict[str, str]
    kind: Kind
    #: unweighted number of responses with a value in the domain (the denominator).
    n: int
    #: unweighted number of responses equal to 1 (proportions; None for means).
    numerator: int | None
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    #: degrees of freedom of the CI (PSUs minus strata in the domain).
    df: int
    #: sum of the weights of the domain's responses (the estimated population size).
    weighted_n: float

    @property
    def rse(self) -> float:
        """Relative standard error, se/estimate (inf for an estimate of 0 with se > 0)."""
        if self.estimate == 0:
            return 0.0 if self.se == 0 else math.inf
        return abs(self.se / self.estimate)

    @property
    def rse_flag(self) -> RseFlag:
        """``"caution"`` above :data:`CAUTION_RSE`, ``"not_shown"`` above :data:`NOT_SHOWN_RSE`."""
        r = self.rse
        if r > NOT_SHOWN_RSE:
            return "not_shown"
        if r > CAUTION_RSE:
            return "caution"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": dict(self.by),
            "kind": self.kind,
            "n": self.n,
            "numerator": self.numerator,
            "estimate": self.estimate,
            "se": self.se,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "df": self.df,
            "weighted_n": self.weighted_n,
            "rse": self.rse,
            "rse_flag": self.rse_flag,
        }


@dataclass(frozen=True, slots=True, eq=False)
class Domains:
    """Rows grouped by the combinations of one or more columns that occur in the data.

    ``code[i]``: the domain of row i (0..len(labels)-1); ``labels[k]``: ``{column: value}``.
    Make once with :func:`make_domains` and reuse for every question of a report.
    """

    code: IntArray
    labels: list[dict[str, str]]

    def __len__(self) -> int:
        return len(self.labels)


def _missing_labels(col: ArrayLike) -> NDArray[np.bool_]:
    """Rows whose group label is missing: None, NaN or an empty string."""
    arr = np.asarray(col)
    if arr.dtype.kind == "f":
        out: NDArray[np.bool_] = np.isnan(arr)
        return out
    if arr.dtype.kind in "US":
        return np.char.str_len(np.char.strip(arr.astype(str))) == 0
    if arr.dtype.kind == "O":
        return np.array([_is_missing_label(v) for v in arr.tolist()], dtype=bool)
    return np.zeros(arr.shape[0], dtype=bool)


def _is_missing_label(v: object) -> bool:
    if v is None:
        return True
    if isinstance(v, float):
        return v != v
    return isinstance(v, str) and not v.strip()


def make_domains(by: Mapping[str, ArrayLike], n: int) -> Domains:
    """Domains of the combinations of ``by``'s columns (each of length ``n``), in sorted order.

    A row whose label is missing in any ``by`` column (None, NaN, "") belongs to no domain
    (code -1): it still counts in the overall estimate and in the design, like an unanswered
    grouping question.
    """
    if not by:
        return Domains(code=np.zeros(n, dtype=np.intp), labels=[{}])
    names = list(by)
    cols: list[np.ndarray] = []
    missing = np.zeros(n, dtype=bool)
    for name in names:
        col = np.asarray(by[name])
        if col.shape[:1] != (n,) or col.ndim != 1:
            raise StatsInputError(f"by column {name!r} has {col.shape[:1]} values, not {n}")
        cols.append(col)
        missing |= _missing_labels(col)
    keep = ~missing
    codes: list[IntArray] = []
    labels: list[list[str]] = []
    for name, col in zip(names, cols, strict=True):
        c, lab = factorize(col[keep], name=f"by column {name!r}")
        codes.append(c)
        labels.append(lab)
    dims = tuple(max(len(lab), 1) for lab in labels)
    flat = np.ravel_multi_index(tuple(codes), dims) if len(dims) > 1 else codes[0]
    present, code = np.unique(flat, return_inverse=True)
    combos = np.unravel_index(present, dims) if len(dims) > 1 else (present,)
    out_labels = [
        {names[j]: labels[j][int(combos[j][k])] for j in range(len(names))}
        for k in range(present.shape[0])
    ]
    full = np.full(n, -1, dtype=np.intp)
    full[keep] = code
    return Domains(code=full, labels=out_labels)


def prevalence(
    design: Design,
    y: ArrayLike,
    *,
    by: Mapping[str, ArrayLike] | Domains | None = None,
    overall: bool = True,
    level: float = 0.95,
) -> list[Estimate]:
    """Weighted prevalence of a 0/1 indicator (NaN: no answer), overall and by ``by``."""
    return estimate(design, y, by=by, kind="proportion", overall=overall, level=level)


def mean(
    design: Design,
    y: ArrayLike,
    *,
    by: Mapping[str, ArrayLike] | Domains | None = None,
    overall: bool = True,
    level: float = 0.95,
) -> list[Estimate]:
    """Weighted mean of a numeric variable (NaN: no answer), overall and by ``by``."""
    return estimate(design, y, by=by, kind="mean", overall=overall, level=level)


def estimate(
    design: Design,
    y: ArrayLike,
    *,
    by: Mapping[str, ArrayLike] | Domains | None = None,
    kind: Kind | Literal["auto"] = "auto",
    overall: bool = True,
    level: float = 0.95,
    name: str = "y",
) -> list[Estimate]:
    """Estimates of ``y`` for the whole sample (if ``overall``) then for each domain of ``by``.

    ``kind="auto"``: a proportion when every value is 0 or 1, else a mean. Raises
    :class:`StatsInputError` for a wrong length, a non-0/1 value of a proportion, or a level
    outside (0, 1).
    """
    yv = as_float_column(y, name=name)
    if yv.shape != (design.n,):
        raise StatsInputError(f"{name} has {yv.shape[0]} values, the design {design.n}")
    if not 0 < level < 1:
        raise StatsInputError(f"level must be between 0 and 1, got {level}")
    finite = yv[~np.isnan(yv)]
    if finite.size == 0:
        raise StatsInputError(f"{name} has no values (every answer is missing)")
    if np.isinf(finite).any():
        raise StatsInputError(f"{name} has infinite values")
    binary = bool(np.isin(finite, (0.0, 1.0)).all())
    if kind == "auto":
        kind = "proportion" if binary else "mean"
    elif kind == "proportion" and not binary:
        bad = finite[~np.isin(finite, (0.0, 1.0))][0]
        raise StatsInputError(f"{name} is not a 0/1 indicator: it has the value {bad!r}")
    out: list[Estimate] = []
    if overall:
        out.extend(_estimate(design, yv, Domains(np.zeros(design.n, np.intp), [{}]), kind, level))
    if by is not None:
        doms = by if isinstance(by, Domains) else make_domains(by, design.n)
        if doms.labels != [{}]:
            out.extend(_estimate(design, yv, doms, kind, level))
    return out


def _estimate(
    design: Design, y: FloatArray, doms: Domains, kind: Kind, level: float
) -> list[Estimate]:
    n_dom = len(doms)
    valid = ~np.isnan(y) & (doms.code >= 0)
    d = doms.code[valid]
    w = design.weights[valid]
    yv = y[valid]
    w_tot = np.bincount(d, weights=w, minlength=n_dom)
    wy_tot = np.bincount(d, weights=w * yv, minlength=n_dom)
    n_d = np.bincount(d, minlength=n_dom)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = wy_tot / w_tot
    num = np.bincount(d, weights=(yv == 1.0), minlength=n_dom) if kind == "proportion" else None
    var = domain_variance(design, valid, d, w, yv, est, w_tot, n_dom)
    se = np.sqrt(np.maximum(var, 0.0))
    # degrees of freedom per domain: distinct PSUs minus distinct strata with a non-zero weight.
    pos = w > 0
    df = _domain_degf(design, np.flatnonzero(valid)[pos], d[pos], n_dom)
    out: list[Estimate] = []
    z = _quantile(level, None)
    # a domain whose responses all weigh 0 represents nobody: no estimate (R: NaN)
    present = np.flatnonzero((n_d > 0) & (w_tot > 0))
    t_q = {int(k): _quantile(level, int(k)) for k in np.unique(np.maximum(df[present], 1))}
    for k in present.tolist():
        e, s = float(est[k]), float(se[k])
        if kind == "proportion":
            lo, hi = _logit_ci(e, s, t_q[max(int(df[k]), 1)])
        else:
            lo, hi = e - z * s, e + z * s
        out.append(
            Estimate(
                by=dict(doms.labels[k]),
                kind=kind,
                n=int(n_d[k]),
                numerator=None if num is None else int(num[k]),
                estimate=e,
                se=s,
                ci_low=lo,
                ci_high=hi,
                df=int(df[k]),
                weighted_n=float(w_tot[k]),
            )
        )
    return out


_QUANTILES: dict[tuple[float, int | None], float] = {}


def _quantile(level: float, df: int | None) -> float:
    """The two-sided ``level`` quantile of t(df), or of the normal for ``df=None`` (cached:
    scipy's ppf costs far more than the rest of an estimate)."""
    key = (level, df)
    q = _QUANTILES.get(key)
    if q is None:
        p = 0.5 + level / 2
        q = float(_st.norm.ppf(p) if df is None else _st.t.ppf(p, df))
        _QUANTILES[key] = q
    return q


def _logit_ci(p: float, se: float, q: float) -> tuple[float, float]:
    """svyciprop(method="logit"): logit(p) +/- q * se / (p (1 - p)), back-transformed."""
    if not 0 < p < 1 or se == 0 or math.isnan(p):
        return p, p
    half = q * se / (p * (1 - p))
    lg = math.log(p / (1 - p))
    return _expit(lg - half), _expit(lg + half)


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _domain_degf(design: Design, rows: IntArray, d: IntArray, n_dom: int) -> NDArray[np.int64]:
    """Distinct PSUs minus distinct strata of each domain's ``rows`` (R's ``degf``)."""
    psu = design.psu[rows]
    n_psu = design.n_psu
    if n_dom * n_psu <= _DENSE_CELLS:
        seen = np.bincount(d * n_psu + psu, minlength=n_dom * n_psu).reshape(n_dom, n_psu) > 0
        starts = np.concatenate(([0], np.cumsum(design.n_psu_in_stratum)[:-1]))
        psus = seen.sum(axis=1)
        strata = (np.add.reduceat(seen, starts, axis=1) > 0).sum(axis=1)
        return (psus - strata).astype(np.int64)
    key = d.astype(np.int64) * n_psu + psu
    uk = np.unique(key)
    ud = uk // n_psu
    n_p = np.bincount(ud, minlength=n_dom)
    sk = np.unique(ud * design.n_strata + design.psu_stratum[uk % n_psu])
    n_str = np.bincount(sk // design.n_strata, minlength=n_dom)
    return (n_p - n_str).astype(np.int64)


def domain_variance(
    design: Design,
    valid: NDArray[np.bool_],
    d: IntArray,
    w: FloatArray,
    y: FloatArray,
    est: FloatArray,
    w_tot: FloatArray,
    n_dom: int,
) -> FloatArray:
    """Linearisation variance of each domain's ratio estimate (see the module docstring).

    ``valid`` selects the rows in some domain, ``d`` their domain, ``w``/``y`` their weights and
    values; ``est``/``w_tot`` per domain.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        z = w * (y - est[d]) / w_tot[d]
    z = np.where(np.isfinite(z), z, 0.0)
    psu = design.psu[valid]
    n_psu = design.n_psu
    if design.calibration:
        totals = _calibrated_psu_totals(design, valid, d, z, n_dom)
    elif n_dom * n_psu <= _DENSE_CELLS:
        totals = np.bincount(d * n_psu + psu, weights=z, minlength=n_dom * n_psu).reshape(
            n_dom, n_psu
        )
    else:
        return _sparse_variance(design, d, psu, z, n_dom)
    return _variance_from_totals(design, totals)


def _variance_from_totals(design: Design, totals: FloatArray) -> FloatArray:
    """sum_h n_h/(n_h-1) * (sum_p Z^2 - (sum_p Z)^2 / n_h) for each row of ``totals`` (D x P)."""
    starts = np.concatenate(([0], np.cumsum(design.n_psu_in_stratum)[:-1]))
    nh = design.n_psu_in_stratum.astype(np.float64)
    s1 = np.add.reduceat(totals, starts, axis=1)
    s2 = np.add.reduceat(totals * totals, starts, axis=1)
    var: FloatArray = ((s2 - s1 * s1 / nh) * (nh / (nh - 1))).sum(axis=1)
    return var


def _sparse_variance(
    design: Design, d: IntArray, psu: IntArray, z: FloatArray, n_dom: int
) -> FloatArray:
    key = d.astype(np.int64) * design.n_psu + psu
    uk, inv = np.unique(key, return_inverse=True)
    tot = np.bincount(inv, weights=z)
    ud = uk // design.n_psu
    uh = design.psu_stratum[uk % design.n_psu]
    cell = ud * design.n_strata + uh
    size = n_dom * design.n_strata
    s1 = np.bincount(cell, weights=tot, minlength=size).reshape(n_dom, design.n_strata)
    s2 = np.bincount(cell, weights=tot * tot, minlength=size).reshape(n_dom, design.n_strata)
    nh = design.n_psu_in_stratum.astype(np.float64)
    var: FloatArray = ((s2 - s1 * s1 / nh) * (nh / (nh - 1))).sum(axis=1)
    return var


@dataclass(frozen=True, slots=True, eq=False)
class _CalibrationBasis:
    """What the calibrated variance needs of a design alone (see _calibrated_psu_totals)."""

    #: per adjustment op: cell code of each row, psw (weights after the op), a (the multiplier
    #: of x in the cell means), den (the cell means' denominators)
    cells: list[IntArray]
    psw: list[FloatArray]
    a: list[FloatArray]
    den: list[FloatArray]
    #: the order the ops are applied in (raking: its margins, ten times)
    schedule: list[int]
    #: cross[k][l][g, h] = sum over rows in cell g of op k and cell h of op l of psw_l * a_k
    cross: list[list[FloatArray]]
    #: phi[k][g, p] = sum over the rows of PSU p in cell g of op k of psw_k
    phi: list[FloatArray]


def _calibration_basis(design: Design) -> _CalibrationBasis:
    cached = design.cache.get("calibration_basis")
    if isinstance(cached, _CalibrationBasis):
        return cached
    cells: list[IntArray] = []
    psws: list[FloatArray] = []
    mult: list[FloatArray] = []
    dens: list[FloatArray] = []
    schedule: list[int] = []
    for stage in design.calibration:
        if stage.kind == "poststratify":
            g, psw, old = stage.groups[0], stage.after[0], stage.before[0]
            # as R: cells with no weight before and after count as weight 1 (no division by 0)
            psw_safe = np.where((psw == 0) & (old == 0), 1.0, psw)
            with np.errstate(divide="ignore", invalid="ignore"):
                a = np.where(psw_safe > 0, old / psw_safe, 0.0)
            cells.append(g)
            psws.append(psw_safe)
            mult.append(a)
            dens.append(np.bincount(g, weights=old))
            schedule.append(len(cells) - 1)
        else:
            first = len(cells)
            for g, psw in zip(stage.groups, stage.after, strict=True):
                with np.errstate(divide="ignore"):
                    a = np.where(psw > 0, 1.0 / psw, 0.0)
                cells.append(g)
                psws.append(psw)
                mult.append(a)
                dens.append(np.bincount(g).astype(np.float64))
            # R's svyrecvar: ten rounds of residualising on every margin
            schedule.extend(list(range(first, len(cells))) * 10)
    sizes = [int(d.shape[0]) for d in dens]
    k_ops = len(cells)
    cross = [
        [
            np.bincount(
                cells[k] * sizes[m] + cells[m],
                weights=psws[m] * mult[k],
                minlength=sizes[k] * sizes[m],
            ).reshape(sizes[k], sizes[m])
            for m in range(k_ops)
        ]
        for k in range(k_ops)
    ]
    n_psu = design.n_psu
    phi = [
        np.bincount(
            cells[k] * n_psu + design.psu, weights=psws[k], minlength=sizes[k] * n_psu
        ).reshape(sizes[k], n_psu)
        for k in range(k_ops)
    ]
    basis = _CalibrationBasis(cells, psws, mult, dens, schedule, cross, phi)
    design.cache["calibration_basis"] = basis
    return basis


def _calibrated_psu_totals(
    design: Design, valid: NDArray[np.bool_], d: IntArray, z: FloatArray, n_dom: int
) -> FloatArray:
    """PSU totals (D x P) of the linearised values after R's calibration residualisation.

    x starts as z inside each domain and 0 outside; every calibration step subtracts
    psw * m[cell] with m a (weighted) mean of x/psw over the cell (R's ``svyrecvar``). x stays z
    plus a combination of the basis functions psw_k * [cell_k == g], so only their coefficients
    (D x G_k) are tracked, and the row-level work is one pass per op instead of one per step
    and domain.
    """
    b = _calibration_basis(design)
    rows = np.flatnonzero(valid)
    k_ops = len(b.cells)
    sizes = [int(den.shape[0]) for den in b.den]
    # z part of each op's cell sums: q[k][dom, g] = sum over the domain's rows in cell g of z*a_k
    q = [
        np.bincount(
            d * sizes[k] + b.cells[k][rows],
            weights=z * b.a[k][rows],
            minlength=n_dom * sizes[k],
        ).reshape(n_dom, sizes[k])
        for k in range(k_ops)
    ]
    coef = [np.zeros((n_dom, sizes[k])) for k in range(k_ops)]
    used = [False] * k_ops
    for k in b.schedule:
        s = q[k].copy()
        for m in range(k_ops):
            if used[m]:
                s += coef[m] @ b.cross[k][m].T
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_k = np.where(b.den[k] > 0, s / b.den[k], 0.0)
        coef[k] -= mean_k
        used[k] = True
    n_psu = design.n_psu
    totals = np.bincount(d * n_psu + design.psu[rows], weights=z, minlength=n_dom * n_psu).reshape(
        n_dom, n_psu
    )
    for k in range(k_ops):
        totals += coef[k] @ b.phi[k]
    return totals


def estimate_columns(
    design: Design,
    columns: Mapping[str, ArrayLike],
    *,
    by: Mapping[str, ArrayLike] | Domains | None = None,
    overall: bool = True,
    level: float = 0.95,
) -> dict[str, list[Estimate]]:
    """:func:`estimate` for every column (the questions of a report), the domains built once."""
    doms = by if isinstance(by, Domains) or by is None else make_domains(by, design.n)
    return {
        name: estimate(design, col, by=doms, overall=overall, level=level, name=name)
        for name, col in columns.items()
    }


__all__ += ["degrees_of_freedom", "domain_variance", "estimate_columns"]
