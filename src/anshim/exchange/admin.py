"""Staff admin for partners: read-mostly. Tokens are issued and rotated with `anshim partner`
(a token must be shown exactly once, which a form can't promise); digests are never shown."""

from __future__ import annotations

from django.contrib import admin

from anshim.exchange.models import (
    BankShare,
    Partner,
    PartnerFeedback,
    PartnerToken,
    WebhookDelivery,
)


class BankShareInline(admin.TabularInline):
    model = BankShare
    extra = 0


class PartnerTokenInline(admin.TabularInline):
    model = PartnerToken
    extra = 0
    can_delete = False
    fields = ("prefix", "created_at", "expires_at", "revoked_at", "last_used_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("name", "active", "platform", "scopes", "rate_per_minute", "webhook_url",
                    "created_at")
    list_filter = ("active",)
    search_fields = ("name",)
    list_select_related = ("platform",)
    # The platform decides which sightings the partner's feedback may touch.
    fields = ("name", "active", "platform", "scopes", "rate_per_minute", "burst", "webhook_url",
              "webhook_seq", "created_at")
    # The webhook URL comes with a secret that must be shown once: `anshim partner webhook`.
    readonly_fields = ("webhook_url", "webhook_seq", "created_at")
    inlines = (BankShareInline, PartnerTokenInline)


@admin.register(PartnerFeedback)
class PartnerFeedbackAdmin(admin.ModelAdmin):
    list_display = ("partner", "action", "url", "entry_id", "hash_kind", "acted_at",
                    "received_at", "applied_at")
    list_filter = ("action", "partner")
    search_fields = ("url", "reference", "hash_value", "reason")
    # Disputed hashes (false positives reported by partners) are reviewed from here.
    readonly_fields = ("partner", "action", "url", "entry_id", "hash_kind", "hash_value",
                       "reason", "reference", "acted_at", "received_at", "applied_at")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("partner", "status", "attempts", "last_status_code", "next_attempt_at",
                    "created_at", "delivered_at")
    list_filter = ("status", "partner")
    readonly_fields = ("partner", "body", "status", "attempts", "last_status_code",
                       "last_error", "next_attempt_at", "created_at", "delivered_at")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
