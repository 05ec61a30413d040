"""Staff sign-in: password (Argon2, throttled by django-axes), then a TOTP code.

Thin views: the checks live in `forms` and `services`; every outcome is audited.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import auth, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from anshim.security import audit, services
from anshim.security.decorators import staff_required
from anshim.security.forms import LoginForm, SignInTokenForm, TokenForm


def _is_verified(request: HttpRequest) -> bool:
    # Right after auth.login() request.user is the bare user, not OTPMiddleware's wrapper.
    is_verified = getattr(request.user, "is_verified", None)
    return bool(request.user.is_authenticated and is_verified is not None and is_verified())


def _after_password(request: HttpRequest) -> HttpResponse:
    if not settings.ANSHIM_REQUIRE_OTP or _is_verified(request):
        return redirect(services.safe_next(request, request.session.pop(
            services.NEXT_SESSION_KEY, None)))
    if services.confirmed_totp_devices(request.user):
        return redirect("staff:otp")
    return redirect("staff:otp_setup")


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = services.safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.user.is_authenticated:
        request.session[services.NEXT_SESSION_KEY] = next_url
        return _after_password(request)
    form = LoginForm(request, data=request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            user = form.user
            auth.login(request, user)
            request.session[services.NEXT_SESSION_KEY] = next_url  # after login(): key cycled
            audit.record(actor=user, action="auth.login", request=request,
                         reason="password accepted")
            return _after_password(request)
        typed = str(form.data.get("username", ""))[:150]
        if getattr(request, "axes_locked_out", False):
            # AxesMiddleware turns this response into the "locked out" page.
            audit.record(actor=None, action="auth.lockout", request=request,
                         actor_username=typed,
                         reason="scope=address" if form.address_locked_out else "scope=account")
        else:
            audit.record(actor=None, action="auth.login_failed", request=request,
                         actor_username=typed, reason="wrong username or password")
    return render(request, "staff/login.html", {"form": form, "next": next_url})


def _require_password_step(request: HttpRequest) -> HttpResponse | None:
    if not request.user.is_authenticated:
        return redirect("staff:login")
    if _is_verified(request):
        return _after_password(request)
    return None


@sensitive_post_parameters("token", "backup_code")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def otp_view(request: HttpRequest) -> HttpResponse:
    if (early := _require_password_step(request)) is not None:
        return early
    devices = services.confirmed_totp_devices(request.user)
    if not devices:
        return redirect("staff:otp_setup")
    form = SignInTokenForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid() and form.cleaned_data["backup_code"]:
        return _sign_in_with_backup_code(request, form)
    if request.method == "POST" and form.is_valid():
        throttled_everywhere = True
        for device in devices:
            verified, throttled = services.check_token(device, form.cleaned_data["token"])
            throttled_everywhere &= throttled
            if verified:
                otp_login(request, device)
                audit.record(actor=request.user, action="auth.otp", request=request,
                             reason="second factor confirmed")
                return _after_password(request)
        if throttled_everywhere:
            form.add_error("token", _("Too many wrong codes. Wait a minute, then try again."))
        else:
            form.add_error("token", _("The code is wrong or has expired. Enter the current code."))
        audit.record(actor=request.user, action="auth.otp_failed", request=request,
                     reason="throttled" if throttled_everywhere else "wrong code")
    return render(request, "staff/otp.html", {"form": form})


def _sign_in_with_backup_code(request: HttpRequest, form: SignInTokenForm) -> HttpResponse:
    result = services.use_backup_code(request.user, form.cleaned_data["backup_code"])
    if result.device is not None:
        otp_login(request, result.device)
        audit.record(actor=request.user, action="auth.otp_backup", target=result.device,
                     request=request, reason=f"remaining={result.remaining}")
        messages.warning(request, ngettext(
            "You signed in with a backup code. It cannot be used again: %(count)d code left.",
            "You signed in with a backup code. It cannot be used again: %(count)d codes left.",
            result.remaining) % {"count": result.remaining})
        return _after_password(request)
    form.add_error("backup_code", _("Too many wrong codes. Wait a minute, then try again.")
                   if result.throttled else
                   _("This backup code is wrong or has already been used."))
    audit.record(actor=request.user, action="auth.otp_backup_failed", request=request,
                 reason="throttled" if result.throttled else "wrong code")
    return render(request, "staff/otp.html", {"form": form})


@sensitive_post_parameters("token")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def otp_setup_view(request: HttpRequest) -> HttpResponse:
    if (early := _require_password_step(request)) is not None:
        return early
    if services.confirmed_totp_devices(request.user):
        return redirect("staff:otp")  # enrol once; a supervisor resets a lost device
    device = services.pending_totp_device(request.user)
    form = TokenForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        verified, throttled = services.check_token(device, form.cleaned_data["token"])
        if verified:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            audit.record(actor=request.user, action="auth.otp_enrolled", target=device,
                         request=request, reason="authenticator app set up")
            # Backup codes come with the authenticator: the way in when the phone is not.
            return _show_new_backup_codes(request, services.safe_next(
                request, request.session.pop(services.NEXT_SESSION_KEY, None)))
        form.add_error("token", _("Too many wrong codes. Wait a minute, then try again.")
                       if throttled else
                       _("The code is wrong or has expired. Enter the current code."))
    context = {
        "form": form,
        # Generated here from our own data, never from user input: safe to inline.
        "qr_svg": mark_safe(services.qr_svg(device, _("QR code for your authenticator app"))),  # noqa: S308
        "secret": services.secret_text(device),
    }
    return render(request, "staff/otp_setup.html", context)


def _show_new_backup_codes(request: HttpRequest, continue_url: str) -> HttpResponse:
    codes = services.issue_backup_codes(request.user)
    audit.record(actor=request.user, action="auth.backup_codes_issued", request=request,
                 reason=f"count={len(codes)}")
    return render(request, "staff/backup_codes.html",
                  {"codes": codes, "continue_url": continue_url})


@staff_required()
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def backup_codes_view(request: HttpRequest) -> HttpResponse:
    """How many backup codes are left; a new set on request (the old ones stop working)."""
    if request.method == "POST":
        return _show_new_backup_codes(request, services.default_landing())
    return render(request, "staff/backup_codes.html",
                  {"left": services.backup_codes_left(request.user)})


@require_POST
@csrf_protect
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        audit.record(actor=request.user, action="auth.logout", request=request)
    auth.logout(request)
    return redirect("staff:login")


@staff_required()
def home_view(request: HttpRequest) -> HttpResponse:
    return redirect(services.default_landing(request.user))
