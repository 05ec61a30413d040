"""Django admin for the workflow's configuration: platforms and monitored sources.

Erasure specialists (MANAGE_ERASURE) maintain them. Imported from `anshim.erasure.admin`
(`from anshim.erasure import workflow_admin  # noqa: F401`) so the admin site registers them.
"""

from __future__ import annotations

from django.contrib import admin

from anshim.erasure.models import MonitoredSource, Platform
from anshim.security.admin import PolicyAdminMixin
from anshim.security.policy import Action


@admin.register(Platform)
class PlatformAdmin(PolicyAdminMixin, admin.ModelAdmin):  # type: ignore[misc]
    policy_action = Action.MANAGE_ERASURE
    list_display = ("name", "kind", "jurisdiction", "channel", "expected_response_hours")
    list_filter = ("kind", "jurisdiction", "channel")
    search_fields = ("name", "domains")
    # Made on save for the partner API channel; shown so it can be handed to the platform.
    readonly_fields = ("webhook_secret",)


@admin.register(MonitoredSource)
class MonitoredSourceAdmin(PolicyAdminMixin, admin.ModelAdmin):  # type: ignore[misc]
    policy_action = Action.MANAGE_ERASURE
    list_display = ("name", "depth", "every_minutes", "enabled", "last_run_at")
    list_filter = ("enabled",)
    readonly_fields = ("last_run_at",)
