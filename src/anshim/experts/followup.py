"""The expert's "follow-up needed" flag, as the counselor sees it on the case page and list.

A case needs follow-up while the latest session log of one of its active assignments asks for
it: the expert's next log without the flag (or the end of the assignment) clears it. Only the
flag travels, never the log's text: the counselor sees that the expert wants them to act, and
reads the log where the policy lets them.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from anshim.experts.models import AssignmentStatus, SessionLog


def _flagged_latest_logs() -> QuerySet[SessionLog]:
    later = SessionLog.objects.filter(
        appointment__assignment=OuterRef("appointment__assignment"),
        appointment__starts_at__gt=OuterRef("appointment__starts_at"))
    return SessionLog.objects.filter(
        follow_up_needed=True, appointment__assignment__status=AssignmentStatus.ACTIVE,
    ).exclude(Exists(later))


def follow_up_needed() -> Exists:
    """An expression for a Case queryset: `cases.annotate(follow_up=follow_up_needed())`
    (one subquery in the list's own query: no query per row)."""
    return Exists(_flagged_latest_logs().filter(appointment__assignment__case=OuterRef("pk")))


def follow_up_logs(case: Any) -> list[SessionLog]:
    """The logs that keep the flag up on `case`, newest first (for the case page)."""
    return list(_flagged_latest_logs().filter(appointment__assignment__case=case)
                .select_related("appointment__assignment__expert__user")
                .order_by("-appointment__starts_at"))
