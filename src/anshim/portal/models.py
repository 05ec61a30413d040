"""What the victim portal stores: messages to the counselor and sign-in attempts for throttling.

Victims have no accounts: a case code plus a passphrase (an Argon2 hash on the case) opens the
status page for a short session.
"""

from __future__ import annotations

from django.db import models

from anshim.cases.models import Case
from anshim.security.crypto import EncryptedTextField


class PortalMessage(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="portal_messages")
    body = EncryptedTextField()
    from_victim = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]


class AccessThrottle(models.Model):
    """Failed status sign-ins per key (a hashed case code, or a client address).

    Keys are SHA-256 digests, so the table neither reveals which codes exist nor stores addresses.
    """

    key = models.CharField(max_length=64, unique=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    blocked_until = models.DateTimeField(null=True, blank=True)
