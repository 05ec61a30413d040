from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from anshim.security.roles import Role


class User(AbstractUser):
    """A staff member or an external expert. Victims never have accounts."""

    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    display_name = models.CharField(_("display name"), max_length=100, blank=True)
    preferred_language = models.CharField(
        _("language"), max_length=8, default="ko", choices=[("ko", "한국어"), ("en", "English")]
    )

    class Meta:
        verbose_name = _("staff user")
        verbose_name_plural = _("staff users")

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def role_enum(self) -> Role | None:
        return Role(self.role) if self.role else None


class AuditEntry(models.Model):
    """One line of the append-only, hash-chained audit log.

    Who, what, when, from where and why of every read and write of case data. Actor and case
    are snapshots (plain ids and names, no foreign keys): deleting a user or a case must never
    touch the log, and database triggers refuse every UPDATE and DELETE on this table.
    """

    seq = models.PositiveBigIntegerField(_("sequence number"), unique=True)
    at = models.DateTimeField(_("time"))
    actor_id = models.BigIntegerField(_("actor id"), null=True, blank=True)
    actor_username = models.CharField(_("actor"), max_length=150, blank=True)
    actor_role = models.CharField(_("role"), max_length=16, blank=True)
    action = models.CharField(_("action"), max_length=64)
    target_model = models.CharField(_("target type"), max_length=100, blank=True)
    target_pk = models.CharField(_("target id"), max_length=64, blank=True)
    case_id = models.BigIntegerField(_("case id"), null=True, blank=True, db_index=True)
    case_code = models.CharField(_("case code"), max_length=16, blank=True, db_index=True)
    client_address = models.CharField(_("client address"), max_length=64, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=200, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    entry_hash = models.CharField(_("entry hash"), max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_username or '-'}"


class AuditHead(models.Model):
    """The single row that holds the end of the chain; appending locks it (serialises writers)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("audit head")


class AccountRequestKind(models.TextChoices):
    ROLE_CHANGE = "role_change", _("Role change")
    RECOVERY = "recovery", _("Account recovery")


class AccountRequestStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Withdrawn")


class AccountRequest(models.Model):
    """A change to a staff account that needs a second person (anshim.security.accounts).

    A role change or an account recovery is proposed by an administrator (or a supervisor)
    and takes effect only when a supervisor who is neither the proposer nor the account
    holder approves it. A recovery removes the second factors and the password and issues a
    single-use link (only its SHA-256 is stored) through which the holder sets a new password
    and then enrols a new authenticator.
    """

    kind = models.CharField(_("kind"), max_length=16, choices=AccountRequestKind.choices)
    target = models.ForeignKey(User, models.PROTECT, related_name="account_requests",
                               verbose_name=_("account"))
    old_role = models.CharField(_("current role"), max_length=16, blank=True)
    new_role = models.CharField(_("new role"), max_length=16, choices=Role.choices, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=AccountRequestStatus.choices,
                              default=AccountRequestStatus.PENDING)
    requested_by = models.ForeignKey(User, models.PROTECT, related_name="+",
                                     verbose_name=_("proposed by"))
    requested_at = models.DateTimeField(_("proposed at"), auto_now_add=True)
    decided_by = models.ForeignKey(User, models.PROTECT, related_name="+", null=True,
                                   blank=True, verbose_name=_("decided by"))
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    recovery_token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    recovery_expires_at = models.DateTimeField(null=True, blank=True)
    recovery_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        verbose_name = _("account request")
        verbose_name_plural = _("account requests")
        constraints = [
            # One open request of each kind per account: a second proposal is a clear error.
            models.UniqueConstraint(fields=["target", "kind"],
                                    condition=models.Q(status="pending"),
                                    name="one_pending_account_request"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.target}"
