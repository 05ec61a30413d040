"""Django admin: configuration only (staff accounts and roles). The audit log is read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from anshim.security.decorators import is_fully_authenticated
from anshim.security.models import AuditEntry, User
from anshim.security.policy import Action, can


class StaffAdminSite(admin.AdminSite):
    """The admin behind the staff sign-in (password + TOTP) and the access policy: only the
    admin role (ADMIN_CONFIG) gets in; Django's own admin login form is never used."""

    site_header = _("Anshim configuration")
    site_title = _("Anshim configuration")

    def has_permission(self, request: HttpRequest) -> bool:
        return is_fully_authenticated(request) and can(request.user, Action.ADMIN_CONFIG)

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return redirect_to_login(request.GET.get("next", request.get_full_path()),
                                 login_url="staff:login")


# Swap the class of the default site (as django-otp's OTPAdminSite docs suggest), so every
# app's admin registrations are protected the same way without touching the URL conf.
admin.site.__class__ = StaffAdminSite


class PolicyAdminMixin:
    """Permissions from the access policy instead of Django's per-model permissions."""

    policy_action = Action.ADMIN_CONFIG

    def _allowed(self, request: HttpRequest) -> bool:
        return can(request.user, self.policy_action)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._allowed(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate accounts instead: the audit log refers to them


@admin.register(User)
class UserAdmin(PolicyAdminMixin, DjangoUserAdmin):
    list_display = ("username", "display_name", "role", "is_active", "last_login")
    list_filter = ("role", "is_active", "is_staff")
    search_fields = ("username", "display_name", "email")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Profile"), {"fields": ("display_name", "email", "preferred_language")}),
        (_("Role"), {"fields": ("role", "is_active", "is_staff", "is_superuser")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",),
                "fields": ("username", "display_name", "role", "password1", "password2")}),
    )
    readonly_fields = ("last_login", "date_joined")


@admin.register(AuditEntry)
class AuditEntryAdmin(PolicyAdminMixin, admin.ModelAdmin):
    policy_action = Action.VIEW_AUDIT

    list_display = ("seq", "at", "actor_username", "actor_role", "action", "case_code",
                    "target_model", "target_pk", "client_address")
    list_filter = ("action", "actor_role")
    search_fields = ("case_code", "actor_username", "action")
    ordering = ("-seq",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
