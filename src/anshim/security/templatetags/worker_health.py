"""`{% worker_health_line %}`: on the supervisor's start page, when the task worker last ran.

Reminders, takedown notices and webhooks all go through the worker; when it stops, nothing
else on the page would show it. Shown to whoever may view the audit log (supervisors,
administrators), on the start page only (two small queries).
"""

from __future__ import annotations

from typing import Any

from django import template

from anshim.security.policy import Action, can

register = template.Library()


@register.inclusion_tag("staff/_worker_health.html", takes_context=True)
def worker_health_line(context: dict[str, Any]) -> dict[str, Any]:
    from anshim.config.worker import worker_health
    from anshim.security.services import default_landing

    request = context.get("request")
    user = getattr(request, "user", None)
    if (request is None or user is None or not user.is_authenticated
            or request.path != default_landing() or not can(user, Action.VIEW_AUDIT)):
        return {"health": None}
    return {"health": worker_health()}
