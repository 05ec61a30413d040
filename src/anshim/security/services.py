"""Sign-in helpers kept out of the views: safe redirects, TOTP enrolment and checking."""

from __future__ import annotations

import base64
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp.plugins.otp_totp.models import TOTPDevice

NEXT_SESSION_KEY = "anshim_staff_next"
DEVICE_NAME = "Anshim"


def default_landing() -> str:
    try:
        return resolve_url(settings.LOGIN_REDIRECT_URL)
    except NoReverseMatch:  # the cases app has not registered its list view (yet)
        return "/staff/cases/"


def safe_next(request: HttpRequest, candidate: str | None) -> str:
    """`candidate` if it is a local path on this site, else the default landing page.

    Refuses other hosts, scheme-relative `//evil`, backslash tricks and non-HTTP schemes.
    """
    if candidate and candidate.startswith("/") and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default_landing()


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
