"""What the victim portal stores: messages to the counselor and sign-in attempts for throttling.

Victims have no accounts: a case code plus a passphrase (an Argon2 hash on the case) opens the
status page for a short session.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from anshim.cases.models import Case
from anshim.security.crypto import EncryptedTextField


class PortalMessage(models.Model):
    """One message of the thread between the victim and the center.

    A victim's message is `read_at` once a counselor opened the thread and `answered_at` once
    someone replied; until then it waits in the counselors' inbox (overdue after the response
    target). A counselor's reply is `read_at` once the victim opened the status page.
    """

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="portal_messages")
    body = EncryptedTextField()
    from_victim = models.BooleanField(default=True)
    author = models.ForeignKey(  # the staff member who replied (None for the victim)
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    read_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    # When the counselors were e-mailed about this message (claimed once: never mailed twice).
    notice_sent_at = models.DateTimeField(null=True, blank=True)
    # The reply form's one-time token: a double click or a resent form stores one reply.
    idempotency_key = models.CharField(max_length=64, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["from_victim", "answered_at"])]
        verbose_name = _("portal message")
        verbose_name_plural = _("portal messages")


class AccessThrottle(models.Model):
    """Failed status sign-ins per key (a hashed case code, or a client address).

    Keys are SHA-256 digests, so the table neither reveals which codes exist nor stores addresses.
    """

    key = models.CharField(max_length=64, unique=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    blocked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("portal sign-in throttle")
        verbose_name_plural = _("portal sign-in throttles")


class AccessRecipient(models.TextChoices):
    """Where the new passphrase was also sent (it is printed or read out always)."""

    NONE = "", _("Not e-mailed")
    VICTIM = "victim", _("The victim's e-mail address")
    GUARDIAN = "guardian", _("A legal guardian's e-mail address")
    SMS = "sms", _("The victim's phone, by text message")


class PortalAccessIssue(models.Model):
    """One issue of portal access (case code + a new passphrase) by a staff member.

    The passphrase itself is never stored: only its Argon2 hash, on the case. The row makes the
    issue form idempotent (a resent form issues nothing new) and the e-mail sent once
    (`emailed_at` is claimed with a conditional update).
    """

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="portal_access_issues")
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                  null=True, related_name="+")
    issued_at = models.DateTimeField(auto_now_add=True)
    idempotency_key = models.CharField(max_length=64, unique=True)
    recipient = models.CharField(max_length=10, choices=AccessRecipient.choices, blank=True,
                                 default=AccessRecipient.NONE)
    guardian = models.ForeignKey("cases.Guardian", on_delete=models.SET_NULL, null=True,
                                 blank=True, related_name="+")
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        verbose_name = _("portal access issue")
        verbose_name_plural = _("portal access issues")
