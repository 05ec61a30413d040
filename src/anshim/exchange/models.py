"""Partner platforms: who they are, how they authenticate, which banks they see, what they told us.

Partners never see case data: the exchange only ever reads banks, entries, fingerprints and the
change log of the erasure app, and only for the banks shared with the partner (`BankShare`).
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from anshim.security.crypto import EncryptedTextField


class Scope(models.TextChoices):
    READ = "read", _("Read the fingerprint feed")
    LOOKUP = "lookup", _("Look up hashes")
    FEEDBACK = "feedback", _("Report removals")


ALL_SCOPES = tuple(Scope.values)


class Partner(models.Model):
    """A platform (or a hash-sharing programme) that receives our fingerprints."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    # Comma-separated `Scope` values; a handful of fixed words, so no join table.
    scopes = models.CharField(_("scopes"), max_length=100, default=",".join(ALL_SCOPES))
    active = models.BooleanField(_("active"), default=True)
    # Token bucket: `rate_per_minute` tokens flow in per minute, at most `burst` are kept.
    rate_per_minute = models.PositiveIntegerField(_("requests per minute"), default=600)
    burst = models.PositiveIntegerField(_("burst"), default=60)
    webhook_url = models.URLField(_("webhook URL"), max_length=500, blank=True)
    # The HMAC key must be usable, so it is encrypted (not hashed) at rest.
    webhook_secret = EncryptedTextField(_("webhook secret"), blank=True)
    # Highest change-log seq already announced to this partner's webhook.
    webhook_seq = models.BigIntegerField(default=0)
    # The feed position (a signed cursor) the webhook has announced up to: share changes are
    # restated to webhook receivers exactly as to pullers of the feed. Empty: webhook_seq in
    # the current epoch (set before issue 18).
    webhook_cursor = models.CharField(max_length=200, blank=True, default="")
    # Bumped whenever a bank is shared or unshared, with a `ShareSnapshot` of the new set: a
    # cursor names the epoch it was issued in, so the feed can tell what the partner holds and
    # send the difference (withdrawals of unshared banks, additions of newly shared ones).
    share_epoch = models.PositiveIntegerField(default=0)
    # The platform this partner runs: feedback by URL or hash touches only its sightings.
    platform = models.ForeignKey(
        "erasure.Platform", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="partners", verbose_name=_("platform"),
        help_text=_("Feedback from this partner applies only to sightings on this platform."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("partner platform")
        verbose_name_plural = _("partner platforms")

    def __str__(self) -> str:
        return self.name

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(s for s in self.scopes.split(",") if s)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scope_set


class PartnerToken(models.Model):
    """An API token. Only its SHA-256 digest is stored; the token itself is shown once.

    A fast unsalted hash is right here (unlike passwords): tokens carry 256 random bits, so
    brute force and precomputed tables are hopeless, and a constant-time-per-request lookup by
    digest keeps authentication cheap on every API call.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="tokens")
    prefix = models.CharField(_("prefix"), max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("partner token")
        verbose_name_plural = _("partner tokens")

    def __str__(self) -> str:
        return f"{self.prefix}…"

    def is_usable(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class RateBucket(models.Model):
    """Per-partner token bucket, in the database so every server process shares it."""

    partner = models.OneToOneField(Partner, on_delete=models.CASCADE, primary_key=True)
    tokens = models.FloatField()
    # Unix time of the last refill (float seconds: sub-second precision matters here).
    updated = models.FloatField()

    class Meta:
        verbose_name = _("rate limit bucket")
        verbose_name_plural = _("rate limit buckets")


class BankShare(models.Model):
    """A bank made visible to a partner (feed, lookup, webhooks)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="shares")
    bank = models.ForeignKey("erasure.Bank", on_delete=models.PROTECT, related_name="shares")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("bank share")
        verbose_name_plural = _("bank shares")
        constraints = [
            models.UniqueConstraint(fields=["partner", "bank"], name="bankshare_unique")
        ]

    def __str__(self) -> str:
        return f"{self.bank_id} → {self.partner_id}"


class ShareSnapshot(models.Model):
    """The banks shared with a partner as of one `Partner.share_epoch` (the feed's memory of
    what a cursor's holder has; see anshim.exchange.feed)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="snapshots")
    epoch = models.PositiveIntegerField()
    bank_ids = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partner", "epoch"], name="sharesnapshot_unique")
        ]
        verbose_name = _("share snapshot")
        verbose_name_plural = _("share snapshots")

    def __str__(self) -> str:
        return f"{self.partner_id}@{self.epoch}: {self.bank_ids}"


class FeedbackAction(models.TextChoices):
    REMOVED = "removed", _("Removed")
    NOT_FOUND = "not_found", _("Not found")
    REFUSED = "refused", _("Refused")
    # Per-hash opinions (batch feedback, threatexchange `report_opinion`): StopNCII's
    # Blocked / NotBlocked / PendingReview and NCMEC's affirmative / negative map onto these.
    CONFIRMED = "confirmed", _("Confirmed (acted on a match)")
    DISPUTED = "disputed", _("Disputed (false positive)")
    PENDING_REVIEW = "pending_review", _("Pending review")
    SEEN = "seen", _("Seen on the platform")


class PartnerFeedback(models.Model):
    """What a partner reports it did about a URL or one of our entries.

    `apply_feedback` (anshim.exchange.feedback) connects it to takedown requests and sightings;
    `applied_at` records when that happened.
    """

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="feedback")
    action = models.CharField(_("action"), max_length=16, choices=FeedbackAction.choices)
    url = models.URLField(_("URL"), max_length=2000, blank=True)
    entry_id = models.BigIntegerField(_("entry id"), null=True, blank=True)
    # Per-hash feedback: the hash the partner matched (kind + lowercase value).
    hash_kind = models.CharField(_("hash kind"), max_length=8, blank=True)
    hash_value = models.CharField(_("hash"), max_length=64, blank=True)
    # NCMEC-style reason for a dispute or confirmation (free text from the partner, short).
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    # The partner's own identifier for the item (a post id), for their support staff and ours.
    reference = models.CharField(_("partner reference"), max_length=200, blank=True)
    acted_at = models.DateTimeField(_("acted at"))
    received_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("partner feedback")
        verbose_name_plural = _("partner feedback")
        indexes = [models.Index(fields=["entry_id"]), models.Index(fields=["url"])]

    def __str__(self) -> str:
        return f"{self.partner_id}: {self.action}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookDelivery(models.Model):
    """One signed POST to a partner's webhook, retried with exponential backoff."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="deliveries")
    body = models.TextField()
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")

    def __str__(self) -> str:
        return f"delivery {self.pk} to {self.partner_id}: {self.status}"
