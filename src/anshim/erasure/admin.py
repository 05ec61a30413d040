"""Django admin: bank configuration only. Entries hold case links and stay out of the admin;
banks are never deleted (their change log and tombstones must stay readable): disable them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from anshim.erasure.models import Bank


@admin.register(Bank)
class BankAdmin(admin.ModelAdmin):
    list_display = ("name", "purpose", "threshold", "enabled", "created_at")
    list_filter = ("purpose", "enabled")
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")
    fields = ("name", "purpose", "threshold", "enabled", "created_at", "updated_at")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
from anshim.erasure import workflow_admin  # noqa: E402, F401  (platforms and sources)
