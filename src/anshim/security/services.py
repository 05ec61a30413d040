"""Sign-in helpers kept out of the views: safe redirects, TOTP enrolment and checking."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

import qrcode
import qrcode.image.svg
from axes.models import AccessAttempt
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch
from django.utils import timezone
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

NEXT_SESSION_KEY = "anshim_staff_next"
DEVICE_NAME = "Anshim"


# Each role's start page after sign-in (a URL name each); the case list for anything else.
ROLE_LANDING = {
    "counselor": "cases:list",
    "erasure": "erasure:index",
    "prevention": "prevention:home",
    "expert": "experts:my",
    "supervisor": "reports:dashboard",
    "admin": "staff:accounts",
}


def default_landing(user: Any = None) -> str:
    """Where a staff member lands after sign-in: their role's start page, else the cases."""
    role_home = ROLE_LANDING.get(str(getattr(user, "role", "") or ""))
    try:
        if role_home and getattr(user, "is_authenticated", False):
            return resolve_url(role_home)
        return resolve_url(settings.LOGIN_REDIRECT_URL)
    except NoReverseMatch:  # the cases app has not registered its list view (yet)
        return "/staff/cases/"


def safe_next(request: HttpRequest, candidate: str | None) -> str:
    """`candidate` if it is a local path on this site, else the default landing page.

    Refuses other hosts, scheme-relative `//evil`, backslash tricks and non-HTTP schemes.
    """
    # The generic landing page stored before sign-in becomes the role's own start page.
    if candidate and candidate != default_landing() and candidate.startswith("/") and (
            url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )):
        return candidate
    return default_landing(getattr(request, "user", None))


def confirmed_totp_devices(user: Any) -> list[TOTPDevice]:
    return list(TOTPDevice.objects.filter(user=user, confirmed=True))


def pending_totp_device(user: Any) -> TOTPDevice:
    """The unconfirmed device being enrolled (the same secret on every visit until confirmed)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def secret_text(device: TOTPDevice) -> str:
    """The secret in base32, grouped by four for typing into an app by hand."""
    b32 = base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def qr_svg(device: TOTPDevice, label: str) -> str:
    """The enrolment QR code as an inline SVG element (no image request, no inline style)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage,
                        box_size=10, border=4)
    svg: str = image.to_string(encoding="unicode")
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" class="qr" ', 1)


def check_token(device: TOTPDevice, token: str) -> tuple[bool, bool]:
    """(verified, throttled). TOTP devices throttle repeated failures themselves."""
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return False, True
    return bool(device.verify_token(token)), False


def address_failures(address: str) -> int:
    """Failed sign-ins from `address` across every username within the cool-off window.

    Axes locks a username+address pair; this count is what a password sprayer (one password,
    many usernames) drives up.
    """
    if not address:
        return 0
    since = timezone.now() - dt.timedelta(hours=float(settings.AXES_COOLOFF_TIME))
    total = AccessAttempt.objects.filter(ip_address=address, attempt_time__gte=since).aggregate(
        n=Sum("failures_since_start"))["n"]
    return int(total or 0)


def address_locked_out(address: str) -> bool:
    return address_failures(address) >= settings.ANSHIM_LOGIN_ADDRESS_FAILURE_LIMIT


@dataclass(frozen=True)
class BackupCodeResult:
    device: StaticDevice | None  # the device whose code was used, None when refused
    throttled: bool
    remaining: int  # unused codes left on that device


def use_backup_code(user: Any, code: str) -> BackupCodeResult:
    """Spend one backup code of `user`: valid once, whoever asks first.

    django-otp's own check reads the token and deletes it in two steps, so two requests with
    the same code could both pass; here the DELETE itself decides (one row, one winner).
    Wrong codes count towards the device's throttle like wrong TOTP codes.
    """
    throttled_everywhere = True
    devices = list(StaticDevice.objects.filter(user=user, confirmed=True))
    for device in devices:
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            continue
        throttled_everywhere = False
        with transaction.atomic():
            deleted, _ = StaticToken.objects.filter(device=device, token=code).delete()
        if deleted:
            device.throttle_reset(commit=False)
            device.set_last_used_timestamp(commit=False)
            device.save()
            return BackupCodeResult(device, False, device.token_set.count())
        device.throttle_increment()
    return BackupCodeResult(None, bool(devices) and throttled_everywhere, 0)


BACKUP_CODE_COUNT = 10
BACKUP_CODE_LENGTH = 10
# No 0/o, 1/l/i: codes are read off paper and typed by hand.
BACKUP_CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
BACKUP_DEVICE_NAME = "backup"


def issue_backup_codes(user: Any) -> list[str]:
    """A fresh set of single-use backup codes for `user`, replacing every earlier set (so a
    lost printout is dealt with by issuing new ones). Shown once; django-otp keeps them."""
    import secrets

    codes = ["".join(secrets.choice(BACKUP_CODE_ALPHABET) for _ in range(BACKUP_CODE_LENGTH))
             for _ in range(BACKUP_CODE_COUNT)]
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
        StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def backup_codes_left(user: Any) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
