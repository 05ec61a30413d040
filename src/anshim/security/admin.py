"""Django admin: configuration only. It shows no secrets and cannot take over an account.

- No second-factor keys: django-otp's device admins (which show TOTP keys and backup codes)
  are unregistered.
- No password setting: the user admin has no password field and no password-change page; new
  accounts get no usable password. Passwords are set by their holder through a recovery link
  that a supervisor approved (anshim.security.accounts).
- No role setting: roles change only by a proposal that a second person (a supervisor) approves,
  on the staff accounts pages; superuser and staff flags are read-only.
- Every change made here (additions, changes, deletions and bulk actions, of every app's
  models) is written to the hash-chained audit log in the same transaction as the change.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.contrib.auth.views import redirect_to_login
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from anshim.security import audit
from anshim.security.accounts import Event
from anshim.security.audit_labels import action_label
from anshim.security.decorators import is_fully_authenticated
from anshim.security.models import AccountRequest, AuditEntry, User
from anshim.security.policy import Action, can
from anshim.security.roles import Role

REASON_CHARS = 2000


def _audit_admin(request: HttpRequest, event: Event, obj: models.Model | None,
                 data: dict[str, Any]) -> None:
    payload = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    audit.record(actor=request.user, action=event, target=obj, request=request,
                 reason=payload[:REASON_CHARS])


class AuditedAdminMixin:
    """Every admin change to the audit chain: what (model, object, changed field names or the
    bulk action and its objects), never the values typed."""

    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        entry = super().log_addition(request, obj, message)  # type: ignore[misc]
        _audit_admin(request, Event.ADMIN_ADD, obj,
                     {"model": obj._meta.label_lower, "message": message})
        return entry

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        entry = super().log_change(request, obj, message)  # type: ignore[misc]
        _audit_admin(request, Event.ADMIN_CHANGE, obj,
                     {"model": obj._meta.label_lower, "message": message})
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        entries = super().log_deletions(request, queryset)  # type: ignore[misc]
        for obj in queryset:
            _audit_admin(request, Event.ADMIN_DELETE, obj, {"model": obj._meta.label_lower})
        return entries

    def response_action(self, request: HttpRequest, queryset: Any, *args: Any,
                        **kwargs: Any) -> Any:
        response = super().response_action(request, queryset, *args, **kwargs)  # type: ignore[misc]
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if response is not None and request.POST.get("action") and selected:
            model = self.model._meta.label_lower  # type: ignore[attr-defined]
            _audit_admin(request, Event.ADMIN_ACTION, None, {
                "model": model, "action": request.POST.get("action", "")[:100],
                "objects": selected[:200], "count": len(selected)})
        return response


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

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        super().register(model_or_iterable, _audited(admin_class or admin.ModelAdmin), **options)


def _audited(admin_class: type) -> type:
    if issubclass(admin_class, AuditedAdminMixin):
        return admin_class
    return type(f"Audited{admin_class.__name__}", (AuditedAdminMixin, admin_class), {})


# Swap the class of the default site (as django-otp's OTPAdminSite docs suggest), so every
# app's admin registrations are protected the same way without touching the URL conf; the
# apps registered before this one get their audited classes now, later ones in register().
admin.site.__class__ = StaffAdminSite
for _model, _model_admin in list(admin.site._registry.items()):
    admin.site._registry[_model] = _audited(type(_model_admin))(_model, admin.site)

# Second-factor devices show their secrets (TOTP keys, backup codes): never in the admin.
# Groups and Django permissions grant nothing here (the access policy decides), so their
# page would only suggest otherwise.
for _hidden_model in (TOTPDevice, StaticDevice, Group):
    if admin.site.is_registered(_hidden_model):
        admin.site.unregister(_hidden_model)


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


class NewStaffUserForm(forms.ModelForm):
    """A new account: who it is, nothing that grants access. It gets no role (proposed and
    approved separately) and no usable password (set by its holder through a recovery link)."""

    class Meta:
        model = User
        fields = ("username", "display_name", "email", "preferred_language")


@admin.register(User)
class UserAdmin(PolicyAdminMixin, DjangoUserAdmin):
    list_display = ("username", "display_name", "role", "is_active", "last_login")
    list_filter = ("role", "is_active", "is_staff")
    search_fields = ("username", "display_name", "email")
    fieldsets = (
        (None, {"fields": ("username",)}),
        (_("Profile"), {"fields": ("display_name", "email", "preferred_language")}),
        (_("Role"), {"fields": ("role", "accounts_link", "is_active", "is_staff",
                                "is_superuser")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_form = NewStaffUserForm
    add_fieldsets = (
        (None, {"classes": ("wide",),
                "fields": ("username", "display_name", "email", "preferred_language")}),
    )
    readonly_fields = ("role", "accounts_link", "is_staff", "is_superuser", "last_login",
                       "date_joined")

    @admin.display(description=_("Role changes and recovery"))
    def accounts_link(self, obj: User) -> str:
        if obj.pk is None:
            return "-"
        return format_html('<a href="{}">{}</a>', reverse("staff:account", args=[obj.pk]),
                           _("Propose a role change or an account recovery (a supervisor "
                             "approves)"))

    def get_urls(self) -> list[URLPattern]:
        # Django's UserAdmin adds a "set this user's password" page: not here.
        return [u for u in super().get_urls()
                if getattr(u, "name", "") != "auth_user_password_change"]

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if not change:
            obj.set_unusable_password()
            obj.role = ""
        super().save_model(request, obj, form, change)


@admin.register(AccountRequest)
class AccountRequestAdmin(PolicyAdminMixin, admin.ModelAdmin):
    """Read-only: requests are made and decided on the staff accounts pages."""

    list_display = ("kind", "target", "old_role", "new_role", "status", "requested_by",
                    "requested_at", "decided_by", "decided_at")
    list_filter = ("kind", "status")
    exclude = ("recovery_token_hash",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AccountRequest._meta.fields if f.name != "recovery_token_hash"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _role_label(code: str) -> str:
    return str(Role(code).label) if code in Role.values else code


class AuditActionFilter(admin.SimpleListFilter):
    """The action filter, by label (the raw code stays searchable)."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = AuditEntry.objects.order_by().values_list("action", flat=True).distinct()
        return sorted(((c, action_label(c)) for c in codes), key=lambda p: p[1])

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(action=self.value()) if self.value() else queryset


class AuditRoleFilter(admin.SimpleListFilter):
    title = _("role")
    parameter_name = "actor_role"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = AuditEntry.objects.order_by().values_list("actor_role", flat=True).distinct()
        return [(c, _role_label(c)) for c in sorted(codes) if c]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(actor_role=self.value()) if self.value() else queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(PolicyAdminMixin, admin.ModelAdmin):
    policy_action = Action.VIEW_AUDIT

    list_display = ("seq", "at", "actor_username", "role_label", "action_label", "case_code",
                    "target_model", "target_pk", "client_address")
    list_filter = (AuditActionFilter, AuditRoleFilter)
    search_fields = ("case_code", "actor_username", "action")
    ordering = ("-seq",)

    # Labels, not codes: "사례 · 열람" for "case.view", "상담원" for "counselor".
    @admin.display(description=_("action"), ordering="action")
    def action_label(self, obj: AuditEntry) -> str:
        return action_label(obj.action)

    @admin.display(description=_("role"), ordering="actor_role")
    def role_label(self, obj: AuditEntry) -> str:
        return _role_label(obj.actor_role)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
