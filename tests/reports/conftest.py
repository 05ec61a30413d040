"""A hand-computed fixture for the report figures (year 2025, Asia/Seoul)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest

SEOUL = ZoneInfo("Asia/Seoul")
YEAR = 2025


def at(month: int, day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(YEAR, month, day, hour, tzinfo=SEOUL)


@dataclass
class World:
    cases: list[Any]
    platforms: dict[str, Any]


@pytest.fixture
def world(db: Any) -> World:
    """Three victims in 2025 (two under 14, one 14-17) and one in 2024 (left out); harms
    distribution x2, sextortion x1, grooming x1; four removals in 2025 (social/overseas x3,
    webhard/domestic x1) and notices to removal of 10 h, 30 h, 100 h (social) and 5 h
    (webhard). 2025's victims: female x2 (Seoul, Gyeonggi), male x1 (Seoul); offenders met
    online x2, family x1; one of the four removed items also leaked personal information."""
    from anshim.cases.models import Case, CaseHarm, Person
    from anshim.erasure.models import Platform, Sighting, TakedownItem, TakedownRequest

    social = Platform.objects.create(name="Social", domains="social.invalid", kind="social",
                                     jurisdiction="overseas", channel="email")
    webhard = Platform.objects.create(name="Webhard", domains="webhard.invalid", kind="webhard",
                                      jurisdiction="domestic", channel="partner_api")
    specs = [("under14", ["distribution", "sextortion"], at(2, 1), "female", "seoul", "online"),
             ("under14", ["distribution"], at(5, 1), "female", "gyeonggi", "online"),
             ("14to17", ["grooming"], at(9, 1), "male", "seoul", "family"),
             ("14to17", ["grooming"], dt.datetime(2024, 12, 31, 12, tzinfo=SEOUL), "male",
              "busan", "stranger")]
    cases = []
    for i, (age, harms, opened, sex, region, relationship) in enumerate(specs):
        person = Person.objects.create(age_group=age, sex=sex, region=region)
        case = Case.objects.create(code=f"T-{i}", person=person, channel="phone",
                                   offender_relationship=relationship)
        Case.objects.filter(pk=case.pk).update(created_at=opened)
        case.refresh_from_db()
        for harm in harms:
            CaseHarm.objects.create(case=case, harm_type=harm)
        cases.append(case)
    removals = [(cases[0], social, 10), (cases[0], social, 30), (cases[1], social, 100),
                (cases[2], webhard, 5)]
    for n, (case, platform, hours) in enumerate(removals):
        seen = case.created_at + dt.timedelta(hours=2)
        sent = seen + dt.timedelta(hours=1)
        removed = sent + dt.timedelta(hours=hours)
        sighting = Sighting.objects.create(
            page_url=f"https://x.invalid/{n}", media_url=f"https://x.invalid/m{n}",
            platform=platform, entry_id=0, bank_name="b", case=case, match_kind="pdq",
            distance=3, status="removed", first_seen=seen, last_seen=seen, removed_at=removed,
            leaks_personal_info=n == 1)
        request = TakedownRequest.objects.create(
            case=case, platform=platform, subject="s", body="b", state="removed",
            sent_at=sent, closed_at=removed)
        TakedownItem.objects.create(request=request, sighting=sighting)
    return World(cases, {"social": social, "webhard": webhard})
