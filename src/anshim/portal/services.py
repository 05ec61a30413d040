"""What the portal does, as plain functions: reports, sign-in, progress, registration, withdrawal.

The portal acts on behalf of an anonymous victim, so the audit actor is None and the reason says
"victim portal". Registration and withdrawal go through the erasure app's bank services so that
consent checks, tombstones, the partner feed and running matchers all see the same thing.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from anshim.cases import consent as consent_rules
from anshim.cases.models import (
    AgeGroup,
    Case,
    Channel,
    ConsentGiver,
    ConsentScope,
    Notification,
    Person,
)
from anshim.portal.models import PortalMessage
from anshim.portal.passphrases import generate_passphrase, hash_passphrase, verify_passphrase

CENTER_HOTLINE = "1899-0000"  # fictitious; set per deployment in the center's configuration
PORTAL_BANK = "victim-portal"
MAX_ITEMS = 50  # media items in one registration
MAX_FRAMES = 3600  # one hour of video at one PDQ a second
MAX_REGISTRATION_BYTES = 2_000_000
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_HEX32 = re.compile(r"\A[0-9a-f]{32}\Z")
REASON = "victim portal"


def _audit(action: str, case: Case, request: HttpRequest | None, target: Any = None) -> None:
    from anshim.security import audit

    audit.record(actor=None, action=action, target=target, case=case, request=request, reason=REASON)


# --- Reports --------------------------------------------------------------------------------

def submit_report(data: dict[str, Any], *, request: HttpRequest | None = None) -> tuple[Case, str]:
    """Create a case from an anonymous report; return it with its one-time passphrase."""
    from anshim.cases import services as case_services
    from anshim.cases.triage import TriageFactors

    passphrase = generate_passphrase()
    danger = data.get("in_danger") in ("yes", "unsure")
    factors = TriageFactors(
        threat_to_spread=bool(data.get("threatened")),
        content_spreading=bool(data.get("content_spreading")),
        self_harm_risk=danger,
        offline_meeting_planned=bool(data.get("meeting_planned")),
        age_group=data.get("age_group") or AgeGroup.UNKNOWN,
        harm_types=tuple(data.get("harm_types") or ()),
    )
    details = [data.get("summary") or ""]
    if data.get("urls"):
        details.append(_("Where:") + "\n" + "\n".join(data["urls"]))
    if data.get("platforms"):
        details.append(_("Apps or sites:") + " " + data["platforms"])
    if danger:
        details.append(_("The victim said they may be in danger now."))
    detail = (data.get("contact_detail") or "").strip()
    with transaction.atomic():
        person = Person.objects.create(
            age_group=factors.age_group,
            contact_preference=data.get("contact_preference") or "portal",
            phone=detail if "@" not in detail else "",
            email=detail if "@" in detail else "",
            preferred_language=(getattr(request, "LANGUAGE_CODE", "ko") or "ko")[:8],
        )
        case = case_services.open_case(
            person=person,
            channel=Channel.PORTAL,
            harm_types=list(factors.harm_types),
            summary="\n\n".join(d for d in details if d),
            factors=factors,
            actor=None,
            request=request,
        )
        case.portal_passphrase_hash = hash_passphrase(passphrase)
        case.save(update_fields=["portal_passphrase_hash"])
        scopes = [ConsentScope.KEEP_DATA]
        if data.get("consent_contact_platforms"):
            scopes.append(ConsentScope.CONTACT_PLATFORMS)
        for scope in scopes:
            consent_rules.grant(case, scope, ConsentGiver.VICTIM, recorded_by=None, method="portal")
        case_services.add_event(case, "portal.report", _("Anonymous report through the portal"),
                                actor=None)
    return case, passphrase


def authenticate(code: str, passphrase: str) -> Case | None:
    from anshim.cases.codes import normalize

    try:
        normalized = normalize(code)
    except (ValueError, ValidationError):
        normalized = ""
    case = Case.objects.filter(code=normalized).first() if normalized else None
    stored = case.portal_passphrase_hash if case is not None else None
    if verify_passphrase(passphrase, stored) and case is not None:
        _audit("portal.sign_in", case, None)
        return case
    return None


# --- Status -----------------------------------------------------------------------------------

def case_progress(case: Case) -> dict[str, Any]:
    """What the victim sees: counts only, no staff names or notes."""
    from anshim.erasure.models import BankEntry

    progress: dict[str, Any] = {
        "status": case.get_status_display(),
        "registered": BankEntry.objects.filter(case=case).count(),
        "found": None, "requests_sent": None, "removed": None, "reuploads": None,
        "next_appointment": None,
    }
    try:
        from anshim.erasure.summary import case_summary  # the erasure workflow fills these
    except ImportError:
        pass
    else:
        summary = case_summary(case) or {}
        for key in ("found", "requests_sent", "removed", "reuploads"):
            progress[key] = summary.get(key)
    from anshim.experts.models import Appointment, AppointmentStatus

    nxt = (Appointment.objects.filter(assignment__case=case, status=AppointmentStatus.SCHEDULED,
                                      starts_at__gte=timezone.now())
           .order_by("starts_at").first())
    if nxt is not None:
        progress["next_appointment"] = {"starts_at": nxt.starts_at, "mode": nxt.get_mode_display(),
                                        "kind": nxt.expert.get_kind_display()}
    return progress


def messages_for(case: Case) -> list[PortalMessage]:
    return list(case.portal_messages.all())


def send_message(case: Case, body: str, *, request: HttpRequest | None = None) -> PortalMessage:
    from anshim.cases import services as case_services

    with transaction.atomic():
        msg = PortalMessage.objects.create(case=case, body=body)
        case_services.add_event(case, "portal.message", _("Message from the victim"), actor=None)
        recipients = {u for u in [case.lead_counselor, *case.counselors.all()] if u is not None}
        for user in recipients:
            Notification.objects.create(recipient=user, message=_("New message on case %(c)s")
                                        % {"c": case.code}, link=f"/staff/cases/{case.code}/")
        _audit("portal.message", case, request, msg)
    return msg


# --- On-device fingerprints -------------------------------------------------------------------

def registration_blocker(case: Case) -> str | None:
    """Why fingerprints cannot be registered yet (None when they can)."""
    if case.person.age_group == AgeGroup.UNDER_14:
        if not consent_rules.has_consent(case, ConsentScope.REGISTER_FINGERPRINTS):
            return _("Because you are under 14, a parent or legal guardian must also agree. "
                     "Your counselor will help you with this.")
    return None


def _validate_items(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        raise ValidationError(_("The request must contain a list of items."))
    if payload.get("consent") is not True:
        raise ValidationError(_("Please confirm that we may use these fingerprints to find copies."))
    items = payload["items"]
    if not 1 <= len(items) <= MAX_ITEMS:
        raise ValidationError(_("Send between 1 and %(n)d items at once.") % {"n": MAX_ITEMS})
    clean: list[dict[str, Any]] = []
    for i, item in enumerate(items, start=1):
        where = _("item %(i)d") % {"i": i}
        if not isinstance(item, dict) or item.get("kind") not in ("image", "video"):
            raise ValidationError(_("%(w)s: unknown kind.") % {"w": where})
        md5 = str(item.get("md5", "")).lower()
        if not _HEX32.match(md5):
            raise ValidationError(_("%(w)s: the MD5 is not 32 hexadecimal characters.") % {"w": where})
        if item["kind"] == "image":
            pdq = str(item.get("pdq", "")).lower()
            quality = item.get("quality")
            if not _HEX64.match(pdq):
                raise ValidationError(_("%(w)s: the PDQ hash is not 64 hexadecimal characters.")
                                      % {"w": where})
            if not isinstance(quality, int) or not 0 <= quality <= 100:
                raise ValidationError(_("%(w)s: quality must be 0–100.") % {"w": where})
            clean.append({"kind": "image", "md5": md5, "pdq": pdq, "quality": quality})
        else:
            frames = item.get("frames")
            if not isinstance(frames, list) or not 1 <= len(frames) <= MAX_FRAMES:
                raise ValidationError(_("%(w)s: a video needs 1 to %(n)d frames.")
                                      % {"w": where, "n": MAX_FRAMES})
            out = []
            for f in frames:
                pdq = str(f.get("pdq", "") if isinstance(f, dict) else "").lower()
                q = f.get("quality") if isinstance(f, dict) else None
                ts = f.get("timestamp") if isinstance(f, dict) else None
                if not _HEX64.match(pdq) or not isinstance(q, int) or not 0 <= q <= 100 \
                        or not isinstance(ts, int | float) or ts < 0:
                    raise ValidationError(_("%(w)s: a video frame is malformed.") % {"w": where})
                out.append({"pdq": pdq, "quality": q, "timestamp": float(ts)})
            clean.append({"kind": "video", "md5": md5, "frames": out})
    return clean


def register_from_device(case: Case, payload: Any, *, request: HttpRequest | None = None
                         ) -> dict[str, Any]:
    """Register fingerprints computed on the victim's device into the portal bank."""
    from anshim.erasure import banks

    items = _validate_items(payload)
    blocker = registration_blocker(case)
    if blocker:
        raise ValidationError(blocker)
    with transaction.atomic():
        # Ticking the box on the page is the victim's consent to register fingerprints.
        consent_rules.grant(case, ConsentScope.REGISTER_FINGERPRINTS, ConsentGiver.VICTIM,
                            recorded_by=None, method="portal")
        bank = banks.portal_bank()
        entry_ids = [
            banks.register_device_item(bank, case=case, item=item, request=request).pk
            for item in items
        ]
    return {"registered": len(entry_ids), "entries": entry_ids}


def entries_for(case: Case) -> list[Any]:
    from anshim.erasure.models import BankEntry

    return list(BankEntry.objects.filter(case=case).order_by("added_at"))


def active_consents(case: Case) -> list[str]:
    return sorted({c.scope for c in case.consents.filter(withdrawn_at__isnull=True,
                                                          given_by=ConsentGiver.VICTIM)})


def withdraw(case: Case, *, entry_ids: list[int], scopes: list[str], everything: bool,
             request: HttpRequest | None = None) -> dict[str, int]:
    """Withdraw fingerprints and/or consents; fingerprints leave matching at once."""
    from anshim.erasure import banks
    from anshim.erasure.models import BankEntry

    if everything:
        entry_ids = list(BankEntry.objects.filter(case=case).values_list("pk", flat=True))
        scopes = active_consents(case)
    unknown = set(scopes) - set(ConsentScope.values)
    if unknown:
        raise ValidationError(_("Unknown permission."))
    own = set(BankEntry.objects.filter(case=case, pk__in=entry_ids).values_list("pk", flat=True))
    if own != set(entry_ids):
        raise ValidationError(_("Some of these fingerprints do not belong to your case."))
    withdrawn_consents = 0
    with transaction.atomic():
        for entry_id in sorted(own):
            banks.withdraw_entry(entry_id, reason=REASON, actor=None, request=request)
        for scope in scopes:
            withdrawn_consents += consent_rules.withdraw(case, scope, ConsentGiver.VICTIM)
        if own and ConsentScope.REGISTER_FINGERPRINTS in scopes:
            pass  # entries above were already withdrawn with the consent
        elif ConsentScope.REGISTER_FINGERPRINTS in scopes:
            for entry_id in BankEntry.objects.filter(case=case).values_list("pk", flat=True):
                banks.withdraw_entry(entry_id, reason=REASON, actor=None, request=request)
                own.add(entry_id)
        _audit("portal.withdraw", case, request)
    return {"n": len(own), "c": withdrawn_consents}
