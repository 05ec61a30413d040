"""Table tests of the pure ranking function."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation

from anshim.experts.ranking import (
    AVAILABILITY_TARGET_SLOTS,
    WEIGHT_AGE,
    WEIGHT_AVAILABILITY,
    WEIGHT_LANGUAGE,
    WEIGHT_LOAD,
    WEIGHT_REGION,
    ExpertSnapshot,
    Window,
    free_slot_count,
    rank_experts,
    slot_starts,
)

SEOUL = ZoneInfo("Asia/Seoul")
AT = dt.datetime(2030, 1, 7, 8, 0, tzinfo=SEOUL)  # a Monday, 08:00
WIDE = (Window(0, dt.time(9), dt.time(17)), Window(2, dt.time(9), dt.time(17)))  # 64 slots/week


def snap(expert_id: int, *, specialties: tuple[str, ...] = ("trauma",),
         languages: tuple[str, ...] = ("ko",), regions: tuple[str, ...] = ("jongno",),
         capacity: int = 5, active_assignments: int = 0,
         windows: tuple[Window, ...] = WIDE, booked: frozenset[dt.datetime] = frozenset(),
         active: bool = True, ages: tuple[str, ...] = ()) -> ExpertSnapshot:
    return ExpertSnapshot(
        expert_id=expert_id, specialties=frozenset(specialties), languages=frozenset(languages),
        regions=frozenset(regions), weekly_capacity=capacity,
        active_assignments=active_assignments, windows=windows, booked_slots=booked,
        active=active, age_groups=frozenset(ages),
    )


def ids(result: list) -> list[int]:
    return [s.expert_id for s in result]


def test_weights_sum_to_one() -> None:
    assert (WEIGHT_LANGUAGE + WEIGHT_LOAD + WEIGHT_AVAILABILITY + WEIGHT_AGE + WEIGHT_REGION
            == pytest.approx(1))


@pytest.mark.parametrize(
    ("label", "candidates", "language", "region", "expected"),
    [
        ("specialty is required", [snap(1, specialties=("family",)), snap(2)], "ko", None, [2]),
        ("inactive experts are never suggested", [snap(1, active=False), snap(2)], "ko", None,
         [2]),
        ("language match wins over lower load",
         [snap(1, languages=("ko",)), snap(2, languages=("vi",), active_assignments=3)],
         "vi", None, [2, 1]),
        ("lower load first", [snap(1, active_assignments=4), snap(2, active_assignments=1)],
         "ko", None, [2, 1]),
        ("region breaks an otherwise even tie",
         [snap(1, regions=("gangnam",)), snap(2, regions=("mapo",))], "ko", "mapo", [2, 1]),
        ("no region: equal scores fall back to the id", [snap(2), snap(1)], "ko", None, [1, 2]),
        ("available beats unavailable",
         [snap(1, windows=()), snap(2)], "ko", None, [2, 1]),
        ("over capacity ranks below free experts",
         [snap(1, capacity=2, active_assignments=5), snap(2, active_assignments=2)], "ko", None,
         [2, 1]),
        ("no candidates", [], "ko", None, []),
    ],
)
def test_ranking_table(label: str, candidates: list[ExpertSnapshot], language: str,
                       region: str | None, expected: list[int]) -> None:
    assert ids(rank_experts("trauma", language=language, region=region, at=AT,
                            candidates=candidates)) == expected, label


def test_score_components_are_explicit() -> None:
    [s] = rank_experts("trauma", language="ko", region="jongno", at=AT,
                       candidates=[snap(1, capacity=4, active_assignments=1)])
    assert s.factors["load"] == pytest.approx(WEIGHT_LOAD * 0.75)
    assert s.factors["availability"] == pytest.approx(WEIGHT_AVAILABILITY)
    assert s.factors["language"] == pytest.approx(WEIGHT_LANGUAGE)
    assert s.factors["region"] == pytest.approx(WEIGHT_REGION)
    assert s.score == pytest.approx(sum(s.factors.values()), abs=1e-4)
    assert s.load == pytest.approx(0.25)
    assert s.reasons  # shown to the staff member who decides


def test_zero_capacity_counts_as_full() -> None:
    [s] = rank_experts("trauma", language="ko", region=None, at=AT,
                       candidates=[snap(1, capacity=0)])
    assert s.factors["load"] == 0


def test_free_slots_count_the_next_14_days_minus_booked() -> None:
    windows = (Window(0, dt.time(9), dt.time(10)),)  # Mondays 09:00-10:00: 4 slots
    assert free_slot_count(snap(1, windows=windows), AT) == 8  # two Mondays in 14 days
    booked = frozenset({dt.datetime(2030, 1, 7, 9, 15, tzinfo=SEOUL),
                        # the same instant in UTC is recognised as booked too
                        dt.datetime(2030, 1, 14, 0, 30, tzinfo=dt.UTC)})
    assert free_slot_count(snap(1, windows=windows, booked=booked), AT) == 6


def test_slots_already_started_are_not_free() -> None:
    at = dt.datetime(2030, 1, 7, 9, 20, tzinfo=SEOUL)
    starts = slot_starts((Window(0, dt.time(9), dt.time(10)),), at, at + dt.timedelta(days=1))
    assert [s.time() for s in starts] == [dt.time(9, 30), dt.time(9, 45)]


def test_slots_fit_inside_the_window() -> None:
    starts = slot_starts((Window(0, dt.time(9), dt.time(9, 40)),), AT, AT + dt.timedelta(days=1))
    assert [s.time() for s in starts] == [dt.time(9), dt.time(9, 15)]


def test_availability_saturates() -> None:
    few = (Window(0, dt.time(9), dt.time(10)),)  # 8 free slots in 14 days
    [s] = rank_experts("trauma", language="ko", region=None, at=AT,
                       candidates=[snap(1, windows=few)])
    assert s.free_slots == 8
    assert s.factors["availability"] == pytest.approx(
        WEIGHT_AVAILABILITY * 8 / AVAILABILITY_TARGET_SLOTS)


@pytest.mark.parametrize(
    ("label", "age", "expected"),
    [
        # 1 specialises in under-14s, 2 in adults, 3 lists no age group (all ages); 3 carries
        # a little less load, so without the age it comes first (then 1 and 2 by id).
        ("a child goes to the child specialist", "under14", [1, 3, 2]),
        ("an adult goes to the adult specialist", "adult", [2, 3, 1]),
        ("unknown age leaves the age out", "unknown", [3, 1, 2]),
        ("no age given leaves the age out", None, [3, 1, 2]),
    ],
)
def test_the_victims_age_is_an_input(label: str, age: str | None, expected: list[int]) -> None:
    candidates = [snap(1, ages=("under14",), active_assignments=1),
                  snap(2, ages=("adult",), active_assignments=1),
                  snap(3, active_assignments=0)]
    result = rank_experts("trauma", language="ko", region=None, at=AT, candidates=candidates,
                          age_group=age)
    assert ids(result) == expected, label


@translation.override("en")
def test_age_factor_and_reasons() -> None:
    specialist, general, other = rank_experts(
        "trauma", language="ko", region=None, at=AT, age_group="under14",
        candidates=[snap(1, ages=("under14", "14to17")), snap(2), snap(3, ages=("adult",))])
    assert specialist.factors["age"] == pytest.approx(WEIGHT_AGE)
    assert general.factors["age"] == pytest.approx(WEIGHT_AGE / 2)
    assert other.factors["age"] == 0
    assert "Specialises in the victim's age group" in specialist.reasons
    assert "Works with all ages" in general.reasons
    assert "Works with other age groups" in other.reasons
    unknown = rank_experts("trauma", language="ko", region=None, at=AT, age_group="unknown",
                           candidates=[snap(1, ages=("under14",))])[0]
    assert unknown.factors["age"] == 0
    assert not any("age group" in r or "all ages" in r for r in unknown.reasons)
