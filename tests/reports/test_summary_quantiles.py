"""The dashboard's quantiles from the merged histograms (closed months from the summary, kept
per slice; the open month live) against the nearest rank of the raw durations, and what is
kept read again once a closed month changes."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from anshim.reports import figures, summary
from anshim.reports.models import DurationMeasure

from .conftest import YEAR, World, at

#: notice to removal (hours) of the extra March notices: bin edges, a fraction under a
#: whole hour, and the coarse bins above 1,000 h
HOURS = [0.25, 0.95, 1.0, 1.5, 2.0, 7.3, 23.99, 24.0, 47.5, 99.95, 100.0, 250.4, 999.9,
         1000.0, 1004.9, 1234.5]


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"


def _bin(hours: float) -> float:
    """The histogram's lower edge of a duration: whole hours under 1,000 h, 10 h above."""
    return float(math.floor(hours)) if hours < 1000 else float(math.floor(hours / 10) * 10)


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _add_removals(world: World, hours: list[float]) -> None:
    from anshim.erasure.models import TakedownRequest

    for n, h in enumerate(hours):
        sent = at(3, 1 + n % 20)
        TakedownRequest.objects.create(
            case=world.cases[0], platform=world.platforms["social"], subject="s", body="b",
            state="removed", sent_at=sent, closed_at=sent + dt.timedelta(hours=h))


def test_nearest_rank_of_a_histogram() -> None:
    # 10 in bin 0 h, 1 in 5 h, 1 in 50 h: the median's rank 6 lies in the first bin, the
    # p90's rank 10.8 -> 11 in the second
    bins = {0: 10, 50: 1, 500: 1}
    assert summary.nearest_rank({"g": bins}, (0.5, 0.9, 1.0)) == {"g": [0.0, 5.0, 50.0]}
    assert summary.nearest_rank({"empty": {}}, (0.5,)) == {}


@pytest.mark.parametrize("q", [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0])
def test_merged_histogram_quantiles_are_the_nearest_rank_of_the_raw_durations(
        world: World, q: float) -> None:
    _add_removals(world, HOURS)
    period = figures.year_period(YEAR)
    social = str(world.platforms["social"].pk)
    # the fixture's own Social removals: 10 h, 30 h (February), 100 h (May)
    raw = [*HOURS, 10.0, 30.0, 100.0]
    expected = _bin(_nearest_rank(raw, q))
    cached = summary.plan(period.start, period.end, build=True)
    assert len(cached.cached) == 12
    live = summary.Plan(cached=[], live=[(period.start, period.end)])
    for p in (cached, live):
        got = summary.quantiles(p, summary.ALL, DurationMeasure.REMOVAL, (q,))
        assert got[social] == [expected], (p.cached, q)


def test_kept_histograms_are_read_again_after_a_change(world: World) -> None:
    from anshim.erasure.models import TakedownRequest

    period = figures.year_period(YEAR)
    social = str(world.platforms["social"].pk)

    def median() -> float | None:
        p = summary.plan(period.start, period.end, build=True)
        return summary.quantiles(p, summary.ALL, DurationMeasure.REMOVAL, (0.5,))[social][0]

    assert median() == 30.0  # 10, 30, 100 h
    assert median() == 30.0  # the second read is the kept one
    # a late correction in a closed month: the 10 h removal took 200 h
    request = TakedownRequest.objects.filter(case=world.cases[0]).order_by("closed_at")[0]
    request.closed_at = request.sent_at + dt.timedelta(hours=200)
    request.save()
    assert median() == 100.0  # 30, 100, 200 h
