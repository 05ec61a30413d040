"""Disclosure control: primary rule, secondary suppression, and the derivability checker
(property tests on random tables: no suppressed cell can be recomputed from the margins)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anshim import stats


def test_primary_rule_defaults_and_configurable() -> None:
    rule = stats.DEFAULT_RULE
    assert rule.suppressed(29, 15)
    assert not rule.suppressed(30, 15)
    assert rule.suppressed(100, 1) and rule.suppressed(100, 9)
    assert not rule.suppressed(100, 0) and not rule.suppressed(100, 10)
    assert not rule.suppressed(30)  # a mean: denominator only
    strict = stats.DisclosureRule(min_denominator=50, max_small_numerator=4)
    assert strict.suppressed(49, 20) and not strict.suppressed(50, 5)
    with pytest.raises(stats.StatsInputError):
        stats.DisclosureRule(min_denominator=-1)


def test_single_suppressed_cell_in_a_row_is_derivable() -> None:
    table = stats.with_margins([[10, 20], [30, 40]])
    mask = np.zeros(table.shape, dtype=bool)
    mask[0, 0] = True
    assert stats.derivable_cells(table, mask) == [(0, 0)]
    mask[0, 1] = True  # the row total still gives the pair's sum, each column gives each cell
    assert sorted(stats.derivable_cells(table, mask)) == [(0, 0), (0, 1)]
    mask[1, 0] = mask[1, 1] = True  # all four: only the margins are known
    assert stats.derivable_cells(table, mask) == []


def test_chain_pattern_is_caught() -> None:
    # a suppressed "staircase" of six cells that closes into a cycle: every row and column
    # holds two of them, and shifting +1/-1 around the cycle keeps every margin
    table = stats.with_margins(np.arange(1, 13).reshape(3, 4))
    mask = np.zeros(table.shape, dtype=bool)
    for i, j in [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (2, 0)]:
        mask[i, j] = True
    assert stats.derivable_cells(table, mask) == []
    mask[2, 0] = False
    assert stats.derivable_cells(table, mask)  # open chain: the ends give it away


def test_margins_must_add_up() -> None:
    table = stats.with_margins([[1, 2], [3, 4]])
    table[0, 0] = 99
    with pytest.raises(stats.StatsInputError, match="add up"):
        stats.derivable_cells(table, np.zeros(table.shape, dtype=bool))


def test_protect_table_example() -> None:
    num = [[3, 40, 50], [60, 70, 2]]
    den = [[50, 100, 100], [100, 100, 20]]
    t = stats.protect_table(num, den)
    assert t.primary[0, 0] and t.primary[1, 2]
    assert not t.primary[:, -1].any()
    # the cheapest rectangle: (0,0) (0,2) (1,0) (1,2), nothing else
    assert {tuple(x) for x in np.argwhere(t.suppressed)} == {(0, 0), (0, 2), (1, 0), (1, 2)}
    assert stats.derivable_cells(t.numerators, t.suppressed) == []
    assert stats.derivable_cells(t.denominators, t.suppressed) == []


def _brute_force_derivable(mask: np.ndarray) -> set[tuple[int, int]]:
    """Independent check: a cell is derivable when some combination of the line equations
    isolates it. Solve the least-squares system for two very different right-hand sides
    consistent with the published cells: a derivable cell has the same value in every
    solution, so compare the minimum-norm solution with solutions shifted by null vectors."""
    rows, cols = mask.shape
    unknown = [(i, j) for i in range(rows) for j in range(cols) if mask[i, j]]
    if not unknown:
        return set()
    index = {c: k for k, c in enumerate(unknown)}
    eqs = []
    for i in range(rows):
        e = np.zeros(len(unknown))
        for j in range(cols):
            if (i, j) in index:
                e[index[(i, j)]] = -1.0 if j == cols - 1 else 1.0
        eqs.append(e)
    for j in range(cols):
        e = np.zeros(len(unknown))
        for i in range(rows):
            if (i, j) in index:
                e[index[(i, j)]] = -1.0 if i == rows - 1 else 1.0
        eqs.append(e)
    a = np.array(eqs)
    out = set()
    for k, cell in enumerate(unknown):
        unit = np.zeros(len(unknown))
        unit[k] = 1.0
        stacked = np.vstack([a, unit])
        if np.linalg.matrix_rank(stacked) == np.linalg.matrix_rank(a):
            out.add(cell)
    return out


tables = st.integers(min_value=2, max_value=6).flatmap(
    lambda r: st.integers(min_value=2, max_value=6).flatmap(
        lambda c: st.tuples(
            st.lists(st.integers(0, 120), min_size=r * c, max_size=r * c).map(
                lambda v: np.array(v, dtype=float).reshape(r, c)
            ),
            st.lists(st.booleans(), min_size=(r + 1) * (c + 1), max_size=(r + 1) * (c + 1)).map(
                lambda v: np.array(v, dtype=bool).reshape(r + 1, c + 1)
            ),
        )
    )
)


@settings(max_examples=150, deadline=None)
@given(tables)
def test_checker_agrees_with_rank_brute_force(case: tuple[np.ndarray, np.ndarray]) -> None:
    interior, mask = case
    table = stats.with_margins(interior)
    assert set(stats.derivable_cells(table, mask, nonnegative=False)) == _brute_force_derivable(
        mask
    )
    # non-negativity only ever adds derivable cells
    assert set(stats.derivable_cells(table, mask)) >= _brute_force_derivable(mask)


@settings(max_examples=150, deadline=None)
@given(tables)
def test_secondary_suppression_leaves_nothing_derivable(
    case: tuple[np.ndarray, np.ndarray],
) -> None:
    interior, primary = case
    table = stats.with_margins(interior)
    full = stats.secondary_suppression(table, primary)
    assert (full | primary).sum() == full.sum()  # a superset of the primary cells
    assert stats.derivable_cells(table, full) == []
    assert _brute_force_derivable(full) == set()


@settings(max_examples=150, deadline=None)
@given(
    st.integers(2, 5).flatmap(
        lambda r: st.integers(2, 5).flatmap(
            lambda c: st.lists(
                st.tuples(st.integers(0, 80), st.integers(0, 40)),
                min_size=r * c,
                max_size=r * c,
            ).map(lambda v: (r, c, v))
        )
    )
)
def test_protect_table_random_counts(case: tuple[int, int, list[tuple[int, int]]]) -> None:
    r, c, cells = case
    den = np.array([a + b for a, b in cells]).reshape(r, c)
    num = np.array([b for _, b in cells]).reshape(r, c)
    t = stats.protect_table(num, den)
    rule = stats.DEFAULT_RULE
    for i, j in itertools.product(range(r + 1), range(c + 1)):
        if rule.suppressed(int(t.denominators[i, j]), int(t.numerators[i, j])):
            assert t.suppressed[i, j]
    assert stats.derivable_cells(t.numerators, t.suppressed) == []


def test_protect_margins_prefers_interior_cells() -> None:
    num = [[5, 50], [50, 50]]
    den = [[100, 100], [100, 100]]
    t = stats.protect_table(num, den, protect_margins=True)
    assert not t.suppressed[-1, :].any() and not t.suppressed[:, -1].any()
    assert t.suppressed[:2, :2].all()


def test_bad_tables_are_typed_errors() -> None:
    with pytest.raises(stats.StatsInputError):
        stats.protect_table([[5, 50]], [[4, 60]])  # numerator above its denominator
    with pytest.raises(stats.StatsInputError):
        stats.with_margins([1, 2, 3])
    with pytest.raises(stats.StatsInputError):
        stats.derivable_cells(stats.with_margins([[1, 2]]), np.zeros((3, 3), dtype=bool))


def test_hidden_zeros_are_pinned_by_non_negativity() -> None:
    table = stats.with_margins([[0, 0, 7], [4, 5, 6]])
    mask = np.zeros(table.shape, dtype=bool)
    mask[0, 0] = mask[0, 1] = mask[1, 0] = mask[1, 1] = True
    # linearly a 2 x 2 rectangle is safe; but row 0's hidden pair sums to 0, so both are 0 and
    # then row 1's pair follows from the columns
    assert stats.derivable_cells(table, mask, nonnegative=False) == []
    assert stats.derivable_cells(table, mask) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    full = stats.secondary_suppression(table, mask)
    assert stats.derivable_cells(table, full) == []


def _lp_pinned(table: np.ndarray, mask: np.ndarray) -> set[tuple[int, int]]:
    """Independent reference under non-negativity: both LP bounds of every hidden cell."""
    from scipy.optimize import linprog

    rows, cols = mask.shape
    hidden = [(i, j) for i in range(rows) for j in range(cols) if mask[i, j]]
    if not hidden:
        return set()
    index = {c: k for k, c in enumerate(hidden)}
    a_eq, b_eq = [], []
    for line in [[(i, j) for j in range(cols)] for i in range(rows)] + [
        [(i, j) for i in range(rows)] for j in range(cols)
    ]:
        coef = np.zeros(len(hidden))
        rhs = 0.0
        for n, cell in enumerate(line):
            sign = -1.0 if n == len(line) - 1 else 1.0
            if cell in index:
                coef[index[cell]] += sign
            else:
                rhs -= sign * table[cell]
        a_eq.append(coef)
        b_eq.append(rhs)
    out = set()
    for k, cell in enumerate(hidden):
        c = np.zeros(len(hidden))
        c[k] = 1.0
        lo = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        hi = linprog(-c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        assert lo.status == 0, lo.message  # the true table is feasible and x >= 0 bounds it
        if hi.status == 0 and -hi.fun - lo.fun < 1e-7:  # status 3: unbounded, not pinned
            out.add(cell)
    return out


zero_heavy = st.integers(min_value=2, max_value=4).flatmap(
    lambda r: st.integers(min_value=2, max_value=4).flatmap(
        lambda c: st.tuples(
            st.lists(st.sampled_from([0, 0, 0, 1, 3, 8]), min_size=r * c, max_size=r * c).map(
                lambda v: np.array(v, dtype=float).reshape(r, c)
            ),
            st.lists(st.booleans(), min_size=(r + 1) * (c + 1), max_size=(r + 1) * (c + 1)).map(
                lambda v: np.array(v, dtype=bool).reshape(r + 1, c + 1)
            ),
        )
    )
)


@settings(max_examples=80, deadline=None)
@given(zero_heavy)
def test_non_negative_checker_agrees_with_lp(case: tuple[np.ndarray, np.ndarray]) -> None:
    interior, mask = case
    table = stats.with_margins(interior)
    assert set(stats.derivable_cells(table, mask)) == _lp_pinned(table, mask)


@settings(max_examples=80, deadline=None)
@given(zero_heavy)
def test_secondary_suppression_with_many_zeros(case: tuple[np.ndarray, np.ndarray]) -> None:
    interior, primary = case
    table = stats.with_margins(interior)
    full = stats.secondary_suppression(table, primary)
    assert not (primary & ~full).any()
    assert _lp_pinned(table, full) == set()
