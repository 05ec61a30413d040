"""Staff account changes that need two people: role changes and account recovery.

Administrators configure the system; they must not be able to raise their own role, take over
another account or read secrets. So an administrator (or a supervisor) *proposes* a role change
or a recovery, and it takes effect only when a supervisor who is neither the proposer nor the
account holder approves it. Nobody can propose anything for their own account.

A recovery (also the first sign-in of a new account) removes the account's second factors and
its password, ends its sessions, and issues a single-use link valid for `RECOVERY_HOURS`: the
approving supervisor hands it to the holder in person, the holder sets a new password (Django's
validators) and then must enrol a new authenticator at the next sign-in. Only the SHA-256 of
the link's token is stored.

Each action is one durable transaction with the request row locked (a double click or two
supervisors approving at once apply a change exactly once), and writes one audit entry with an
event type from `Event` and key=value data, never prose.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.contrib.auth import password_validation
from django.contrib.sessions.models import Session
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from anshim.security import audit
from anshim.security.models import (
    AccountRequest,
    AccountRequestKind,
    AccountRequestStatus,
    User,
)
from anshim.security.policy import Action, require
from anshim.security.roles import Role

RECOVERY_HOURS = 24


class Event(StrEnum):
    ROLE_CHANGE_PROPOSED = "account.role_change_proposed"
    RECOVERY_PROPOSED = "account.recovery_proposed"
    APPROVED = "account.request_approved"
    REJECTED = "account.request_rejected"
    CANCELLED = "account.request_cancelled"
    ROLE_CHANGED = "account.role_changed"
    RECOVERY_ISSUED = "account.recovery_issued"
    RECOVERY_COMPLETED = "account.recovery_completed"
    BOOTSTRAPPED = "account.bootstrapped"
    ADMIN_ADD = "admin.add"
    ADMIN_CHANGE = "admin.change"
    ADMIN_DELETE = "admin.delete"
    ADMIN_ACTION = "admin.action"


class AccountError(Exception):
    """A refused account change; `message` is shown to the person who tried."""

    def __init__(self, message: Any) -> None:
        super().__init__(str(message))
        self.message = message


class OwnAccount(AccountError):
    pass


class NotPending(AccountError):
    pass


class AlreadyPending(AccountError):
    pass


class SameRole(AccountError):
    pass


class RoleChanged(AccountError):
    pass


class RecoveryLinkInvalid(AccountError):
    pass


class BootstrapClosed(AccountError):
    pass


@dataclass(frozen=True)
class Decision:
    request: AccountRequest
    recovery_token: str = ""  # the clear token, only right after a recovery is approved


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _propose(actor: Any, target: User, kind: str, new_role: str, event: Event,
             request: Any) -> AccountRequest:
    require(actor, Action.MANAGE_ACCOUNTS)
    if actor.pk == target.pk:
        raise OwnAccount(_("You cannot propose changes to your own account."))
    try:
        with transaction.atomic(durable=True):
            target = User.objects.select_for_update().get(pk=target.pk)
            if kind == AccountRequestKind.ROLE_CHANGE and target.role == new_role:
                raise SameRole(_("The account already has this role."))
            proposal = AccountRequest.objects.create(
                kind=kind, target=target, old_role=target.role or "", new_role=new_role,
                requested_by=actor)
            audit.record(actor=actor, action=event, target=target, request=request,
                         reason=f"request={proposal.pk} role={target.role or '-'}"
                                f"->{new_role or '-'}" if new_role else f"request={proposal.pk}")
    except IntegrityError:
        raise AlreadyPending(_("A request of this kind is already waiting for this account. "
                               "Decide or withdraw it first.")) from None
    return proposal


def propose_role_change(actor: Any, target: User, new_role: str,
                        request: Any = None) -> AccountRequest:
    Role(new_role)  # a ValueError for anything that is not a role (forms offer only roles)
    return _propose(actor, target, AccountRequestKind.ROLE_CHANGE, new_role,
                    Event.ROLE_CHANGE_PROPOSED, request)


def propose_recovery(actor: Any, target: User, request: Any = None) -> AccountRequest:
    return _propose(actor, target, AccountRequestKind.RECOVERY, "", Event.RECOVERY_PROPOSED,
                    request)


def _locked_pending(pk: int) -> AccountRequest:
    proposal = AccountRequest.objects.select_for_update().select_related("target").get(pk=pk)
    if proposal.status != AccountRequestStatus.PENDING:
        raise NotPending(_("This request has already been decided."))
    return proposal


def may_decide(actor: Any, proposal: AccountRequest) -> bool:
    """The second person: allowed to approve, neither the proposer nor the account holder."""
    from anshim.security.policy import can

    return (can(actor, Action.APPROVE_ACCOUNT_CHANGES)
            and actor.pk not in (proposal.requested_by_id, proposal.target_id))


def _check_second_person(actor: Any, proposal: AccountRequest) -> None:
    require(actor, Action.APPROVE_ACCOUNT_CHANGES)
    if actor.pk == proposal.target_id:
        raise OwnAccount(_("You cannot decide on a request about your own account."))
    if actor.pk == proposal.requested_by_id:
        raise OwnAccount(_("A second person must decide on a request you proposed."))


def end_sessions(user: User) -> int:
    """Sign `user` out everywhere (database sessions: the only engine Anshim uses)."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            session.delete()
            ended += 1
    return ended


def approve(actor: Any, pk: int, request: Any = None) -> Decision:
    with transaction.atomic(durable=True):
        proposal = _locked_pending(pk)
        _check_second_person(actor, proposal)
        target = User.objects.select_for_update().get(pk=proposal.target_id)
        proposal.status = AccountRequestStatus.APPROVED
        proposal.decided_by = actor
        proposal.decided_at = timezone.now()
        token = ""
        if proposal.kind == AccountRequestKind.ROLE_CHANGE:
            if (target.role or "") != proposal.old_role:
                raise RoleChanged(_("The account's role changed after this request was made. "
                                    "Reject it and propose again."))
            target.role = proposal.new_role
            target.save(update_fields=["role"])
            audit.record(actor=actor, action=Event.ROLE_CHANGED, target=target, request=request,
                         reason=f"request={proposal.pk} role={proposal.old_role or '-'}"
                                f"->{proposal.new_role}")
        else:
            token = secrets.token_urlsafe(32)
            proposal.recovery_token_hash = _token_hash(token)
            proposal.recovery_expires_at = proposal.decided_at + dt.timedelta(
                hours=RECOVERY_HOURS)
            totp = TOTPDevice.objects.filter(user=target).delete()[0]
            static = StaticDevice.objects.filter(user=target).delete()[0]
            target.set_unusable_password()
            target.save(update_fields=["password"])
            sessions = end_sessions(target)
            audit.record(actor=actor, action=Event.RECOVERY_ISSUED, target=target,
                         request=request,
                         reason=f"request={proposal.pk} devices_removed={totp + static} "
                                f"sessions_ended={sessions} hours={RECOVERY_HOURS}")
        proposal.save()
        audit.record(actor=actor, action=Event.APPROVED, target=proposal, request=request,
                     reason=f"kind={proposal.kind} account={target.pk}")
    return Decision(proposal, token)


def reject(actor: Any, pk: int, request: Any = None) -> AccountRequest:
    with transaction.atomic(durable=True):
        proposal = _locked_pending(pk)
        _check_second_person(actor, proposal)
        proposal.status = AccountRequestStatus.REJECTED
        proposal.decided_by = actor
        proposal.decided_at = timezone.now()
        proposal.save(update_fields=["status", "decided_by", "decided_at"])
        audit.record(actor=actor, action=Event.REJECTED, target=proposal, request=request,
                     reason=f"kind={proposal.kind} account={proposal.target_id}")
    return proposal


def cancel(actor: Any, pk: int, request: Any = None) -> AccountRequest:
    """The proposer withdraws their own pending request."""
    with transaction.atomic(durable=True):
        proposal = _locked_pending(pk)
        if actor.pk != proposal.requested_by_id:
            raise OwnAccount(_("Only the person who proposed a request can withdraw it."))
        proposal.status = AccountRequestStatus.CANCELLED
        proposal.decided_by = actor
        proposal.decided_at = timezone.now()
        proposal.save(update_fields=["status", "decided_by", "decided_at"])
        audit.record(actor=actor, action=Event.CANCELLED, target=proposal, request=request,
                     reason=f"kind={proposal.kind} account={proposal.target_id}")
    return proposal


def recovery_for_token(token: str) -> AccountRequest | None:
    """The approved, unused, unexpired recovery that `token` opens, or None."""
    if not token or len(token) > 100:
        return None
    proposal = (AccountRequest.objects.select_related("target")
                .filter(kind=AccountRequestKind.RECOVERY, status=AccountRequestStatus.APPROVED,
                        recovery_token_hash=_token_hash(token), recovery_used_at__isnull=True)
                .first())
    if proposal is None or proposal.recovery_expires_at is None:
        return None
    if proposal.recovery_expires_at <= timezone.now():
        return None
    return proposal


def complete_recovery(token: str, new_password: str, request: Any = None) -> User:
    """Set the new password through a recovery link (once). The holder then signs in and,
    having no second factor any more, is taken to enrol a new authenticator."""
    with transaction.atomic(durable=True):
        found = recovery_for_token(token)
        if found is None:
            raise RecoveryLinkInvalid(_("This link is invalid, expired or already used. Ask a "
                                        "supervisor for a new one."))
        proposal = AccountRequest.objects.select_for_update().get(pk=found.pk)
        if proposal.recovery_used_at is not None:
            raise RecoveryLinkInvalid(_("This link is invalid, expired or already used. Ask a "
                                        "supervisor for a new one."))
        target = User.objects.select_for_update().get(pk=proposal.target_id)
        password_validation.validate_password(new_password, target)
        target.set_password(new_password)
        target.save(update_fields=["password"])
        proposal.recovery_used_at = timezone.now()
        proposal.save(update_fields=["recovery_used_at"])
        audit.record(actor=None, action=Event.RECOVERY_COMPLETED, target=target, request=request,
                     actor_username=target.get_username(), reason=f"request={proposal.pk}")
    return target


def _supervisor_in_service() -> bool:
    """An active supervisor who has finished setting up (password and authenticator)."""
    for user in User.objects.filter(role=Role.SUPERVISOR, is_active=True):
        if user.has_usable_password() and TOTPDevice.objects.filter(
                user=user, confirmed=True).exists():
            return True
    return False


def bootstrap(username: str, role: str, display_name: str = "") -> tuple[User, str]:
    """The first accounts of a new installation, from the command line: a supervisor (and an
    administrator) with a recovery link to set the password. Closed for good once a supervisor
    is in service: from then on the second person approves every account."""
    if role not in (Role.SUPERVISOR, Role.ADMIN):
        raise AccountError(_("Only a supervisor or an administrator can be set up this way."))
    with transaction.atomic(durable=True):
        if _supervisor_in_service():
            raise BootstrapClosed(_("A supervisor is already in service: add accounts in the "
                                    "admin and have a supervisor approve them."))
        if User.objects.filter(username=username).exists():
            raise AccountError(_("This username is taken."))
        user = User(username=username, role=role, display_name=display_name or username)
        user.set_unusable_password()
        user.save()
        token = secrets.token_urlsafe(32)
        now = timezone.now()
        proposal = AccountRequest.objects.create(
            kind=AccountRequestKind.RECOVERY, target=user, old_role=role,
            status=AccountRequestStatus.APPROVED, requested_by=user, decided_by=user,
            decided_at=now, recovery_token_hash=_token_hash(token),
            recovery_expires_at=now + dt.timedelta(hours=RECOVERY_HOURS))
        audit.record(actor=None, action=Event.BOOTSTRAPPED, target=user,
                     actor_username="bootstrap_staff",
                     reason=f"request={proposal.pk} role={role}")
    return user, token
