"""Consent: who agreed to what, and the check every consent-dependent action makes.

A scope is *given* when the victim's consent for it is active (granted, not withdrawn) and, for
a child under 14 (Korean practice: a legal representative must agree for under-14s), a legal
guardian's consent for it is active too. Withdrawal by either side takes effect at once.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from anshim.cases.models import AgeGroup, Case, Consent, ConsentGiver, ConsentScope, Guardian

#: Sent by `withdraw` inside the withdrawing transaction, when consents were withdrawn, with
#: ``case``, ``scope`` and ``given_by`` ("" for everyone). Receivers act in that transaction so
#: the withdrawal and what it stops commit together (the erasure app stops takedown requests
#: and withdraws fingerprints here: before the caller writes its audit entry, which keeps the
#: lock order of `anshim.erasure.changelog`).
consent_withdrawn = Signal()


class ConsentMissing(ValidationError):
    """An action needs a consent scope the case does not have.

    A ValidationError so forms can show it as a form error; the API turns it into a 409 JSON
    error with code ``consent_missing``. The message is translated when it is rendered.
    """

    def __init__(self, case: Case, scope: str, missing_givers: list[str]) -> None:
        self.case = case
        self.scope = scope
        self.missing_givers = missing_givers
        self.needs_guardian = ConsentGiver.GUARDIAN in missing_givers or (
            needs_guardian_consent(case)
        )
        if self.needs_guardian:
            message = _(
                "Consent to “%(scope)s” is missing. For a child under 14, a legal guardian's "
                "consent is needed as well as the victim's."
            )
        else:
            message = _("Consent to “%(scope)s” is missing. Ask the victim before doing this.")
        super().__init__(message, code="consent_missing",
                         params={"scope": ConsentScope(scope).label})

    @property
    def text(self) -> str:
        """The message in the active language."""
        return str(self.messages[0])


def needs_guardian_consent(case: Case) -> bool:
    return case.person.age_group == AgeGroup.UNDER_14


def _active(case: Case, scope: str) -> Any:
    return Consent.objects.filter(case=case, scope=scope, withdrawn_at__isnull=True)


def missing_givers(case: Case, scope: str) -> list[str]:
    """Whose consent to `scope` is still needed (empty when the scope is given)."""
    givers = set(_active(case, scope).values_list("given_by", flat=True))
    required = [ConsentGiver.VICTIM]
    if needs_guardian_consent(case):
        required.append(ConsentGiver.GUARDIAN)
    return [str(g) for g in required if g not in givers]


def has_consent(case: Case, scope: str) -> bool:
    return not missing_givers(case, scope)


def require_consent(case: Case, scope: str) -> None:
    """Raise ConsentMissing unless `scope` is given; call it before any action that relies on it."""
    missing = missing_givers(case, scope)
    if missing:
        raise ConsentMissing(case, scope, missing)


def consent_state(case: Case) -> list[dict[str, Any]]:
    """One row per scope for the case page and the API."""
    # One query for every scope (the case page used to ask three times per scope).
    givers: dict[str, set[str]] = {}
    for scope, given_by in Consent.objects.filter(
            case=case, withdrawn_at__isnull=True).values_list("scope", "given_by"):
        givers.setdefault(scope, set()).add(given_by)
    required = [ConsentGiver.VICTIM]
    if needs_guardian_consent(case):
        required.append(ConsentGiver.GUARDIAN)
    rows = []
    for scope in ConsentScope:
        active = givers.get(scope.value, set())
        missing = [str(g) for g in required if g not in active]
        rows.append({
            "scope": scope.value,
            "label": scope.label,
            "given": not missing,
            "victim": ConsentGiver.VICTIM in active,
            "guardian": ConsentGiver.GUARDIAN in active,
            "missing": missing,
        })
    return rows


def grant(
    case: Case, scope: str, given_by: str, *, recorded_by: Any, method: str = "verbal",
    guardian: Guardian | None = None,
) -> Consent:
    """Record a consent (idempotent: an active consent from the same giver is returned)."""
    if scope not in ConsentScope.values:
        raise ValidationError(_("Unknown consent scope."), code="invalid_scope")
    if given_by not in ConsentGiver.values:
        raise ValidationError(_("Unknown consent giver."), code="invalid_giver")
    if (given_by == ConsentGiver.GUARDIAN and guardian is not None
            and not guardian.is_legal_guardian):
        raise ValidationError(
            _("Only a legal guardian can give consent for a child."), code="not_legal_guardian"
        )
    with transaction.atomic():
        existing = _active(case, scope).filter(given_by=given_by).first()
        if existing is not None:
            return existing
        return Consent.objects.create(
            case=case, scope=scope, given_by=given_by, guardian=guardian, method=method,
            granted_at=timezone.now(), recorded_by=recorded_by,
        )


def withdraw(case: Case, scope: str, given_by: str | None = None) -> int:
    """Withdraw active consents to `scope` (from `given_by`, or everyone). Returns how many."""
    with transaction.atomic():
        qs = _active(case, scope)
        if given_by:
            qs = qs.filter(given_by=given_by)
        count = qs.update(withdrawn_at=timezone.now())
        if count:
            consent_withdrawn.send(sender=Consent, case=case, scope=scope,
                                   given_by=given_by or "")
    return count
