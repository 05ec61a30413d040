"""The sampling design: weights, strata and PSUs (and any calibration), as integer codes.

This is what R's ``svydesign(ids=~psu, strata=~stratum, weights=~w, nest=TRUE)`` holds: PSU
labels are nested in strata (PSU "1" of stratum A and PSU "1" of stratum B are different PSUs),
PSUs are taken as sampled with replacement within strata (no finite-population correction), and
a stratum with a single PSU is an error, as R's default ``survey.lonely.psu = "fail"``. The error
is raised when the design is made rather than at the first variance, so that no half-finished
report is produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import SingletonStratumError, StatsInputError

__all__ = ["CalibrationStage", "Design", "factorize", "make_design"]

IntArray = NDArray[np.intp]
FloatArray = NDArray[np.float64]


def factorize(values: ArrayLike, *, name: str = "values") -> tuple[IntArray, list[str]]:
    """Integer codes 0..K-1 and the K labels (as strings, sorted) of ``values``.

    Labels are compared as strings so that a CSV column ("1") and a database column (1) give the
    same groups; integers sort numerically, other labels as text.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise StatsInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind in "iub":
        uniq, codes = np.unique(arr, return_inverse=True)
        return codes.astype(np.intp, copy=False), [str(u) for u in uniq.tolist()]
    if arr.dtype.kind == "f":
        if np.isnan(arr).any():
            raise StatsInputError(f"{name} has missing values")
        uniq, codes = np.unique(arr, return_inverse=True)
        return codes.astype(np.intp, copy=False), [_float_label(u) for u in uniq.tolist()]
    as_str = arr.astype(str)
    uniq, codes = np.unique(as_str, return_inverse=True)
    labels = [str(u) for u in uniq.tolist()]
    if all(_is_int(s) for s in labels):
        order = sorted(range(len(labels)), key=lambda k: int(labels[k]))
        remap = np.empty(len(labels), dtype=np.intp)
        remap[order] = np.arange(len(labels))
        return remap[codes], [labels[k] for k in order]
    return codes.astype(np.intp, copy=False), labels


def _is_int(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return False
    return True


def _float_label(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


@dataclass(frozen=True, slots=True, eq=False)
class CalibrationStage:
    """One post-stratification (``kind="poststratify"``) or one raking (``kind="rake"``, one
    group index per margin) applied to the weights; kept because the variance after calibration
    residualises the linearised values within the calibration cells, as R's ``svyrecvar``."""

    kind: Literal["poststratify", "rake"]
    #: post-stratify: one array of cell codes; rake: one array per margin.
    groups: tuple[IntArray, ...]
    #: the weights right after each margin's adjustment (rake: in the last iteration).
    after: tuple[FloatArray, ...]
    #: the weights before the adjustment (post-stratify only; rake: empty).
    before: tuple[FloatArray, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Design:
    """A survey design over ``n`` responses. Make one with :func:`make_design`.

    ``stratum``: stratum code of each row (0..n_strata-1); ``psu``: PSU code of each row, unique
    across strata (0..n_psu-1); ``psu_stratum``: the stratum of each PSU.
    """

    weights: FloatArray
    stratum: IntArray
    psu: IntArray
    psu_stratum: IntArray
    stratum_labels: list[str]
    n_psu_in_stratum: IntArray
    calibration: tuple[CalibrationStage, ...] = field(default=())
    #: design-only intermediate results of the variance (the calibration's basis), computed
    #: once per design and reused by every estimate of a report
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_strata(self) -> int:
        return int(self.n_psu_in_stratum.shape[0])

    @property
    def n_psu(self) -> int:
        return int(self.psu_stratum.shape[0])

    @property
    def degrees_of_freedom(self) -> int:
        """PSUs minus strata (R's ``degf``) over the rows with a non-zero weight."""
        return degrees_of_freedom(self, self.weights != 0)

    def with_weights(self, weights: FloatArray, stage: CalibrationStage | None = None) -> Design:
        """The same design with new weights (and one more calibration stage)."""
        cal = self.calibration if stage is None else (*self.calibration, stage)
        return Design(
            weights=weights,
            stratum=self.stratum,
            psu=self.psu,
            psu_stratum=self.psu_stratum,
            stratum_labels=self.stratum_labels,
            n_psu_in_stratum=self.n_psu_in_stratum,
            calibration=cal,
        )


def degrees_of_freedom(design: Design, rows: NDArray[np.bool_]) -> int:
    """R's ``degf`` of the design restricted to ``rows``: distinct PSUs minus distinct strata."""
    psus = np.unique(design.psu[rows])
    if psus.size == 0:
        return 0
    return int(psus.size - np.unique(design.psu_stratum[psus]).size)


def make_design(
    weights: ArrayLike,
    *,
    strata: ArrayLike | None = None,
    psu: ArrayLike | None = None,
) -> Design:
    """A with-replacement stratified cluster design, as R's
    ``svydesign(ids=~psu, strata=~strata, weights=~weights, nest=TRUE)``.

    Without ``psu`` every response is its own PSU (``ids=~1``); without ``strata`` there is one
    stratum. Weights must be finite and non-negative with a positive sum.

    Raises :class:`StatsInputError` for bad weights or mismatched lengths and
    :class:`SingletonStratumError` when a stratum has a single PSU.
    """
    w = _weights(weights)
    n = w.shape[0]
    if strata is None:
        s_codes: IntArray = np.zeros(n, dtype=np.intp)
        s_labels = ["1"]
    else:
        s_codes, s_labels = factorize(_check_len(strata, n, "strata"), name="strata")
    if psu is None:
        raw: IntArray = np.arange(n, dtype=np.intp)
    else:
        raw, _ = factorize(_check_len(psu, n, "psu"), name="psu")
    # nest=TRUE: a PSU is a (stratum, psu label) pair. Numbering the pairs in sorted order keeps
    # the PSUs of a stratum contiguous, which the variance sums rely on.
    key = s_codes.astype(np.int64) * (int(raw.max(initial=0)) + 1) + raw
    _, p_codes = np.unique(key, return_inverse=True)
    p_codes = p_codes.astype(np.intp, copy=False)
    n_psu = int(p_codes.max(initial=-1)) + 1
    psu_stratum = np.zeros(n_psu, dtype=np.intp)
    psu_stratum[p_codes] = s_codes
    counts = np.bincount(psu_stratum, minlength=len(s_labels)).astype(np.intp)
    lonely = [s_labels[k] for k in np.flatnonzero(counts == 1).tolist()]
    if lonely:
        raise SingletonStratumError(lonely)
    return Design(
        weights=w,
        stratum=s_codes,
        psu=p_codes,
        psu_stratum=psu_stratum,
        stratum_labels=s_labels,
        n_psu_in_stratum=counts,
    )


def _check_len(values: ArrayLike, n: int, name: str) -> ArrayLike:
    size = np.shape(values)[0] if np.ndim(values) else -1
    if size != n:
        raise StatsInputError(f"{name} has {size} values, the weights {n}")
    return values


def _weights(weights: ArrayLike) -> FloatArray:
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise StatsInputError(f"weights are not numeric: {exc}") from None
    if w.ndim != 1 or w.shape[0] == 0:
        raise StatsInputError(f"weights must be a non-empty one-dimensional array, got {w.shape}")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        k = int(bad[0])
        raise StatsInputError(
            f"weights must be finite and >= 0: {bad.size} are not (first: row {k + 1}, {w[k]!r})"
        )
    if not w.sum() > 0:
        raise StatsInputError("weights sum to zero")
    return w


def as_float_column(values: Sequence[Any] | ArrayLike, *, name: str) -> FloatArray:
    """A numeric column with NaN for missing values (None, "", "NA"); a non-numeric value is a
    :class:`StatsInputError` naming the first bad row."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iufb":
        return arr.astype(np.float64)
    out = np.empty(arr.shape[0], dtype=np.float64)
    for k, v in enumerate(arr.tolist()):
        if v is None or (isinstance(v, str) and v.strip() in ("", "NA", "NaN", "nan", ".")):
            out[k] = np.nan
            continue
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            raise StatsInputError(f"{name} is not numeric: row {k + 1} has {v!r}") from None
    return out
