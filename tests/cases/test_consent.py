from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation

from anshim.cases import consent
from anshim.cases.consent import ConsentMissing, has_consent, require_consent
from anshim.cases.models import AgeGroup, ConsentGiver, ConsentScope

pytestmark = pytest.mark.django_db
SCOPE = ConsentScope.SHARE_POLICE


def test_teen_needs_only_victim(make_case: Any, counselor: Any) -> None:
    case = make_case(age_group=AgeGroup.AGE_14_17)
    assert not has_consent(case, SCOPE)
    consent.grant(case, SCOPE, ConsentGiver.VICTIM, recorded_by=counselor)
    assert has_consent(case, SCOPE)
    require_consent(case, SCOPE)


def test_under_14_needs_guardian_too(make_case: Any, counselor: Any) -> None:
    case = make_case(age_group=AgeGroup.UNDER_14)
    consent.grant(case, SCOPE, ConsentGiver.VICTIM, recorded_by=counselor)
    assert not has_consent(case, SCOPE)
    with pytest.raises(ConsentMissing) as info:
        require_consent(case, SCOPE)
    assert info.value.needs_guardian
    assert info.value.missing_givers == [ConsentGiver.GUARDIAN]
    consent.grant(case, SCOPE, ConsentGiver.GUARDIAN, recorded_by=counselor)
    assert has_consent(case, SCOPE)


def test_guardian_alone_is_not_enough(make_case: Any, counselor: Any) -> None:
    case = make_case(age_group=AgeGroup.UNDER_14)
    consent.grant(case, SCOPE, ConsentGiver.GUARDIAN, recorded_by=counselor)
    assert consent.missing_givers(case, SCOPE) == [ConsentGiver.VICTIM]


def test_withdrawal_takes_effect(make_case: Any, counselor: Any) -> None:
    case = make_case()
    consent.grant(case, SCOPE, ConsentGiver.VICTIM, recorded_by=counselor)
    assert consent.withdraw(case, SCOPE) == 1
    assert not has_consent(case, SCOPE)
    with pytest.raises(ConsentMissing):
        require_consent(case, SCOPE)
    # Granting again works and is idempotent.
    a = consent.grant(case, SCOPE, ConsentGiver.VICTIM, recorded_by=counselor)
    b = consent.grant(case, SCOPE, ConsentGiver.VICTIM, recorded_by=counselor)
    assert a.pk == b.pk and has_consent(case, SCOPE)


def test_scopes_are_independent(make_case: Any, counselor: Any) -> None:
    case = make_case()
    consent.grant(case, ConsentScope.KEEP_DATA, ConsentGiver.VICTIM, recorded_by=counselor)
    assert has_consent(case, ConsentScope.KEEP_DATA)
    assert not has_consent(case, ConsentScope.REGISTER_FINGERPRINTS)


def test_message_in_english_and_korean(make_case: Any) -> None:
    teen = make_case(age_group=AgeGroup.AGE_14_17)
    child = make_case(age_group=AgeGroup.UNDER_14)
    with pytest.raises(ConsentMissing) as teen_err:
        require_consent(teen, ConsentScope.CONTACT_PLATFORMS)
    with pytest.raises(ConsentMissing) as child_err:
        require_consent(child, ConsentScope.CONTACT_PLATFORMS)
    with translation.override("en"):
        assert teen_err.value.text == (
            "Consent to “Contact platforms for deletion” is missing. "
            "Ask the victim before doing this.")
        assert "legal guardian" in child_err.value.text
    with translation.override("ko"):
        ko = teen_err.value.text
        assert "동의" in ko and "플랫폼" in ko
        assert "법정대리인" in child_err.value.text


def test_consent_state_rows(make_case: Any, counselor: Any) -> None:
    case = make_case(age_group=AgeGroup.UNDER_14)
    consent.grant(case, ConsentScope.KEEP_DATA, ConsentGiver.VICTIM, recorded_by=counselor)
    rows = {r["scope"]: r for r in consent.consent_state(case)}
    assert rows["keep_data"]["victim"] and not rows["keep_data"]["given"]
    assert rows["keep_data"]["missing"] == ["guardian"]


def test_invalid_scope_rejected(make_case: Any, counselor: Any) -> None:
    from django.core.exceptions import ValidationError

    case = make_case()
    with pytest.raises(ValidationError):
        consent.grant(case, "everything", ConsentGiver.VICTIM, recorded_by=counselor)
