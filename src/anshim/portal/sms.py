"""Text messages through an HTTP SMS gateway (the center's provider), for portal access.

There is no gateway in the code base: a deployment sets ANSHIM_SMS_GATEWAY_URL (and a bearer
token) and the gateway receives one JSON POST per message, {"to": ..., "text": ...}, with an
Idempotency-Key header so that a retried request never sends twice. Without the setting SMS is
simply not offered.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings


class SmsError(Exception):
    """The gateway refused the message or could not be reached."""


@dataclass(frozen=True)
class SmsMessage:
    to: str
    text: str
    idempotency_key: str


def configured() -> bool:
    return bool(getattr(settings, "ANSHIM_SMS_GATEWAY_URL", ""))


def send(message: SmsMessage, *, timeout: float = 10.0) -> None:
    url = getattr(settings, "ANSHIM_SMS_GATEWAY_URL", "")
    if not url.startswith(("https://", "http://")):
        raise SmsError("no SMS gateway configured")
    headers = {"Content-Type": "application/json", "Idempotency-Key": message.idempotency_key}
    token = getattr(settings, "ANSHIM_SMS_GATEWAY_TOKEN", "")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps({"to": message.to, "text": message.text}).encode()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - the configured gateway
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            if not 200 <= response.status < 300:
                raise SmsError(f"gateway answered {response.status}")
    except urllib.error.HTTPError as exc:
        raise SmsError(f"gateway answered {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise SmsError("gateway unreachable") from exc
