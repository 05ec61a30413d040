from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone

from anshim.cases import services
from anshim.cases.models import AgeGroup, Channel, HarmType
from anshim.cases.triage import TriageFactors


@pytest.fixture
def counselor(make_user: Callable[..., Any]) -> Any:
    return make_user("counselor")


@pytest.fixture
def supervisor(make_user: Callable[..., Any]) -> Any:
    return make_user("supervisor")


@pytest.fixture
def make_case(counselor: Any) -> Callable[..., Any]:
    """Open a case through the intake service (the only way cases are made)."""

    def make(actor: Any = None, **overrides: Any) -> Any:
        data = services.IntakeData(
            channel=overrides.pop("channel", Channel.PHONE),
            started_at=overrides.pop("started_at", timezone.now() - dt.timedelta(minutes=20)),
            duration_minutes=overrides.pop("duration_minutes", 15),
            harm_types=overrides.pop("harm_types", [HarmType.GROOMING]),
            factors=overrides.pop("factors", TriageFactors()),
            age_group=overrides.pop("age_group", AgeGroup.AGE_14_17),
            name=overrides.pop("name", "김가명"),
            summary=overrides.pop("summary", "Fictitious test summary"),
            **overrides,
        )
        return services.intake(actor or counselor, data)

    return make


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # Argon2 with production parameters costs ~0.3 s a user; these tests create many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def committed_audit(transactional_db: Any) -> Iterator[None]:
    """For tests that commit (threads, live server): remove the audit entries with the
    append-only triggers suspended, before pytest-django flushes the tables (SQLite flushes
    with DELETE, which the triggers refuse)."""
    yield
    from anshim.security.audit_triggers import suspended_triggers
    from anshim.security.models import AuditEntry, AuditHead

    with suspended_triggers():
        AuditEntry.objects.all().delete()
    AuditHead.objects.all().delete()
