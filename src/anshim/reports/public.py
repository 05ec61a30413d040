"""The public statistics: the annual tables with disclosure control from `anshim.stats`
(primary suppression of small counts, secondary suppression so no hidden cell is derivable
from the published ones and the totals)."""

from __future__ import annotations

import numpy as np

from anshim import stats
from anshim.reports.figures import Period, Table, annual_tables

#: A count is a victim-level figure: 1 to 9 is too few to publish (0 is published; the rule's
#: denominator test does not apply to plain counts).
PUBLIC_RULE = stats.DisclosureRule(min_denominator=0, max_small_numerator=9)

#: The tables published: counts only (shares are recomputed from the protected counts).
PUBLIC_KEYS = ("victims_by_sex", "victims_by_age", "victims_by_region", "harm_types",
               "relationship", "services", "deletions_by_kind", "deletions_by_hosting",
               "coleak", "proactive")


def protect(table: Table) -> Table:
    """A one-column count table as a 1 x R table with its total; suppressed cells are blanked
    (the total row is added and protected too)."""
    counts = np.array([[float(r[1]) for r in table.rows]])
    if counts.size == 0:
        return table
    result = stats.protect_table(counts, counts, PUBLIC_RULE)
    mask = result.suppressed
    total = int(result.numerators[0, -1])
    rows = [[r[0], int(r[1])] for r in table.rows] + [[total_label(), total]]
    suppressed = {(i, 1) for i in range(len(table.rows)) if mask[0, i]}
    if mask[0, -1]:
        suppressed.add((len(table.rows), 1))
    return Table(table.key, table.title, table.columns[:2], rows, suppressed, table.note)


def total_label() -> str:
    """The label of the total row a protected table carries (render's summary reads it)."""
    from django.utils.translation import gettext

    return gettext("Total")


def public_tables(period: Period) -> list[Table]:
    return [protect(t) for t in annual_tables(period) if t.key in PUBLIC_KEYS]


def derivable(table: Table) -> list[tuple[int, int]]:
    """The check the tests run: [] proves the published table safe."""
    values = np.array([[float(r[1]) for r in table.rows[:-1]] + [float(table.rows[-1][1])]])
    values = np.vstack([values, values])  # the column margin of a single row is the row itself
    mask = np.zeros(values.shape, dtype=bool)
    for i, _j in table.suppressed:
        mask[:, i] = True
    return stats.derivable_cells(values, mask)
