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

from anshim.fingerprint.types import DECODE_EXACT, DECODE_REDUCED
from anshim.security.crypto import EncryptedTextField
from anshim.security.signing import new_secret

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

    #: Set (not stored) by `services.register_fingerprints` when it found the same file already
    #: registered in the bank and returned that entry instead of adding one.
    already_registered: bool = False

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


class FingerprintDecode(models.TextChoices):
    """How the media was decoded for a perceptual hash (issue 20). Stored hashes cannot be
    recomputed (the media is never kept), so each row says which decode produced it."""

    #: Full-resolution decode: agrees with Meta's PDQ (pdqhash) within a few bits.
    EXACT = DECODE_EXACT, _("Exact decode")
    #: Reduced-scale JPEG decode of engines before issue 20: up to ~40 bits off the reference.
    REDUCED = DECODE_REDUCED, _("Reduced decode")


#: ``Fingerprint.engine`` of hashes computed by the victim portal's JavaScript PDQ.
ENGINE_PORTAL_JS = "portal-pdq.js"
#: ``Fingerprint.engine`` of PDQ rows registered before engines recorded themselves (the server
#: engine then decoded JPEGs at 1/2-1/8 scale).
ENGINE_LEGACY = "anshim-pdq/1"


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
    # Provenance (issue 20): the decode and the engine (name/version; "" for hashes supplied
    # from outside, e.g. an imported list) that produced the value.
    # db_default too: the bulk importers write rows with plain INSERT/COPY.
    decode = models.CharField(
        max_length=8, choices=FingerprintDecode.choices, default=FingerprintDecode.EXACT,
        db_default=FingerprintDecode.EXACT,
    )
    engine = models.CharField(max_length=40, blank=True, default="", db_default="")

    class Meta:
        indexes = [
            models.Index(fields=["kind", "value"]),
            models.Index(fields=["bank", "kind", "id"]),
        ]
        verbose_name = _("fingerprint")
        verbose_name_plural = _("fingerprints")

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
        verbose_name = _("hash list change")
        verbose_name_plural = _("hash list changes")

    def __str__(self) -> str:
        return f"#{self.seq} {self.op} {self.bank_id}/{self.entry_id}"


class Tombstone(models.Model):
    """What remains of a withdrawn entry: its former id, never its hashes."""

    entry_id = models.BigIntegerField(unique=True)
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="tombstones")
    withdrawn_at = models.DateTimeField(auto_now_add=True)
    #: Staff may type a reason (`anshim bank withdraw --reason`): encrypted.
    reason = EncryptedTextField(blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    seq = models.BigIntegerField(help_text=_("Sequence number of the withdrawal change."))

    class Meta:
        ordering = ["seq"]
        verbose_name = _("withdrawn-hash marker")
        verbose_name_plural = _("withdrawn-hash markers")

    def __str__(self) -> str:
        return f"tombstone {self.entry_id}"


# --- The erasure workflow: platforms, sightings, evidence, takedown requests ------------------


class PlatformKind(models.TextChoices):
    SOCIAL = "social", _("Social media")
    WEBHARD = "webhard", _("Webhard")
    FORUM = "forum", _("Forum")
    ADULT = "adult", _("Adult site")
    SEARCH = "search", _("Search engine")
    MESSENGER = "messenger", _("Messenger")
    OTHER = "other", _("Other")


class Jurisdiction(models.TextChoices):
    DOMESTIC = "domestic", _("Domestic")
    OVERSEAS = "overseas", _("Overseas")


class TakedownChannel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    WEB_FORM = "web_form", _("Web form (manual)")
    PARTNER_API = "partner_api", _("Partner API (webhook)")


class NoticeLanguage(models.TextChoices):
    KO = "ko", "한국어"
    EN = "en", "English"
    JA = "ja", "日本語"
    ZH = "zh", "中文"


class Platform(models.Model):
    """A site or service the center sends takedown notices to."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    #: Host names (lowercase), one per line; a sighting's host matches a domain or a subdomain.
    domains = models.TextField(_("domains"), help_text=_("One host name per line."))
    kind = models.CharField(_("kind"), max_length=12, choices=PlatformKind.choices,
                            default=PlatformKind.OTHER)
    jurisdiction = models.CharField(_("jurisdiction"), max_length=10,
                                    choices=Jurisdiction.choices, default=Jurisdiction.DOMESTIC)
    channel = models.CharField(_("takedown channel"), max_length=12,
                               choices=TakedownChannel.choices, default=TakedownChannel.EMAIL)
    contact_email = models.EmailField(_("takedown e-mail"), blank=True)
    form_url = models.URLField(_("takedown web form"), blank=True)
    webhook_url = models.URLField(_("partner webhook"), blank=True)
    #: Signs notices sent by partner API (`anshim.security.signing`); made when first needed
    #: and handed to the platform by the specialist who sets the channel up.
    webhook_secret = EncryptedTextField(_("webhook signing secret"), blank=True)
    legal_basis = models.TextField(_("legal basis"), blank=True)
    notice_language = models.CharField(_("notice language"), max_length=2,
                                       choices=NoticeLanguage.choices, default=NoticeLanguage.KO)
    #: Optional overrides of the built-in notice templates (string.Template syntax).
    notice_template_ko = models.TextField(_("notice template (Korean)"), blank=True)
    notice_template_en = models.TextField(_("notice template (English)"), blank=True)
    expected_response_hours = models.PositiveIntegerField(_("expected response (hours)"),
                                                          default=72)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("platform")
        verbose_name_plural = _("platforms")

    def __str__(self) -> str:
        return self.name

    @property
    def domain_list(self) -> list[str]:
        return [d.strip().lower().lstrip(".") for d in self.domains.split() if d.strip()]

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A platform reached by partner API gets its signing secret as soon as it is set up.
        if self.channel == TakedownChannel.PARTNER_API and not self.webhook_secret:
            self.webhook_secret = new_secret()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "webhook_secret"}
        super().save(*args, **kwargs)


class MonitoredSource(models.Model):
    """Where scheduled monitoring crawls: seeds, scope, depth, schedule and politeness."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    seeds = models.TextField(_("seed URLs"), help_text=_("One URL per line."))
    allowed_domains = models.TextField(_("allowed domains"), blank=True)
    depth = models.PositiveSmallIntegerField(_("depth"), default=1)
    every_minutes = models.PositiveIntegerField(_("run every (minutes)"), default=24 * 60)
    per_host_rate = models.FloatField(_("requests per second per host"), default=2.0)
    per_host_concurrency = models.PositiveSmallIntegerField(_("concurrency per host"), default=2)
    enabled = models.BooleanField(_("enabled"), default=True)
    #: The crawler and the preview refuse loopback, private, link-local and metadata addresses
    #: (SSRF); a host named here may be fetched even when it resolves to one (a test site).
    allowed_private_hosts = models.TextField(
        _("hosts allowed on private networks"), blank=True,
        help_text=_("Normally empty. One host name or IP address per line that may be fetched "
                    "even though it is on a loopback or private network."))
    last_run_at = models.DateTimeField(null=True, blank=True)
    #: The newest finished (or failed) scan: its time and result on the source's pages.
    last_scan = models.ForeignKey("ScanRun", on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")

    class Meta:
        ordering = ["name"]
        verbose_name = _("monitored source")
        verbose_name_plural = _("monitored sources")

    def __str__(self) -> str:
        return self.name

    @property
    def private_host_list(self) -> list[str]:
        return [h.strip().lower() for h in self.allowed_private_hosts.split() if h.strip()]


class SightingStatus(models.TextChoices):
    NEW = "new", _("To review")
    CONFIRMED = "confirmed", _("Confirmed")
    REJECTED = "rejected", _("Rejected")
    REMOVED = "removed", _("Removed")


class Sighting(models.Model):
    """A banked item found at a URL. The media itself is never stored."""

    page_url = models.URLField(_("page"), max_length=2000)
    media_url = models.URLField(_("media"), max_length=2000)
    platform = models.ForeignKey(Platform, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="sightings")
    # The entry id, not a foreign key: the entry may be withdrawn while its sightings stay.
    entry_id = models.BigIntegerField(_("entry"))
    bank_name = models.CharField(max_length=100)
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="sightings")
    match_kind = models.CharField(max_length=8)
    #: The strategy that found the copy (pdq, dihedral, trim, screenshot, crop, md5, …): shown
    #: to reviewers and counted by the metrics (issue 8).
    strategy = models.CharField(_("strategy"), max_length=16, blank=True, default="pdq")
    distance = models.PositiveSmallIntegerField(_("distance"))
    media_sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=SightingStatus.choices,
                              default=SightingStatus.NEW)
    is_reupload = models.BooleanField(_("re-upload"), default=False)
    #: the copy was posted with the victim's personal information (name, school, contact
    #: details, ...): the reviewer ticks it; the annual "co-leak" table counts it
    leaks_personal_info = models.BooleanField(_("personal information leaked with it"),
                                              default=False)
    first_seen = models.DateTimeField(_("first seen"))
    last_seen = models.DateTimeField(_("last seen"))
    last_checked = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-is_reupload", "first_seen", "id"]
        verbose_name = _("sighting")
        verbose_name_plural = _("sightings")
        constraints = [models.UniqueConstraint(fields=["page_url", "media_url", "entry_id"],
                                               name="sighting_unique_per_entry")]
        indexes = [models.Index(fields=["status", "is_reupload"]),
                   models.Index(fields=["entry_id", "status"]),
                   # the reports read a month's sightings (anshim.reports.summary)
                   models.Index(fields=["first_seen"])]

    def __str__(self) -> str:
        return f"sighting {self.pk} ({self.status})"

    @property
    def hours_to_removal(self) -> float | None:
        if self.removed_at is None:
            return None
        return (self.removed_at - self.first_seen).total_seconds() / 3600


class Evidence(models.Model):
    """What was seen, when, and how it matched; signed with the center's Ed25519 key.

    Holds the page's HTML text (encrypted at rest), never the media.
    """

    sighting = models.ForeignKey(Sighting, on_delete=models.CASCADE, related_name="evidence")
    captured_at = models.DateTimeField()
    page_url = models.URLField(max_length=2000)
    media_url = models.URLField(max_length=2000)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    media_sha256 = models.CharField(max_length=64, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    distance = models.PositiveSmallIntegerField()
    page_html = EncryptedTextField(blank=True)
    #: Ed25519 signature (hex) over `evidence.canonical_bytes(self)`.
    signature = models.CharField(max_length=128, blank=True)
    key_id = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["captured_at", "id"]
        verbose_name = _("evidence record")
        verbose_name_plural = _("evidence records")

    def __str__(self) -> str:
        return f"evidence {self.pk}"

    @property
    def reference(self) -> str:
        return f"EV-{self.pk:06d}"


class TakedownState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENT = "sent", _("Sent")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    REMOVED = "removed", _("Removed")
    REFUSED = "refused", _("Refused")
    NO_RESPONSE = "no_response", _("No response")
    ESCALATED = "escalated", _("Escalated")
    #: The victim withdrew the consent to contact platforms: nothing more is sent.
    WITHDRAWN = "withdrawn", _("Stopped: consent withdrawn")


class EscalationTarget(models.TextChoices):
    REGULATOR = "regulator", _("Deletion request to the communications standards regulator")
    POLICE = "police", _("Referral to police")


class NoticeRoute(models.TextChoices):
    """How a notice reached the platform, as the reports compare them: escalated to the
    regulator, through a partner platform's API, or a direct notice (e-mail, web form)."""

    DIRECT = "direct", _("Direct notice (e-mail, web form)")
    PARTNER_API = "partner_api", _("Partner API")
    REGULATOR = "regulator", _("Regulator escalation")


def route_q(route: str, prefix: str = "") -> models.Q:
    """The notices of one route (`prefix`: the path to the notice, e.g. "request__"); the
    one definition the reports' grouping (`route_expression`) and the request list's filter
    share."""
    regulator = models.Q(**{f"{prefix}escalation": EscalationTarget.REGULATOR})
    api = models.Q(**{f"{prefix}platform__channel": TakedownChannel.PARTNER_API})
    return {NoticeRoute.REGULATOR: regulator, NoticeRoute.PARTNER_API: api & ~regulator,
            NoticeRoute.DIRECT: ~api & ~regulator}[NoticeRoute(route)]


def route_expression(prefix: str = "") -> models.Case:
    """Each notice's route, as SQL (a CASE over `route_q`)."""
    return models.Case(
        *[models.When(route_q(route, prefix), then=models.Value(route.value))
          for route in (NoticeRoute.REGULATOR, NoticeRoute.PARTNER_API)],
        default=models.Value(NoticeRoute.DIRECT.value), output_field=models.CharField())


class TakedownRequest(models.Model):
    """One notice to one platform about one case's confirmed sightings (batched)."""

    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE,
                             related_name="takedown_requests")
    platform = models.ForeignKey(Platform, on_delete=models.PROTECT,
                                 related_name="takedown_requests")
    state = models.CharField(_("state"), max_length=12, choices=TakedownState.choices,
                             default=TakedownState.DRAFT)
    language = models.CharField(max_length=2, choices=NoticeLanguage.choices,
                                default=NoticeLanguage.KO)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    recipient = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+")
    #: Who last changed the draft's wording: like the drafter, not the one to approve it.
    edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                  null=True, blank=True, related_name="+")
    edited_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    send_count = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(_("respond by"), null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    escalation = models.CharField(max_length=10, choices=EscalationTarget.choices, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("takedown request")
        verbose_name_plural = _("takedown requests")
        indexes = [models.Index(fields=["state", "due_at"]),
                   # the reports read a month's notices (anshim.reports.summary)
                   models.Index(fields=["sent_at"])]

    def __str__(self) -> str:
        return f"TR-{self.pk:06d}"

    @property
    def reference(self) -> str:
        return f"TR-{self.pk:06d}"


class TakedownItem(models.Model):
    request = models.ForeignKey(TakedownRequest, on_delete=models.CASCADE, related_name="items")
    sighting = models.ForeignKey(Sighting, on_delete=models.CASCADE, related_name="requests")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "sighting"],
                                               name="takedown_item_unique")]
        verbose_name = _("takedown item")
        verbose_name_plural = _("takedown items")


class TakedownEvent(models.Model):
    """Every state change of a request (also copied to the case timeline)."""

    request = models.ForeignKey(TakedownRequest, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=12, blank=True)
    to_state = models.CharField(max_length=12)
    at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                              blank=True, related_name="+")
    #: Staff may type the platform's answer here: personal data, encrypted like the rest.
    note = EncryptedTextField(blank=True)
    #: Why it happened, a code (`takedowns.Why` or a delivery result): the history page words
    #: it in the reader's language; `note` keeps the detail.
    why = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("takedown history entry")
        verbose_name_plural = _("takedown history entries")


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SENDING = "sending", _("Being sent")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class TakedownDelivery(models.Model):
    """One notice of a request to hand to the platform (the first send, then each re-send).

    Created in the transaction that decides to send and handed to the task queue once that
    commits; the worker claims it under a row lock, so each delivery goes out once. Its
    idempotency key travels with it (Message-ID, Idempotency-Key header): a retry after a crash
    between sending and recording carries the same key, and the platform can drop the copy.
    """

    request = models.ForeignKey(TakedownRequest, on_delete=models.CASCADE,
                                related_name="deliveries")
    #: 1 = the first notice, 2 = the first re-send, ...
    number = models.PositiveSmallIntegerField()
    idempotency_key = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=DeliveryState.choices,
                              default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["request_id", "number"]
        constraints = [models.UniqueConstraint(fields=["request", "number"],
                                               name="takedown_delivery_unique_number")]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        verbose_name = _("takedown delivery")
        verbose_name_plural = _("takedown deliveries")

    def __str__(self) -> str:
        return f"{self.request_id}#{self.number} ({self.status})"


class UnblurRecord(models.Model):
    """Why a reviewer looked at an unblurred picture (the reason is typed: encrypted). The
    audit row points here instead of carrying the prose."""

    sighting = models.ForeignKey(Sighting, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                              related_name="+")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    reason = EncryptedTextField(blank=True)
    # How long the picture was actually visible unblurred, as the reviewer's own page reported
    # it (`erasure.exposure.record_viewing`); null: no report arrived (the browser was closed
    # first), counted as `exposure.UNREPORTED_SECONDS`. 0: the picture could not be shown.
    seconds_viewed = models.PositiveIntegerField(_("seconds viewed"), null=True, blank=True)

    class Meta:
        verbose_name = _("unblur record")
        verbose_name_plural = _("unblur records")


class ScanStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting to start")
    RUNNING = "running", _("Running")
    DONE = "done", _("Finished")
    FAILED = "failed", _("Failed")


class ScanKind(models.TextChoices):
    SOURCE = "source", _("Monitored source")
    CASE = "case", _("Case")
    LINKS = "links", _("Reported links")


class ScanRun(models.Model):
    """One scan, started by staff ("scan now") or by the schedule: its progress while it runs
    (pages, media, matches so far) and its result afterwards."""

    kind = models.CharField(_("kind"), max_length=8, choices=ScanKind.choices)
    source = models.ForeignKey(MonitoredSource, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="scan_runs")
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="scan_runs")
    status = models.CharField(_("status"), max_length=8, choices=ScanStatus.choices,
                              default=ScanStatus.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField(_("pages"), default=0)
    media = models.PositiveIntegerField(_("media"), default=0)
    matches = models.PositiveIntegerField(_("matches"), default=0)
    new_sightings = models.PositiveIntegerField(_("new sightings"), default=0)
    errors = models.PositiveIntegerField(_("errors"), default=0)
    #: The failure's type name when the scan failed (no message: it may hold a URL's content).
    failure = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("scan")
        verbose_name_plural = _("scans")
        indexes = [models.Index(fields=["source", "status"]),
                   models.Index(fields=["case", "status"])]


class LinkOrigin(models.TextChoices):
    PORTAL_REPORT = "portal_report", _("Portal report")
    PORTAL_MESSAGE = "portal_message", _("Portal message")
    STAFF = "staff", _("Added by staff")


class LinkResult(models.TextChoices):
    PENDING = "pending", _("Being checked")
    MATCHED = "matched", _("Matches a registered fingerprint")
    NO_MATCH = "no_match", _("No match found")
    UNREACHABLE = "unreachable", _("Could not be fetched")


class ReportedLink(models.Model):
    """A web address the victim reported (portal report, later messages) or staff added: kept
    as a structured URL on the case, checked at once like a scan."""

    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE,
                             related_name="reported_links")
    url = models.URLField(_("address"), max_length=2000)
    origin = models.CharField(_("from"), max_length=16, choices=LinkOrigin.choices)
    added_at = models.DateTimeField(auto_now_add=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                 blank=True, related_name="+")
    result = models.CharField(_("result"), max_length=12, choices=LinkResult.choices,
                              default=LinkResult.PENDING)
    matches = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField(_("checked"), null=True, blank=True)
    last_scan = models.ForeignKey(ScanRun, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")

    class Meta:
        ordering = ["-added_at", "-id"]
        verbose_name = _("reported link")
        verbose_name_plural = _("reported links")
        constraints = [models.UniqueConstraint(fields=["case", "url"],
                                               name="reported_link_unique")]
