"""The access policy (`anshim.security.policy`): need-to-know per role."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from anshim.security.policy import (
    Action,
    allowed_actions,
    can,
    require,
    visible_cases,
)

pytestmark = pytest.mark.django_db

PERSONAL = {Action.VIEW_PERSONAL_DATA, Action.VIEW_COUNSELING_NOTES, Action.ADD_NOTE}


@pytest.fixture
def case() -> Any:
    from anshim.cases.models import Case, Channel, Person

    return Case.objects.create(code="AS-POL-1", person=Person.objects.create(),
                               channel=Channel.PHONE)


@pytest.fixture
def other_case() -> Any:
    from anshim.cases.models import Case, Channel, Person

    return Case.objects.create(code="AS-POL-2", person=Person.objects.create(),
                               channel=Channel.WEB)


def _expert(make_user: Any) -> Any:
    from anshim.experts.models import Expert, ExpertKind

    user = make_user("expert")
    Expert.objects.create(user=user, kind=ExpertKind.LEGAL)
    return user


def _assign(user: Any, case: Any, status: str = "active") -> Any:
    from anshim.experts.models import Assignment, Specialty

    return Assignment.objects.create(case=case, expert=user.expert_profile,
                                     specialty=Specialty.CRIMINAL_COMPLAINT, status=status)


# --- Counselors ----------------------------------------------------------------------------------


def test_counselor_sees_every_case_file_but_notes_only_when_assigned(
    make_user: Any, case: Any
) -> None:
    counselor = make_user("counselor")
    assert can(counselor, Action.VIEW_CASE, case)
    assert can(counselor, Action.VIEW_PERSONAL_DATA, case)
    assert can(counselor, Action.CREATE_CASE)
    assert not can(counselor, Action.VIEW_COUNSELING_NOTES, case)
    assert not can(counselor, Action.VIEW_COUNSELING_NOTES)  # no case, no notes
    assert not can(counselor, Action.OVERRIDE_TRIAGE, case)
    assert not can(counselor, Action.ADMIN_CONFIG)
    assert not can(counselor, Action.VIEW_AUDIT)


def test_lead_counselor_sees_notes(make_user: Any, case: Any, other_case: Any) -> None:
    counselor = make_user("counselor")
    case.lead_counselor = counselor
    case.save()
    assert can(counselor, Action.VIEW_COUNSELING_NOTES, case)
    assert not can(counselor, Action.VIEW_COUNSELING_NOTES, other_case)


def test_assigned_counselor_sees_notes(make_user: Any, case: Any) -> None:
    counselor = make_user("counselor")
    case.counselors.add(counselor)
    assert can(counselor, Action.VIEW_COUNSELING_NOTES, case)
    assert Action.VIEW_COUNSELING_NOTES in allowed_actions(counselor, case)


def test_counselor_cannot_write_expert_session_logs(make_user: Any, case: Any) -> None:
    assert not can(make_user("counselor"), Action.WRITE_SESSION_LOG, case)


# --- Erasure specialists -------------------------------------------------------------------------


def test_erasure_sees_no_personal_data(make_user: Any, case: Any) -> None:
    erasure = make_user("erasure")
    case.erasure_specialists.add(erasure)
    assert can(erasure, Action.VIEW_CASE, case)
    assert can(erasure, Action.VIEW_FINGERPRINTS, case)
    assert can(erasure, Action.MANAGE_ERASURE, case)
    for action in PERSONAL | {Action.VIEW_SESSION_LOGS, Action.VIEW_ASSIGNMENT,
                              Action.EDIT_CASE, Action.MANAGE_CONSENT}:
        assert not can(erasure, action, case), action


# --- Prevention officers -------------------------------------------------------------------------


def test_prevention_sees_no_case_data(make_user: Any, case: Any) -> None:
    prevention = make_user("prevention")
    # The prevention team's own work, and nothing of any case.
    own = frozenset({Action.VIEW_PREVENTION, Action.MANAGE_PREVENTION, Action.EXPORT_SURVEY_DATA})
    assert allowed_actions(prevention, case) == own
    assert allowed_actions(prevention) == own
    assert not visible_cases(prevention).exists()
    with pytest.raises(PermissionDenied):
        require(prevention, Action.VIEW_CASE_LIST)


# --- External experts ----------------------------------------------------------------------------


def test_expert_needs_an_active_assignment(make_user: Any, case: Any, other_case: Any) -> None:
    expert = _expert(make_user)
    assert not can(expert, Action.VIEW_CASE, case)
    assert not visible_cases(expert).exists()
    assignment = _assign(expert, case)
    assert can(expert, Action.VIEW_CASE, case)
    assert can(expert, Action.VIEW_ASSIGNMENT, case)
    assert can(expert, Action.WRITE_SESSION_LOG, case)
    assert can(expert, Action.MANAGE_APPOINTMENTS, case)
    assert not can(expert, Action.VIEW_CASE, other_case)
    assert list(visible_cases(expert)) == [case]
    for action in PERSONAL | {Action.VIEW_TIMELINE, Action.EDIT_CASE, Action.VIEW_FINGERPRINTS,
                              Action.VIEW_SESSION_LOGS}:
        assert not can(expert, action, case), action
    assignment.status = "ended"
    assignment.save()
    assert not can(expert, Action.VIEW_CASE, case)
    assert not visible_cases(expert).exists()


def test_expert_case_actions_need_a_case(make_user: Any) -> None:
    expert = _expert(make_user)
    assert not can(expert, Action.VIEW_CASE)
    assert not can(expert, Action.WRITE_SESSION_LOG)


def test_expert_assignment_of_someone_else_does_not_count(make_user: Any, case: Any) -> None:
    mine, theirs = _expert(make_user), _expert(make_user)
    _assign(theirs, case)
    assert not can(mine, Action.VIEW_CASE, case)


def test_visible_cases_has_no_duplicates(make_user: Any, case: Any) -> None:
    from anshim.experts.models import Assignment, Specialty

    expert = _expert(make_user)
    _assign(expert, case)
    Assignment.objects.create(case=case, expert=expert.expert_profile,
                              specialty=Specialty.CIVIL_DAMAGES)
    assert list(visible_cases(expert)) == [case]


# --- Supervisors and admins ----------------------------------------------------------------------


def test_supervisor_sees_everything_but_configuration(make_user: Any, case: Any) -> None:
    supervisor = make_user("supervisor")
    actions = allowed_actions(supervisor, case)
    assert Action.ADMIN_CONFIG not in actions
    assert Action.WRITE_SESSION_LOG not in actions  # session logs are the expert's own
    # Supervisors see the prevention team's work; the team itself manages it.
    assert Action.MANAGE_PREVENTION not in actions
    assert actions == frozenset(Action) - {Action.ADMIN_CONFIG, Action.WRITE_SESSION_LOG,
                                           Action.MANAGE_PREVENTION}
    assert set(visible_cases(supervisor)) == {case}


def test_admin_configures_but_reads_no_case_files(make_user: Any, case: Any) -> None:
    admin = make_user("admin")
    assert can(admin, Action.ADMIN_CONFIG)
    assert can(admin, Action.VIEW_AUDIT)
    for action in PERSONAL | {Action.VIEW_CASE, Action.VIEW_CASE_LIST, Action.VIEW_TIMELINE,
                              Action.VIEW_FINGERPRINTS, Action.VIEW_SESSION_LOGS}:
        assert not can(admin, action, case), action
    assert not visible_cases(admin).exists()


# --- Everyone else -------------------------------------------------------------------------------


def test_anonymous_inactive_and_roleless_users_get_nothing(make_user: Any, case: Any) -> None:
    from django.contrib.auth.models import AnonymousUser

    inactive = make_user("supervisor", is_active=False)
    roleless = make_user("")
    odd = make_user("janitor")
    for user in (None, AnonymousUser(), inactive, roleless, odd):
        assert allowed_actions(user, case) == frozenset()
        assert not visible_cases(user).exists()


def test_require_raises_permission_denied(make_user: Any, case: Any) -> None:
    require(make_user("counselor"), Action.VIEW_CASE, case)
    with pytest.raises(PermissionDenied, match="view_counseling_notes"):
        require(make_user("counselor"), Action.VIEW_COUNSELING_NOTES, case)


@pytest.mark.parametrize("role", ["counselor", "erasure", "prevention", "expert", "supervisor",
                                  "admin"])
def test_only_admin_may_configure(make_user: Any, role: str) -> None:
    assert can(make_user(role), Action.ADMIN_CONFIG) is (role == "admin")


def test_session_logs_need_an_assigned_counselor(make_user: Any) -> None:
    from anshim.cases.models import Case, Person

    case = Case.objects.create(code="AN-TEST-SL", person=Person.objects.create(), channel="phone")
    lead = make_user("counselor")
    other = make_user("counselor")
    case.lead_counselor = lead
    case.save()
    assert can(lead, Action.VIEW_SESSION_LOGS, case)
    assert not can(other, Action.VIEW_SESSION_LOGS, case)
    assert not can(other, Action.VIEW_SESSION_LOGS)
