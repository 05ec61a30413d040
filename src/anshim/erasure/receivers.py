"""What the erasure workflow does when something happens elsewhere (connected in apps.ready)."""

from __future__ import annotations

from typing import Any

from anshim.cases.consent import has_consent
from anshim.cases.models import Case, Channel, ConsentScope

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


def on_case_saved(sender: Any, *, instance: Case, created: bool, **kwargs: Any) -> None:
    """A portal report: the addresses the victim gave become reported links, checked at once."""
    if not created or kwargs.get("raw") or instance.channel != Channel.PORTAL:
        return
    from anshim.erasure.models import LinkOrigin
    from anshim.erasure.scan_now import add_links, extract_urls

    urls = extract_urls(instance.summary)
    if urls:
        add_links(instance, urls, origin=LinkOrigin.PORTAL_REPORT)


def on_portal_message_saved(sender: Any, *, instance: Any, created: bool, **kwargs: Any) -> None:
    """A victim's later message: any address in it is a reported link too."""
    if not created or kwargs.get("raw") or not instance.from_victim:
        return
    from anshim.erasure.models import LinkOrigin
    from anshim.erasure.scan_now import add_links, extract_urls

    urls = extract_urls(instance.body)
    if urls:
        add_links(instance.case, urls, origin=LinkOrigin.PORTAL_MESSAGE)


def on_sighting_saved(sender: Any, *, instance: Any, created: bool, **kwargs: Any) -> None:
    """A reviewer confirmed a sighting on a case: erasure work has started (the case workflow
    moves it, in the review's transaction, by the reviewer)."""
    from anshim.erasure.models import SightingStatus

    fields = kwargs.get("update_fields")
    if (kwargs.get("raw") or instance.case_id is None
            or instance.status != SightingStatus.CONFIRMED):
        return
    if fields is not None and "status" not in fields:
        return
    from anshim.cases.transitions import imply
    from anshim.cases.workflow import Implied

    imply(instance.case_id, Implied.ERASURE_STARTED, actor=instance.reviewed_by)


def on_takedown_saved(sender: Any, *, instance: Any, created: bool, **kwargs: Any) -> None:
    """A takedown notice drafted for a case: erasure work has started."""
    if not created or kwargs.get("raw") or instance.case_id is None:
        return
    from anshim.cases.transitions import imply
    from anshim.cases.workflow import Implied

    imply(instance.case_id, Implied.ERASURE_STARTED, actor=instance.created_by)
