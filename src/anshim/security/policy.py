"""The access policy: the one place that decides who may see and do what.

Views, API operations and commands ask `can()` / `require()` or use `visible_cases()`; they
never test roles themselves. Need-to-know rules (from the centre's data protection rules):

- Counselors work the hotline: they create cases and see every case's file (triage must see
  history), but counseling notes and experts' session logs only on cases they are assigned to.
- Erasure specialists see fingerprints, sightings and takedowns, and the case header needed to
  act (code, status, risk, consent) — never personal data or counseling notes.
- Prevention officers run school programmes and surveys; they see no case data at all.
  Nobody sees an individual survey response in the UI: pages show aggregates, and exports
  (officers, supervisors) are audited. Counselors see only the help requests surveys create.
- External experts see only cases they hold an active assignment on, and only the assignment
  brief, their appointments and their own session logs.
- Supervisors see everything and may override triage and manage staff and experts.
- Admins configure the system (Django admin); they do not read case files.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from anshim.security.roles import Role

if TYPE_CHECKING:
    from anshim.cases.models import Case


class Action(StrEnum):
    VIEW_CASE_LIST = "view_case_list"
    CREATE_CASE = "create_case"  # hotline intake
    VIEW_CASE = "view_case"  # case header: code, status, risk, harm types, consent state
    EDIT_CASE = "edit_case"
    VIEW_PERSONAL_DATA = "view_personal_data"  # names, contact details, summary, contacts log
    VIEW_COUNSELING_NOTES = "view_counseling_notes"
    ADD_NOTE = "add_note"
    TRIAGE = "triage"
    OVERRIDE_TRIAGE = "override_triage"
    MANAGE_CONSENT = "manage_consent"
    MANAGE_REFERRALS = "manage_referrals"
    ASSIGN_EXPERT = "assign_expert"
    # Who works a case (lead counselor, counselors, erasure specialists): need-to-know follows
    # the assignment, so only supervisors decide it.
    ASSIGN_COUNSELORS = "assign_counselors"
    VIEW_PORTAL_MESSAGES = "view_portal_messages"  # the victim's messages through the portal
    VIEW_PORTAL_INBOX = "view_portal_inbox"  # the inbox of those messages (cases: see below)
    REPLY_PORTAL_MESSAGES = "reply_portal_messages"
    # A new portal passphrase for the victim (lost, or someone else may know it).
    ISSUE_PORTAL_PASSPHRASE = "issue_portal_passphrase"  # noqa: S105 - an action name
    VIEW_ASSIGNMENT = "view_assignment"  # the expert's brief
    MANAGE_APPOINTMENTS = "manage_appointments"
    WRITE_SESSION_LOG = "write_session_log"
    VIEW_SESSION_LOGS = "view_session_logs"
    VIEW_TIMELINE = "view_timeline"
    VIEW_FINGERPRINTS = "view_fingerprints"
    MANAGE_ERASURE = "manage_erasure"  # banks, sightings, takedowns
    CONFIGURE_ERASURE = "configure_erasure"  # platforms and monitored sources (staff pages)
    # Fingerprints of a hotline victim's images, computed in the browser on the center's device.
    REGISTER_ON_DEVICE = "register_on_device"
    MANAGE_EXPERTS = "manage_experts"  # the expert registry
    VIEW_EXPERTS = "view_experts"
    VIEW_AUDIT = "view_audit"
    ADMIN_CONFIG = "admin_config"
    # Staff accounts: proposing role changes and recoveries; approving them needs a second
    # person with APPROVE_ACCOUNT_CHANGES (anshim.security.accounts: never one's own).
    MANAGE_ACCOUNTS = "manage_accounts"
    APPROVE_ACCOUNT_CHANGES = "approve_account_changes"
    # Prevention: schools, programmes, sessions, tests, surveys (aggregates only in the UI).
    VIEW_PREVENTION = "view_prevention"
    MANAGE_PREVENTION = "manage_prevention"
    EXPORT_SURVEY_DATA = "export_survey_data"  # researcher exports of answer sheets, audited
    VIEW_HELP_REQUESTS = "view_help_requests"  # "contact me" cards from surveys
    VIEW_DASHBOARDS = "view_dashboards"  # the supervisor dashboard and the internal reports
    # The case workflow (anshim.cases.workflow): moving a case along it, asking for closure
    # and reopening; closing itself is a supervisor's approval of that request.
    MOVE_CASE_STATUS = "move_case_status"
    APPROVE_CASE_CLOSURE = "approve_case_closure"


# Actions a role may take on any case (or without a case).
_GLOBAL: dict[Role, frozenset[Action]] = {
    Role.COUNSELOR: frozenset(
        {
            Action.VIEW_CASE_LIST, Action.CREATE_CASE, Action.VIEW_CASE, Action.EDIT_CASE,
            Action.VIEW_PERSONAL_DATA, Action.ADD_NOTE, Action.TRIAGE, Action.MANAGE_CONSENT,
            Action.MANAGE_REFERRALS, Action.ASSIGN_EXPERT, Action.MANAGE_APPOINTMENTS,
            Action.VIEW_TIMELINE, Action.VIEW_EXPERTS, Action.VIEW_HELP_REQUESTS,
            Action.VIEW_PORTAL_INBOX, Action.REGISTER_ON_DEVICE, Action.MOVE_CASE_STATUS,
        }
    ),
    Role.ERASURE: frozenset(
        {
            Action.VIEW_CASE_LIST, Action.VIEW_CASE, Action.VIEW_TIMELINE,
            Action.VIEW_FINGERPRINTS, Action.MANAGE_ERASURE, Action.CONFIGURE_ERASURE,
            Action.REGISTER_ON_DEVICE,
        }
    ),
    Role.PREVENTION: frozenset(
        {Action.VIEW_PREVENTION, Action.MANAGE_PREVENTION, Action.EXPORT_SURVEY_DATA}
    ),
    Role.EXPERT: frozenset(),
    # Supervisors see the prevention team's work; the team itself manages it.
    Role.SUPERVISOR: frozenset(set(Action) - {Action.ADMIN_CONFIG, Action.WRITE_SESSION_LOG,
                                              Action.MANAGE_PREVENTION}),
    Role.ADMIN: frozenset({Action.ADMIN_CONFIG, Action.VIEW_AUDIT, Action.MANAGE_EXPERTS,
                           Action.VIEW_EXPERTS, Action.MANAGE_ACCOUNTS}),
}

# Counselors see counseling notes, the experts' session logs and the victim's portal messages
# only on cases they are assigned to.
_ASSIGNED_COUNSELOR_ONLY = frozenset({
    Action.VIEW_COUNSELING_NOTES, Action.VIEW_SESSION_LOGS, Action.VIEW_PORTAL_MESSAGES,
    Action.REPLY_PORTAL_MESSAGES, Action.ISSUE_PORTAL_PASSPHRASE,
})
# What an expert may do on a case they hold an active assignment on.
_EXPERT_ON_ASSIGNED_CASE = frozenset(
    {Action.VIEW_CASE, Action.VIEW_ASSIGNMENT, Action.MANAGE_APPOINTMENTS,
     Action.WRITE_SESSION_LOG}
)
_EXPERT_GLOBAL = frozenset({Action.VIEW_CASE_LIST})


def role_of(user: Any) -> Role | None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    try:
        return Role(user.role)
    except ValueError:
        return None


def can(user: Any, action: Action, case: Case | None = None) -> bool:
    """May `user` take `action` (on `case`, when the action concerns one)?"""
    role = role_of(user)
    if role is None:
        return False
    if action in _GLOBAL[role]:
        return True
    if role is Role.COUNSELOR and action in _ASSIGNED_COUNSELOR_ONLY:
        return case is not None and is_assigned_counselor(user, case)
    if role is Role.EXPERT:
        if action in _EXPERT_GLOBAL:
            return True
        if action in _EXPERT_ON_ASSIGNED_CASE:
            return case is not None and has_active_assignment(user, case)
    return False


class Refused(PermissionDenied):
    """A refusal by the policy: which action, on which case (the refusal is audited from
    these by `anshim.security.refusals`)."""

    def __init__(self, action: Action, case: Case | None = None) -> None:
        super().__init__(f"Not permitted: {action.value}")
        self.action = action
        self.case = case


def require(user: Any, action: Action, case: Case | None = None) -> None:
    """Raise PermissionDenied (a 403, never a 500) unless `can()`."""
    if not can(user, action, case):
        raise Refused(action, case)


def is_assigned_counselor(user: Any, case: Case) -> bool:
    return case.lead_counselor_id == user.pk or case.counselors.filter(pk=user.pk).exists()


def has_active_assignment(user: Any, case: Case) -> bool:
    from anshim.experts.models import Assignment, AssignmentStatus

    return Assignment.objects.filter(
        case=case, expert__user=user, status=AssignmentStatus.ACTIVE
    ).exists()


def visible_cases(user: Any) -> QuerySet[Case]:
    """The cases that appear in `user`'s case list."""
    from anshim.cases.models import Case

    role = role_of(user)
    if role is None or not can(user, Action.VIEW_CASE_LIST):
        return Case.objects.none()
    if role is Role.EXPERT:
        return Case.objects.filter(
            Q(expert_assignments__expert__user=user) & Q(expert_assignments__status="active")
        ).distinct()
    return Case.objects.all()


def portal_inbox_cases(user: Any) -> QuerySet[Case]:
    """The cases whose portal messages reach `user`'s inbox: a counselor's own cases (lead or
    assigned), every case for a supervisor; none for anyone else."""
    from anshim.cases.models import Case

    role = role_of(user)
    if role is None or not can(user, Action.VIEW_PORTAL_INBOX):
        return Case.objects.none()
    if role is Role.COUNSELOR:
        return Case.objects.filter(Q(lead_counselor=user) | Q(counselors=user)).distinct()
    return Case.objects.all() if can(user, Action.VIEW_PORTAL_MESSAGES) else Case.objects.none()


def allowed_actions(user: Any, case: Case | None = None) -> frozenset[Action]:
    """Everything `user` may do (on `case`): templates use it to show only usable controls."""
    return frozenset(a for a in Action if can(user, a, case))
