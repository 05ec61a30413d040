from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from .forms import kobo_style_form


@pytest.fixture
def officer(make_user: Any) -> Any:
    return make_user("prevention")


@pytest.fixture
def school(db: Any) -> Any:
    from anshim.prevention.models import School

    return School.objects.create(name="가람중학교", level="middle", district="가람구",
                                 students=300)


@pytest.fixture
def published(officer: Any) -> Any:
    """A published version of the Kobo-style form."""
    from anshim.prevention import services

    survey = services.create_survey(officer, title="", content=kobo_style_form(),
                                    filename="youth.xlsx")
    version = survey.versions.get()
    return services.publish_version(officer, version)


@pytest.fixture
def class_session(officer: Any, published: Any, school: Any) -> Any:
    from anshim.prevention import services

    return services.open_class_session(officer, published, school=school, grade=8,
                                       label="8-2", expected=30)


GOOD = {"consent": "yes", "age": "14", "sex": "female", "region": "seoul", "district": "mapo",
        "apps": ["kakao", "game"], "contacted": "yes", "when": "2026-05-01", "hours": "2.5",
        "story": "someone asked for photos"}


@pytest.fixture
def good_answers() -> dict[str, Any]:
    return dict(GOOD)


def later(minutes: int) -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=minutes)
