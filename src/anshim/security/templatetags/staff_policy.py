"""`{{ user|can:"view_case_list" }}`: show only the controls the access policy allows."""

from __future__ import annotations

from typing import Any

from django import template

from anshim.security.policy import Action
from anshim.security.policy import can as policy_can

register = template.Library()


@register.filter(name="can")
def can(user: Any, action: str) -> bool:
    """Templates name actions by their value; a typo is a bug, so it raises."""
    return policy_can(user, Action(action))


@register.filter(name="fully_signed_in")
def fully_signed_in(request: Any) -> bool:
    """Signed in with both factors (navigation is hidden half-way through sign-in)."""
    from anshim.security.decorators import is_fully_authenticated

    return request is not None and is_fully_authenticated(request)
