"""What the erasure workflow does when something happens elsewhere (connected in apps.ready)."""

from __future__ import annotations

from typing import Any

from anshim.cases.consent import has_consent
from anshim.cases.models import Case, ConsentScope

#: Reason code of the tombstones and audit rows of fingerprints withdrawn with their consent.
CONSENT_WITHDRAWN = "consent_withdrawn"


def on_consent_withdrawn(sender: Any, *, case: Case, scope: str, **kwargs: Any) -> None:
    """The victim (or a guardian) withdrew a consent: stop what relied on it, in the same
    transaction. Contacting platforms: every open takedown request stops at once. Registering
    fingerprints: the case's entries leave every bank (tombstones tell partners)."""
    if scope == ConsentScope.CONTACT_PLATFORMS:
        from anshim.erasure.takedowns import stop_requests_without_consent

        stop_requests_without_consent(case)
    elif scope == ConsentScope.REGISTER_FINGERPRINTS and not has_consent(case, scope):
        from anshim.erasure.services import withdraw_case_entries

        # The system acts (the withdrawal itself is audited with whoever recorded it):
        # counselors record consent but do not manage banks.
        withdraw_case_entries(case, actor=None, reason=CONSENT_WITHDRAWN)
