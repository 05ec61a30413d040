"""Staff accounts pages: propose role changes and recoveries, a second person decides, the
holder sets a new password through the recovery link; and one's own password change.

Thin views: the rules live in `anshim.security.accounts` (typed errors become messages).
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import auth, messages
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from anshim.security import accounts, audit
from anshim.security.decorators import staff_required
from anshim.security.models import AccountRequest, AccountRequestStatus, User
from anshim.security.policy import Action, can
from anshim.security.roles import Role

PAGE_SIZE = 50
HISTORY_SIZE = 20


class RoleProposalForm(forms.Form):
    new_role = forms.ChoiceField(label=gettext_lazy("New role"), choices=Role.choices)


def _pending() -> list[AccountRequest]:
    return list(AccountRequest.objects.filter(status=AccountRequestStatus.PENDING)
                .select_related("target", "requested_by").order_by("requested_at", "pk"))


def _decorate(user: Any, pending: list[AccountRequest]) -> list[tuple[AccountRequest, bool]]:
    return [(p, accounts.may_decide(user, p)) for p in pending]


@staff_required(Action.MANAGE_ACCOUNTS)
@require_http_methods(["GET"])
def accounts_view(request: HttpRequest) -> HttpResponse:
    users = (User.objects.order_by("username")
             .annotate(has_totp=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"),
                                                                 confirmed=True))))
    page = Paginator(users, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "staff/accounts/list.html", {
        "page": page, "pending": _decorate(request.user, _pending()),
        "can_approve": can(request.user, Action.APPROVE_ACCOUNT_CHANGES),
    })


@staff_required(Action.MANAGE_ACCOUNTS)
@require_http_methods(["GET"])
def account_view(request: HttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(User, pk=pk)
    history = list(AccountRequest.objects.filter(target=target)
                   .select_related("target", "requested_by", "decided_by")
                   .order_by("-requested_at", "-pk")[:HISTORY_SIZE])
    pending = [p for p in history if p.status == AccountRequestStatus.PENDING]
    return render(request, "staff/accounts/detail.html", {
        "target": target, "history": history, "pending": _decorate(request.user, pending),
        "own": target.pk == request.user.pk,
        "role_form": RoleProposalForm(initial={"new_role": target.role}),
        "has_totp": TOTPDevice.objects.filter(user=target, confirmed=True).exists(),
    })


def _back(pk: int) -> HttpResponse:
    return redirect("staff:account", pk=pk)


@staff_required(Action.MANAGE_ACCOUNTS)
@require_POST
def propose_role_view(request: HttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(User, pk=pk)
    form = RoleProposalForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose one of the roles."))
        return _back(pk)
    try:
        accounts.propose_role_change(request.user, target, form.cleaned_data["new_role"],
                                     request=request)
    except accounts.AccountError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Role change proposed. A supervisor must approve it."))
    return _back(pk)


@staff_required(Action.MANAGE_ACCOUNTS)
@require_POST
def propose_recovery_view(request: HttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(User, pk=pk)
    try:
        accounts.propose_recovery(request.user, target, request=request)
    except accounts.AccountError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Account recovery proposed. A supervisor must approve it."))
    return _back(pk)


@staff_required(Action.APPROVE_ACCOUNT_CHANGES)
@require_POST
@never_cache
def approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    proposal = get_object_or_404(AccountRequest, pk=pk)
    try:
        decision = accounts.approve(request.user, proposal.pk, request=request)
    except accounts.AccountError as exc:
        messages.error(request, exc.message)
        return redirect("staff:accounts")
    if decision.recovery_token:
        # Shown once, to the approving supervisor, who hands it to the holder in person.
        link = request.build_absolute_uri(
            f"/staff/recover/{decision.recovery_token}/")
        return render(request, "staff/accounts/recovery_link.html", {
            "proposal": decision.request, "link": link, "hours": accounts.RECOVERY_HOURS})
    messages.success(request, _("Approved: the account now has the new role."))
    return redirect("staff:accounts")


@staff_required(Action.APPROVE_ACCOUNT_CHANGES)
@require_POST
def reject_view(request: HttpRequest, pk: int) -> HttpResponse:
    proposal = get_object_or_404(AccountRequest, pk=pk)
    try:
        accounts.reject(request.user, proposal.pk, request=request)
    except accounts.AccountError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Request rejected."))
    return redirect("staff:accounts")


@staff_required(Action.MANAGE_ACCOUNTS)
@require_POST
def cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    proposal = get_object_or_404(AccountRequest, pk=pk)
    try:
        accounts.cancel(request.user, proposal.pk, request=request)
    except accounts.AccountError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Request withdrawn."))
    return _back(proposal.target_id)


@sensitive_post_parameters("new_password1", "new_password2")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def recover_view(request: HttpRequest, token: str) -> HttpResponse:
    """Public: the holder of a recovery link sets a new password (once)."""
    proposal = accounts.recovery_for_token(token)
    if proposal is None:
        return render(request, "staff/accounts/recover_invalid.html", status=404)
    if request.user.is_authenticated:
        auth.logout(request)  # a link is for its holder, never for whoever is signed in here
    form = SetPasswordForm(proposal.target, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            accounts.complete_recovery(token, form.cleaned_data["new_password1"],
                                       request=request)
        except accounts.AccountError as exc:
            messages.error(request, exc.message)
            return render(request, "staff/accounts/recover_invalid.html", status=404)
        messages.success(request, _("Your new password is set. Sign in, then set up your "
                                    "authenticator app."))
        return redirect("staff:login")
    return render(request, "staff/accounts/recover.html", {"form": form,
                                                           "target": proposal.target})


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@staff_required()
@require_http_methods(["GET", "POST"])
def password_change_view(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else None
    form = PasswordChangeForm(cast(User, request.user), data)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        auth.update_session_auth_hash(request, user)
        audit.record(actor=user, action="auth.password_changed", target=user, request=request)
        messages.success(request, _("Your password has been changed."))
        return redirect("staff:home")
    return render(request, "staff/password_change.html", {"form": form})
