from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import authenticate

from anshim.experts.demo import DEMO_PASSWORD, create_demo_experts
from anshim.experts.models import Expert, WeeklyAvailability

pytestmark = pytest.mark.django_db


def test_demo_experts_are_idempotent() -> None:
    first = create_demo_experts()
    again = create_demo_experts()
    assert [e.pk for e in first] == [e.pk for e in again]
    assert Expert.objects.count() == len(first) >= 12
    assert WeeklyAvailability.objects.count() == sum(e.availability.count() for e in first)
    kinds = {e.kind for e in first}
    assert kinds == {"legal", "therapy"}
    langs = {lang for e in first for lang in e.languages}
    assert {"ko", "en", "zh", "vi", "ja"} <= langs


def test_demo_expert_can_sign_in(rf: Any) -> None:
    create_demo_experts()
    user = authenticate(rf.post("/"), username="expert", password=DEMO_PASSWORD)
    assert user is not None and user.role == "expert"
    assert user.expert_profile.specialties


def test_demo_assignment_is_idempotent(make_case: Any) -> None:
    from anshim.experts.demo import create_demo_assignment
    from anshim.experts.models import Appointment, Assignment

    create_demo_experts()
    make_case()
    create_demo_assignment()
    create_demo_assignment()
    assert Assignment.objects.filter(expert__user__username="expert").count() == 1
    assert Appointment.objects.count() == 1
