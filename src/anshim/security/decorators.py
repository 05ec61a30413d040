"""View guards: signed in, second factor confirmed, and (optionally) a policy action."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from anshim.security.policy import Action, require


def _is_verified(user: Any) -> bool:
    # OTPMiddleware adds is_verified; a user object fresh from login() in the same request
    # does not have it yet.
    check = getattr(user, "is_verified", None)
    return bool(check()) if callable(check) else False


def is_fully_authenticated(request: HttpRequest) -> bool:
    user = request.user
    if not user.is_authenticated or not user.is_active:
        return False
    if settings.ANSHIM_REQUIRE_OTP and not _is_verified(user):
        return False
    return True


def staff_required(
    action: Action | None = None,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Require a signed-in staff member with a confirmed TOTP code, and `action` if given.

    Case-specific checks happen in the view once the case is loaded (`require(user, action, case)`).
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if settings.ANSHIM_REQUIRE_OTP and not _is_verified(user):
                return redirect("staff:otp")
            if action is not None:
                require(user, action)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
