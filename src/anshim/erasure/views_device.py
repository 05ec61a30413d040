"""Registering a hotline victim's images on the center's device: the page runs the portal's
JavaScript engine (src/anshim/portal/static/portal/), so the pictures are fingerprinted in the
browser and never reach the server; only the hashes are posted here, as JSON, and registered
on the case once its consent to register fingerprints is checked."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from anshim.cases.consent import ConsentMissing, has_consent
from anshim.cases.models import Case, ConsentScope
from anshim.cases.services import audit
from anshim.portal.payload import json_error, read_fingerprint_json
from anshim.security.decorators import staff_required
from anshim.security.policy import Action, can, require

REGISTERED = "erasure.device.register"


def _strings() -> dict[str, str]:
    """What the portal's page script shows, worded for the center's device."""
    return {
        "working": _("Computing the fingerprint…"),
        "done": _("Fingerprint ready"),
        "failed": _("This file could not be read on this device."),
        "unsupported": _("This is not a photo or video this browser can open."),
        "image": _("Photo"),
        "video": _("Video"),
        "seconds": _("%(n)s seconds of video"),
        "too_many": _("Please choose at most %(n)s files at once."),
        "none_ready": _("Choose at least one photo or video first."),
        "consent": _("Tick the box to confirm the consent first."),
        "sending": _("Sending the fingerprints (not the photos)…"),
        "registered": _("Registered on the case: %(n)s. Nothing else was sent."),
        "network": _("The fingerprints could not be sent. Try again."),
        "preview": _("Preview, shown only in this browser"),
    }


def _case(request: HttpRequest, code: str) -> Case:
    case = get_object_or_404(Case, code=code)
    require(request.user, Action.REGISTER_ON_DEVICE, case)
    return case


@staff_required(Action.REGISTER_ON_DEVICE)
def register_page(request: HttpRequest, code: str) -> HttpResponse:
    from anshim.portal import services as portal

    case = _case(request, code)
    audit(actor=request.user, action="erasure.device.view", target=case, case=case,
          request=request)
    blocker = None
    if not has_consent(case, ConsentScope.REGISTER_FINGERPRINTS):
        blocker = _("The victim's consent to register fingerprints is not recorded on this "
                    "case. Record it on the case page first (with a guardian's where needed).")
    return render(request, "erasure/register_device.html", {
        "case": case, "blocker": blocker, "strings": _strings(),
        "max_items": portal.MAX_ITEMS, "max_frames": portal.MAX_FRAMES,
        "registered": len(portal.registered_md5s(case)),
    })


@require_POST
@staff_required(Action.REGISTER_ON_DEVICE)
def register_fingerprints(request: HttpRequest, code: str) -> JsonResponse:
    """The hashes from the page: JSON only; media is refused before it is read."""
    from anshim.erasure import services as bank_services
    from anshim.erasure.models import EntrySource
    from anshim.portal import services as portal

    case = _case(request, code)
    # A counselor may register on a case (REGISTER_ON_DEVICE) without managing banks: the
    # entry is then added by the system, and the audit row below names the counselor.
    bank_actor = request.user if can(request.user, Action.MANAGE_ERASURE) else None
    payload = read_fingerprint_json(request)
    if isinstance(payload, JsonResponse):
        return payload
    try:
        items = portal.validate_registration(payload)
        with transaction.atomic(durable=True):
            # Locked: two tabs sending the same files register each file once.
            Case.objects.select_for_update(no_key=True).get(pk=case.pk)
            bank = portal.portal_bank()
            known = portal.registered_md5s(case)
            entry_ids: list[int] = []
            for item in items:
                if item["md5"] in known:
                    continue
                known.add(item["md5"])
                # register_fingerprints checks the case's consent (ConsentMissing otherwise).
                entry = bank_services.register_fingerprints(
                    # The portal's JS engine made them: the same hash rows as the portal.
                    bank, case=case, fingerprints=portal._hash_values(item),
                    source=EntrySource.STAFF_EVIDENCE, actor=bank_actor,
                    label=f"center device {item['kind']}")
                entry_ids.append(entry.pk)
            audit(actor=request.user, action=REGISTERED, target=case, case=case,
                  request=request, reason=f"registered:{len(entry_ids)}")
    except ConsentMissing as exc:
        return json_error("no_consent", " ".join(exc.messages), 422)
    except ValidationError as exc:
        return json_error(exc.code or "invalid", " ".join(exc.messages), 422)
    return JsonResponse({"registered": len(entry_ids), "skipped": len(items) - len(entry_ids),
                         "entries": entry_ids, "total": len(known)}, status=201)
