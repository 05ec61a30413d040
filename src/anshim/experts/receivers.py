"""What the experts app does when its records change (connected in apps.ready)."""

from __future__ import annotations

from typing import Any

from anshim.cases.transitions import imply
from anshim.cases.workflow import Implied


def on_assignment_saved(sender: Any, *, instance: Any, created: bool, **kwargs: Any) -> None:
    """An expert takes the case on: the case workflow moves it into support (in the same
    transaction as the assignment, by whoever assigned)."""
    if created and not kwargs.get("raw"):
        imply(instance.case_id, Implied.SUPPORT_STARTED, actor=instance.assigned_by)


def on_appointment_saved(sender: Any, *, instance: Any, created: bool, **kwargs: Any) -> None:
    """A first appointment is support under way too."""
    if created and not kwargs.get("raw"):
        imply(instance.assignment.case_id, Implied.SUPPORT_STARTED)
