"""Disclosure control for everything published: primary and secondary cell suppression.

Primary: a cell is suppressed when its unweighted denominator is under ``min_denominator`` (30)
or its unweighted numerator is between 1 and ``max_small_numerator`` (9).

Secondary: in a 2-D table published with its row totals, column totals and grand total, a
suppressed cell could be recomputed by subtraction (a row with one suppressed cell gives it away;
so can subtler patterns). :func:`secondary_suppression` suppresses further cells until
:func:`derivable_cells` finds none. Derivability is exact linear algebra: the suppressed cells are
unknowns of the additivity equations (each row and column adds up to its margin, the margins to
the total), and a cell is derivable when every solution gives it the same value, i.e. its unit
vector lies in the row space of the equations restricted to the unknowns. This depends only on
*which* cells are suppressed, not on their values, so one mask protects the numerator and the
denominator tables alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import StatsInputError

__all__ = [
    "DEFAULT_RULE",
    "DisclosureRule",
    "TableSuppression",
    "derivable_cells",
    "primary_suppression",
    "protect_table",
    "secondary_suppression",
    "with_margins",
]

BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class DisclosureRule:
    """When a cell is too small to publish (both thresholds configurable)."""

    #: suppress when the unweighted denominator is below this.
    min_denominator: int = 30
    #: suppress when the unweighted numerator is between 1 and this (0 means no numerator rule).
    max_small_numerator: int = 9

    def __post_init__(self) -> None:
        if self.min_denominator < 0 or self.max_small_numerator < 0:
            raise StatsInputError("disclosure thresholds must be >= 0")

    def suppressed(self, denominator: int, numerator: int | None = None) -> bool:
        """Whether one estimate with these unweighted counts must be suppressed."""
        if denominator < self.min_denominator:
            return True
        return numerator is not None and 1 <= numerator <= self.max_small_numerator


DEFAULT_RULE = DisclosureRule()


def primary_suppression(
    denominators: ArrayLike,
    numerators: ArrayLike | None = None,
    rule: DisclosureRule = DEFAULT_RULE,
) -> BoolArray:
    """Cells (any shape) that fail ``rule`` on their own."""
    den = np.asarray(denominators)
    mask: BoolArray = den < rule.min_denominator
    if numerators is not None:
        num = np.asarray(numerators)
        if num.shape != den.shape:
            raise StatsInputError("numerators and denominators must have the same shape")
        mask = mask | ((num >= 1) & (num <= rule.max_small_numerator))
    return mask


def with_margins(interior: ArrayLike) -> NDArray[np.float64]:
    """The (R+1) x (C+1) table of an R x C table with its row totals (last column), column
    totals (last row) and grand total (bottom right)."""
    t = np.asarray(interior, dtype=np.float64)
    if t.ndim != 2:
        raise StatsInputError(f"a table must be two-dimensional, got shape {t.shape}")
    out = np.empty((t.shape[0] + 1, t.shape[1] + 1))
    out[:-1, :-1] = t
    out[:-1, -1] = t.sum(axis=1)
    out[-1, :-1] = t.sum(axis=0)
    out[-1, -1] = t.sum()
    return out


def _equations(shape: tuple[int, int]) -> NDArray[np.float64]:
    """Additivity equations of an (R+1) x (C+1) table with margins, one row per equation over
    the flattened cells: each row sums to its total, each column to its total, and the row
    totals (and column totals) to the grand total."""
    rows, cols = shape
    r, c = rows - 1, cols - 1
    eqs: list[NDArray[np.float64]] = []
    for i in range(rows):  # row i (the margin row too): its interior cells minus its total
        e = np.zeros(shape)
        e[i, :c] = 1.0
        e[i, c] = -1.0
        eqs.append(e.ravel())
    for j in range(cols):  # column j (the margin column too)
        e = np.zeros(shape)
        e[:r, j] = 1.0
        e[r, j] = -1.0
        eqs.append(e.ravel())
    return np.array(eqs)


def derivable_cells(
    table: ArrayLike, suppressed: ArrayLike, *, nonnegative: bool = True
) -> list[tuple[int, int]]:
    """The suppressed cells of a published table with margins whose values follow from the
    published cells: ``[]`` proves the table safe.

    ``table``: (R+1) x (C+1), its last row and column the margins (see :func:`with_margins`);
    ``suppressed``: a boolean mask of the same shape (margins may be suppressed too).
    ``nonnegative`` (counts; ignored when the table has a negative value): a reader also knows
    that no cell is negative, which pins hidden cells whose line's hidden total is 0 (two hidden
    cells summing to 0 are both 0) and what follows from them; such cells count as derivable
    too. Raises :class:`StatsInputError` when the
    table does not add up (the check assumes it does).
    """
    t = np.asarray(table, dtype=np.float64)
    m = np.asarray(suppressed, dtype=bool)
    if t.ndim != 2 or t.shape[0] < 2 or t.shape[1] < 2:
        raise StatsInputError(f"a table with margins must be at least 2 x 2, got {t.shape}")
    if m.shape != t.shape:
        raise StatsInputError(f"the mask has shape {m.shape}, the table {t.shape}")
    scale = max(1.0, float(np.abs(t).max()))
    if not np.allclose(with_margins(t[:-1, :-1]), t, rtol=1e-9, atol=1e-9 * scale):
        raise StatsInputError("the table's margins do not add up to its cells")
    return _derivable(m, t if nonnegative and (t >= 0).all() else None)


def _derivable(mask: BoolArray, values: NDArray[np.float64] | None = None) -> list[tuple[int, int]]:
    """Linearly derivable hidden cells, plus (with ``values``, all >= 0) the cells that the
    equations and non-negativity pin to one value.

    Under x >= 0 the feasible tables form a polyhedron whose affine hull is the equations plus
    x_j = 0 for the hidden cells that are 0 in *every* feasible table (its implicit
    equalities); a coordinate is constant on the polyhedron exactly when it is constant on that
    hull. So: find those forced zeros (:func:`_forced_zeros`), publish them, and test the rest
    linearly.
    """
    if values is None or not (values[mask] == 0).any():
        # no hidden cell at its bound 0: no implicit equality, the linear answer is the answer
        return _linear_derivable(mask)
    forced = _forced_zeros(mask, values)
    if not forced:
        return _linear_derivable(mask)
    reduced = mask.copy()
    for cell in forced:
        reduced[cell] = False
    return sorted(set(forced) | set(_linear_derivable(reduced)))


def _forced_zeros(mask: BoolArray, values: NDArray[np.float64]) -> list[tuple[int, int]]:
    """Hidden cells at 0 that stay 0 in every non-negative table with the published cells.

    Flip the sign of the margin cells outside the corner and every row and column of the
    (R+1) x (C+1) table sums to 0: the changes that keep the published cells are circulations
    on the bipartite graph rows - columns whose edges are the hidden cells, i.e. sums of
    cycles with alternating +1/-1. A hidden 0 can grow exactly when some simple cycle through
    it (conformal decomposition) takes -1 only from cells that are positive: a directed path
    search where a positive cell may be crossed either way and a zero cell only the way that
    increases it.
    """
    rows, cols = mask.shape
    succ: dict[int, list[tuple[int, int]]] = {}  # node -> [(next node, cell id)]
    zeros: list[tuple[int, int, int]] = []  # (cell id, tail, head) of each hidden zero
    cells = [(int(i), int(j)) for i, j in zip(*np.nonzero(mask), strict=True)]
    for cid, (i, j) in enumerate(cells):
        r, c = i, rows + j  # node ids: rows, then columns
        sign = -1 if (i == rows - 1) != (j == cols - 1) else 1
        positive = bool(values[i, j] > 0)
        if positive or sign == 1:  # +1 on the signed table: row -> column
            succ.setdefault(r, []).append((c, cid))
        if positive or sign == -1:  # -1 on the signed table: column -> row
            succ.setdefault(c, []).append((r, cid))
        if not positive:
            tail, head = (r, c) if sign == 1 else (c, r)
            zeros.append((cid, tail, head))
    forced: list[tuple[int, int]] = []
    for cid, tail, head in zeros:
        # a path head -> tail without this cell closes a cycle that increases it
        seen = {head}
        frontier = [head]
        found = False
        while frontier and not found:
            node = frontier.pop()
            for nxt, via in succ.get(node, ()):
                if via == cid or nxt in seen:
                    continue
                if nxt == tail:
                    found = True
                    break
                seen.add(nxt)
                frontier.append(nxt)
        if not found:
            forced.append(cells[cid])
    return forced


def _linear_derivable(mask: BoolArray) -> list[tuple[int, int]]:
    unknown = np.flatnonzero(mask.ravel())
    if unknown.size == 0:
        return []
    a = _equations(mask.shape)[:, unknown]
    # e_k is in the row space of a  <=>  the k-th coordinate of every null-space vector is 0.
    _, s, vt = np.linalg.svd(a, full_matrices=True)
    tol = max(a.shape) * np.finfo(np.float64).eps * (s[0] if s.size else 1.0)
    rank = int((s > tol).sum())
    null = vt[rank:]  # rows span the null space of a
    if null.shape[0] == 0:
        fixed = np.ones(unknown.size, dtype=bool)
    else:
        fixed = np.abs(null).max(axis=0) < 1e-9
    cols = mask.shape[1]
    return [(int(k // cols), int(k % cols)) for k in unknown[fixed].tolist()]


def secondary_suppression(
    table: ArrayLike, suppressed: ArrayLike, *, protect_margins: bool = False
) -> BoolArray:
    """A superset of ``suppressed`` with no derivable cell (see :func:`derivable_cells`; for a
    table without negative values, non-negativity included).

    ``table`` and ``suppressed`` are (R+1) x (C+1) with margins. Complementary cells are chosen
    greedily by the least information lost: the smallest published values, interior cells
    before margins (``protect_margins=True``: margins only when nothing else works).
    """
    t = np.asarray(table, dtype=np.float64)
    m = np.array(suppressed, dtype=bool, copy=True)
    if m.shape != t.shape or t.ndim != 2:
        raise StatsInputError("table and mask must be 2-D with the same shape")
    rows, cols = t.shape
    margin = np.zeros(t.shape, dtype=bool)
    margin[-1, :] = True
    margin[:, -1] = True
    # cost of suppressing a cell: its value, margins dearer (and last resort when protected)
    big = float(np.abs(t).sum()) + 1.0
    cost = np.abs(t) + np.where(margin, big * (1e6 if protect_margins else 1.0), 0.0)
    # a hidden 0 beside other hidden 0s gives them all away (counts are not negative): zeros
    # are complements only after every non-zero interior cell
    cost = cost + np.where(t == 0, big / 2, 0.0)
    values = t if (t >= 0).all() else None

    def cheapest(candidates: BoolArray) -> tuple[int, int] | None:
        """The cell to add: first one that also mends the crossing line (it holds a single
        suppressed cell), then one whose crossing line is already safe (two or more), last one
        that opens a new single on an untouched line; the cheapest within each tier."""
        free = candidates & ~m
        if not free.any():
            return None
        row_n = m.sum(axis=1)[:, None]
        col_n = m.sum(axis=0)[None, :]
        singles = (row_n == 1).astype(int) + (col_n == 1).astype(int)
        opens = (row_n == 0).astype(int) + (col_n == 0).astype(int)
        tier = np.where(free, 2.0 * opens - singles, np.inf)
        best = tier == tier.min()
        c = np.where(free & best, cost, np.inf)
        k = int(np.argmin(c))
        return k // cols, k % cols

    while True:
        # a line (row or column, margins included) with exactly one suppressed cell gives it away
        changed = True
        while changed:
            changed = False
            for i in range(rows):
                if m[i].sum() == 1:
                    line = np.zeros(t.shape, dtype=bool)
                    line[i] = True
                    pick = cheapest(line)
                    if pick is not None:
                        m[pick] = True
                        changed = True
            for j in range(cols):
                if m[:, j].sum() == 1:
                    line = np.zeros(t.shape, dtype=bool)
                    line[:, j] = True
                    pick = cheapest(line)
                    if pick is not None:
                        m[pick] = True
                        changed = True
        left = _derivable(m, values)
        if not left:
            return m
        # still derivable (e.g. suppressed cells forming a chain): widen around the first one
        i, j = left[0]
        pick = cheapest(_rows_cols(t.shape, i, j))
        if pick is None:
            pick = cheapest(np.ones(t.shape, dtype=bool))
            if pick is None:  # everything suppressed: nothing derivable, cannot happen
                return m
        m[pick] = True


def _rows_cols(shape: tuple[int, ...], i: int, j: int) -> BoolArray:
    line = np.zeros(shape, dtype=bool)
    line[i, :] = True
    line[:, j] = True
    return line


@dataclass(frozen=True, slots=True)
class TableSuppression:
    """The protected form of a 2-D table with margins: what to blank and why."""

    #: (R+1) x (C+1) numerators and denominators with margins.
    numerators: NDArray[np.float64]
    denominators: NDArray[np.float64]
    primary: BoolArray
    secondary: BoolArray

    @property
    def suppressed(self) -> BoolArray:
        out: BoolArray = self.primary | self.secondary
        return out


def protect_table(
    numerators: ArrayLike,
    denominators: ArrayLike,
    rule: DisclosureRule = DEFAULT_RULE,
    *,
    protect_margins: bool = False,
) -> TableSuppression:
    """Primary then secondary suppression of an R x C table of unweighted counts (numerator:
    respondents with the characteristic; denominator: respondents in the cell). The margins are
    added and may themselves be suppressed (a small row total)."""
    num = with_margins(numerators)
    den = with_margins(denominators)
    if num.shape != den.shape:
        raise StatsInputError("numerators and denominators must have the same shape")
    if (num < 0).any() or (num > den).any():
        raise StatsInputError("numerators must be between 0 and their denominators")
    primary = primary_suppression(den, num, rule)
    full = secondary_suppression(num, primary, protect_margins=protect_margins)
    return TableSuppression(
        numerators=num, denominators=den, primary=primary, secondary=full & ~primary
    )
