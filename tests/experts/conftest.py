"""Fixtures of the experts tests: a case, experts with weekly availability, future times."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone

IMMEDIATE = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
DATABASE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

_codes = itertools.count(1)


def next_weekday(weekday: int, hour: int, minute: int = 0, weeks_ahead: int = 1) -> dt.datetime:
    """An aware local datetime on `weekday` of the first calendar week (Monday first) that
    starts at least `weeks_ahead` weeks from now.

    The same `weeks_ahead` names the same week for every weekday, whatever day today is
    (counting from today's weekday instead put next Monday and next Wednesday in different
    weeks on Tuesdays and Wednesdays).
    """
    today = timezone.localdate()
    monday = today + dt.timedelta(days=(-today.weekday()) % 7 + 7 * weeks_ahead)
    day = monday + dt.timedelta(days=weekday)
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


@pytest.fixture
def immediate_tasks(settings: Any) -> None:
    settings.TASKS = IMMEDIATE


@pytest.fixture
def make_case(db: Any) -> Callable[..., Any]:
    from anshim.cases.models import Case, Person

    def make(**extra: Any) -> Case:
        person = Person.objects.create(
            name="홍길동 (fictitious)", phone="010-0000-0000", email="victim@example.invalid",
            preferred_language=extra.pop("language", "ko"),
        )
        code = extra.pop("code", f"EX-{next(_codes):05d}")
        return Case.objects.create(code=code, person=person, channel="phone",
                                   summary="Fictitious summary SECRET-SUMMARY", **extra)

    return make


@pytest.fixture
def make_expert(make_user: Callable[..., Any]) -> Callable[..., Any]:
    from anshim.experts.models import Expert, WeeklyAvailability

    def make(
        specialties: tuple[str, ...] = ("trauma",), languages: tuple[str, ...] = ("ko",),
        regions: tuple[str, ...] = ("jongno",), capacity: int = 5, kind: str = "therapy",
        windows: tuple[tuple[int, int, int], ...] = ((0, 9, 17), (2, 9, 17)),
        username: str | None = None, email: str = "", active: bool = True,
    ) -> Expert:
        user = make_user("expert", username=username,
                         email=email or f"{username or 'x'}{Expert.objects.count()}@ex.invalid")
        expert = Expert.objects.create(
            user=user, kind=kind, specialties=list(specialties), languages=list(languages),
            regions=list(regions), weekly_capacity=capacity, active=active,
        )
        for day, start, end in windows:
            WeeklyAvailability.objects.create(
                expert=expert, weekday=day, start_time=dt.time(start), end_time=dt.time(end))
        return expert

    return make


@pytest.fixture
def counselor(make_user: Callable[..., Any]) -> Any:
    return make_user("counselor")


@pytest.fixture
def supervisor(make_user: Callable[..., Any]) -> Any:
    return make_user("supervisor")


@pytest.fixture
def assignment(make_case: Callable[..., Any], make_expert: Callable[..., Any],
               counselor: Any) -> Any:
    """An active trauma assignment of an expert available Mon and Wed 9-17."""
    from anshim.experts.models import Assignment

    case = make_case()
    expert = make_expert()
    return Assignment.objects.create(case=case, expert=expert, specialty="trauma",
                                     brief="Brief: first session at the centre.",
                                     assigned_by=counselor)


@pytest.fixture
def committed_audit(transactional_db: Any) -> Iterator[None]:
    """For tests that commit: remove the audit entries (append-only triggers suspended)
    before pytest-django flushes the tables."""
    yield
    from anshim.security.audit_triggers import suspended_triggers
    from anshim.security.models import AuditEntry, AuditHead

    with suspended_triggers():
        AuditEntry.objects.all().delete()
    AuditHead.objects.all().delete()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # Argon2 with production parameters costs ~0.3 s a user; these tests create many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


PLACE = "센터 2층 상담실 (fictitious)"


def book(*args: Any, **kwargs: Any) -> Any:
    """`services.book_appointment` with a meeting place: in person (the default mode) needs one."""
    from anshim.experts import services

    kwargs.setdefault("location", PLACE)
    return services.book_appointment(*args, **kwargs)
