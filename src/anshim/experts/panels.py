"""The experts panel of the case page (the cases app includes `experts/_case_panel.html`).

Usage in the case view: ``context.update(case_panel_context(request.user, case))``.
What each user sees follows the access policy: an expert sees only their own assignment on the
case, its brief, appointments and their own session logs; staff see all assignments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from anshim.cases.models import Case
from anshim.experts.followup import follow_up_logs
from anshim.experts.models import Appointment, AppointmentStatus, Assignment, AssignmentStatus
from anshim.experts.services import can_view_log, can_write_log
from anshim.security.policy import Action, can


@dataclass
class AppointmentRow:
    appointment: Appointment
    log: Any = None  # the SessionLog when the user may read it
    can_write_log: bool = False
    can_manage: bool = False
    show_location: bool = False


@dataclass
class AssignmentRow:
    assignment: Assignment
    show_brief: bool
    appointments: list[AppointmentRow] = field(default_factory=list)
    can_book: bool = False
    can_end: bool = False


def may_see_brief(user: Any, case: Case) -> bool:
    return can(user, Action.VIEW_ASSIGNMENT, case) or can(user, Action.ASSIGN_EXPERT, case)


def visible_assignments(user: Any, case: Case) -> list[Assignment]:
    """Assignments on `case` the user may see: an expert only their own."""
    qs = case.expert_assignments.select_related("expert__user").order_by("-created_at")
    if can(user, Action.ASSIGN_EXPERT, case) or can(user, Action.VIEW_SESSION_LOGS, case):
        return list(qs)
    if can(user, Action.VIEW_ASSIGNMENT, case):
        return list(qs.filter(expert__user=user, status=AssignmentStatus.ACTIVE))
    return []


def case_panel_context(user: Any, case: Case) -> dict[str, Any]:
    assignments = visible_assignments(user, case)
    can_assign = can(user, Action.ASSIGN_EXPERT, case)
    manage = can(user, Action.MANAGE_APPOINTMENTS, case)
    brief = may_see_brief(user, case)
    # The flag is for those who act on it (who assign experts and run the case); an expert
    # sees their own logs on the assignment page instead.
    follow_up = follow_up_logs(case) if can_assign else []
    rows = []
    for a in assignments:
        active = a.status == AssignmentStatus.ACTIVE
        row = AssignmentRow(assignment=a, show_brief=brief, can_book=manage and active,
                            can_end=can_assign and active)
        for appt in a.appointments.select_related("log").order_by("starts_at"):
            log = getattr(appt, "log", None) if hasattr(appt, "log") else None
            row.appointments.append(AppointmentRow(
                appointment=appt,
                log=log if log is not None and can_view_log(user, appt) else None,
                can_write_log=can_write_log(user, appt)
                and appt.status in (AppointmentStatus.SCHEDULED, AppointmentStatus.DONE),
                can_manage=manage and appt.status == AppointmentStatus.SCHEDULED,
                show_location=manage or a.expert.user_id == getattr(user, "pk", None),
            ))
        rows.append(row)
    return {
        "experts_panel": {
            "visible": bool(rows) or can_assign,
            "case": case,
            "follow_up": follow_up,
            "assignments": rows,
            "can_assign": can_assign,
            "assign_url": reverse("experts:assign", args=[case.code]) if can_assign else "",
        }
    }
