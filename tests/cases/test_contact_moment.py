"""A contact's time is checked before it is written: with a far-off year or offset PostgreSQL
refused the row (a 500 the API fuzzer found); now a ValidationError, and UTC when stored."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from anshim.cases.services import contact_moment


@pytest.mark.parametrize("value", [
    dt.datetime(1999, 12, 31, 23, 0, tzinfo=dt.UTC),
    dt.datetime(2000, 1, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=16))),
    dt.datetime(233, 9, 28, 9, 8, tzinfo=dt.timezone(dt.timedelta(hours=-17, minutes=-8))),
    timezone.now() + dt.timedelta(days=3),
])
def test_far_off_moments_are_refused(value: dt.datetime) -> None:
    with pytest.raises(ValidationError) as exc:
        contact_moment(value)
    assert "started_at" in exc.value.message_dict


def test_a_moment_is_stored_as_utc() -> None:
    seoul = dt.timezone(dt.timedelta(hours=9))
    got = contact_moment(dt.datetime(2025, 3, 1, 0, 30, tzinfo=seoul))
    assert got == dt.datetime(2025, 2, 28, 15, 30, tzinfo=dt.UTC) and got.tzinfo == dt.UTC
