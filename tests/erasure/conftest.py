"""Fixtures for the bank tests: banks, a case with or without consent, benign test pictures.

The pictures are Pillow-generated noise blocks: benign, and with PDQ quality 100 so that
distances behave predictably (a brightness shift moves a few bits, another seed ~128).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone

from anshim.erasure.matcher import reset_process_matcher

from .media import picture_bytes


@pytest.fixture(autouse=True)
def fresh_process_matcher() -> Iterator[None]:
    # Each test database starts empty: the process-wide matcher must not carry state over.
    reset_process_matcher()
    yield
    reset_process_matcher()


@pytest.fixture
def picture() -> Callable[..., bytes]:
    return picture_bytes


@pytest.fixture
def bank(db: Any) -> Any:
    from anshim.erasure.services import create_bank

    return create_bank("victims")


@pytest.fixture
def make_case(db: Any) -> Callable[..., Any]:
    from anshim.cases.models import Case, Channel, Consent, ConsentGiver, ConsentScope, Person

    counter = {"n": 0}

    def make(*, consent: bool = True, age_group: str = "14to17") -> Any:
        counter["n"] += 1
        case = Case.objects.create(code=f"AN-TST{counter['n']}-XX",
                                   person=Person.objects.create(age_group=age_group),
                                   channel=Channel.PHONE)
        if consent:
            Consent.objects.create(case=case, scope=ConsentScope.REGISTER_FINGERPRINTS,
                                   given_by=ConsentGiver.VICTIM, granted_at=timezone.now())
        return case

    return make


@pytest.fixture(autouse=True)
def one_person_approval(settings: Any) -> None:
    # The four-eyes rule (on by default) has its own tests in test_notices_approval.py; the
    # other tests here exercise sending, and one specialist drafts and approves there.
    settings.ANSHIM_TAKEDOWN_SECOND_APPROVER = False
