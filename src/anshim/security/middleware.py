"""Security headers for every response, and the client address the audit log records."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

# No third-party resources anywhere: scripts, styles, images, workers only from our origin.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        # HSTS is sent even over plain HTTP in development; browsers ignore it there.
        response.headers.setdefault(
            "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
        )
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"
        )
        is_html = response.get("Content-Type", "").startswith("text/html")
        if request.path.startswith(("/staff/", "/api/")) or is_html:
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _trusted_hop(remote: str) -> bool:
    """Is the peer that connected to us one of the configured proxies (any peer when no list)?"""
    networks = settings.ANSHIM_TRUSTED_PROXY_NETWORKS
    if not networks:
        return True
    try:
        peer = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(n, strict=False) for n in networks)


def client_address(request: HttpRequest) -> str:
    """The address of the client, as the nearest trusted proxy saw it.

    Behind `ANSHIM_TRUSTED_PROXIES = N` reverse proxies, each proxy appends the address it was
    connected from to X-Forwarded-For, so the N-th entry from the right is the last address no
    client could forge; everything to its left is whatever the client sent. Without trusted
    proxies (or when the header has fewer hops than proxies, i.e. the request did not come
    through them) the peer address of the connection is the client.
    """
    remote = str(request.META.get("REMOTE_ADDR", ""))
    count: int = settings.ANSHIM_TRUSTED_PROXIES
    if count <= 0 or not _trusted_hop(remote):
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [h for h in hops if h]
    if len(hops) < count:
        return remote
    candidate = hops[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:  # not an address: a broken or hostile header, never worth recording
        return remote


class ClientAddressMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.client_address = client_address(request)  # type: ignore[attr-defined]
        return self.get_response(request)


class SameOriginNullOriginMiddleware:
    """Let same-origin form posts through Django's CSRF origin check under no-referrer.

    With `Referrer-Policy: no-referrer` (which the victim portal must send) Chromium posts forms
    with `Origin: null`, which Django's CsrfViewMiddleware refuses. Fetch Metadata tells us what
    the browser itself knows: when `Sec-Fetch-Site` (a header scripts cannot set) says
    `same-origin`, the null origin is dropped so that the CSRF *token* check decides. Cross-site
    requests keep their `null` origin and are refused as before.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.META.get("HTTP_ORIGIN") == "null"
            and request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin"
        ):
            del request.META["HTTP_ORIGIN"]
        return self.get_response(request)
