"""Hash banks: the fingerprints that must be found wherever they appear.

A bank holds entries; an entry is one piece of media (or one imported hash) and keeps its
fingerprints as rows (an image: PDQ + MD5 + SHA-256, a video: its vPDQ frames + MD5 + SHA-256).
Withdrawal deletes the entry and its fingerprints for good; only a tombstone with the former
entry id remains so partners can delete their copy too.

Every addition, withdrawal and bank configuration change gets a row in `BankChange`, whose
auto-increment primary key is a global, monotonically increasing sequence number. Running
matchers poll `max(seq)` to stay current, and the partner exchange feed pages through it.
Banks are never deleted (their change history must stay readable): disable them instead.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _

#: PDQ hashes are 256 bits; a distance of 31 or less is Meta's recommended match threshold.
DEFAULT_THRESHOLD = 31
MAX_THRESHOLD = 64


class BankPurpose(models.TextChoices):
    VICTIM_IMAGES = "victim_images", _("Victim images")
    EVIDENCE = "evidence", _("Evidence")
    IMPORTED_LIST = "imported_list", _("Imported list")
    PARTNER_LIST = "partner_list", _("Partner list")
    ALLOW_LIST = "allow_list", _("Allow-list (known false positives)")


class Bank(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    purpose = models.CharField(
        _("purpose"), max_length=16, choices=BankPurpose.choices,
        default=BankPurpose.VICTIM_IMAGES,
    )
    threshold = models.PositiveSmallIntegerField(
        _("match threshold"), default=DEFAULT_THRESHOLD,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_THRESHOLD)],
        help_text=_("Largest PDQ distance (0-64 bits) that counts as a match."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("bank")
        verbose_name_plural = _("banks")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(threshold__lte=MAX_THRESHOLD), name="bank_threshold_max_64"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_allow_list(self) -> bool:
        return self.purpose == BankPurpose.ALLOW_LIST

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A configuration change (threshold, purpose, enabled) must reach every running matcher:
        # record it in the change log in the same transaction (admin edits come through here).
        from anshim.erasure.changelog import lock_change_log

        with transaction.atomic():
            lock_change_log()
            super().save(*args, **kwargs)
            BankChange.objects.create(bank=self, op=ChangeOp.CONFIG)


class EntrySource(models.TextChoices):
    VICTIM_PORTAL = "victim_portal", _("Victim portal")
    STAFF_EVIDENCE = "staff_evidence", _("Staff (evidence)")
    IMPORT = "import", _("Imported list")
    PARTNER = "partner", _("Partner")


class MediaKind(models.TextChoices):
    IMAGE = "image", _("Image")
    VIDEO = "video", _("Video")
    HASHES = "hashes", _("Hashes only")


class BankEntry(models.Model):
    """One banked item. Labels travel with exports: they must never hold personal data."""

    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="entries")
    # PROTECT: a case cannot disappear under its banked fingerprints; withdraw them first so
    # partners get tombstones.
    case = models.ForeignKey(
        "cases.Case", on_delete=models.PROTECT, null=True, blank=True,
        related_name="bank_entries",
    )
    consent = models.ForeignKey(
        "cases.Consent", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text=_("The fingerprint-registration consent that allows this entry."),
    )
    source = models.CharField(_("source"), max_length=16, choices=EntrySource.choices)
    media_kind = models.CharField(
        _("media"), max_length=8, choices=MediaKind.choices, default=MediaKind.IMAGE
    )
    label = models.CharField(_("label"), max_length=200, blank=True)
    added_at = models.DateTimeField(auto_now_add=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("bank entry")
        verbose_name_plural = _("bank entries")
        indexes = [models.Index(fields=["bank", "id"])]

    def __str__(self) -> str:
        return f"{self.bank_id}/{self.pk}"


class FingerprintKind(models.TextChoices):
    PDQ = "pdq", "PDQ"
    MD5 = "md5", "MD5"
    SHA256 = "sha256", "SHA-256"
    VPDQ = "vpdq", _("vPDQ frame")


#: Hex length of each kind's value.
HEX_LENGTH = {
    FingerprintKind.PDQ: 64,
    FingerprintKind.MD5: 32,
    FingerprintKind.SHA256: 64,
    FingerprintKind.VPDQ: 64,
}


class Fingerprint(models.Model):
    """One hash of an entry (lowercase hex). Deleted, not hidden, on withdrawal."""

    entry = models.ForeignKey(BankEntry, on_delete=models.CASCADE, related_name="fingerprints")
    # The entry's bank, repeated (entries never move): a matcher loads a bank's millions of
    # hashes from this one table, with no join for the planner to get wrong after a big import.
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(max_length=8, choices=FingerprintKind.choices)
    value = models.CharField(max_length=64)
    quality = models.PositiveSmallIntegerField(null=True, blank=True)
    # Which transformation of the media was hashed ("original", a dihedral name, ...).
    variant = models.CharField(max_length=32, default="original")
    # vPDQ frames only.
    frame_number = models.PositiveIntegerField(null=True, blank=True)
    timestamp = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["kind", "value"]),
            models.Index(fields=["bank", "kind", "id"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value[:12]}…"


class ChangeOp(models.TextChoices):
    ADD = "add", _("Added")
    WITHDRAW = "withdraw", _("Withdrawn")
    CONFIG = "config", _("Bank configuration changed")


class BankChange(models.Model):
    """The global change log. `seq` only grows; writers serialise (see changelog.lock_change_log)
    so that seq order is also commit order and a poller never skips a change."""

    seq = models.BigAutoField(primary_key=True)
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="changes")
    entry_id = models.BigIntegerField(null=True, blank=True)
    op = models.CharField(max_length=8, choices=ChangeOp.choices)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["bank", "seq"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.op} {self.bank_id}/{self.entry_id}"


class Tombstone(models.Model):
    """What remains of a withdrawn entry: its former id, never its hashes."""

    entry_id = models.BigIntegerField(unique=True)
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="tombstones")
    withdrawn_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=200, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    seq = models.BigIntegerField(help_text=_("Sequence number of the withdrawal change."))

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"tombstone {self.entry_id}"
