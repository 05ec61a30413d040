"""Who may put staff on a case (issue 16 item 10), and close/reopen in one transaction
(issue 17 item 8)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from anshim.cases import services
from anshim.cases.models import Case, TimelineEvent
from anshim.security.models import AuditEntry


def test_counselor_cannot_assign_themselves(make_case: Any, make_user: Any) -> None:
    lead = make_user("counselor")
    intruder = make_user("counselor")
    case = make_case(actor=lead)
    with pytest.raises(PermissionDenied):
        services.update_case(intruder, case, case.version, {"counselors": [intruder]})
    with pytest.raises(PermissionDenied):
        services.update_case(intruder, case, case.version, {"lead_counselor": intruder})
    case.refresh_from_db()
    assert list(case.counselors.all()) == [] and case.lead_counselor == lead
    # Sending the same staff as now is no assignment: a counselor may still save the status.
    services.update_case(lead, case, case.version,
                         {"status": case.status, "lead_counselor": lead, "counselors": []})


def test_supervisor_assignment_is_audited_with_ids(make_case: Any, make_user: Any) -> None:
    supervisor = make_user("supervisor")
    other = make_user("counselor")
    case = make_case()
    services.update_case(supervisor, case, case.version, {"counselors": [other]})
    event = TimelineEvent.objects.get(case=case, kind="case.staff_assigned")
    assert event.data == {"counselors": {"added": [other.pk], "removed": []}}
    entry = AuditEntry.objects.get(action=services.CASE_STAFF_ASSIGN)
    assert entry.case_id == case.pk and entry.actor_id == supervisor.pk and entry.reason == ""


def test_counselor_edit_form_hides_and_refuses_staff_fields(
        make_case: Any, make_user: Any, login_client: Any) -> None:
    lead = make_user("counselor")
    intruder = make_user("counselor")
    case = make_case(actor=lead)
    client = login_client(intruder)
    page = client.get(f"/staff/cases/{case.code}/").content.decode()
    assert 'name="edit-staff_fields"' not in page
    response = client.post(f"/staff/cases/{case.code}/edit/", {
        "edit-version": case.version, "edit-status": case.status, "edit-staff_fields": "1",
        "edit-lead_counselor": lead.pk, "edit-counselors": [intruder.pk],
    })
    assert response.status_code == 403
    assert not case.counselors.filter(pk=intruder.pk).exists()
    # ... so the counseling notes stay closed to them.
    from anshim.security.policy import Action, can

    assert not can(intruder, Action.VIEW_COUNSELING_NOTES, Case.objects.get(pk=case.pk))
