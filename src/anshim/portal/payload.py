"""Reading the fingerprints a page computed on the device: JSON only, never media.

The victim portal and the staff page for registering on the center's device both post the same
JSON; this is the one place that decides what such a request may carry.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _

from anshim.portal.services import MAX_REGISTRATION_BYTES

__all__ = ["json_error", "read_fingerprint_json"]


def json_error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": code, "message": message}, status=status)


def read_fingerprint_json(request: HttpRequest) -> Any | JsonResponse:
    """The parsed body, or the 4xx answer to send instead (too large, not JSON, malformed)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = MAX_REGISTRATION_BYTES + 1
    if length > MAX_REGISTRATION_BYTES:
        return json_error("too_large", _("Too many items at once."), 413)
    if request.content_type != "application/json":
        # Media is never accepted: only the JSON of fingerprints computed on the device. (A
        # multipart body has already been parsed for the CSRF check, so reading it here would
        # raise RawPostDataException: refuse it first.)
        return json_error("unsupported_media_type",
                          _("Only fingerprints are accepted here, never photos or videos."), 415)
    try:
        return json.loads(request.body)
    except (ValueError, RecursionError):
        return json_error("invalid_json", _("The request was not valid."), 400)
