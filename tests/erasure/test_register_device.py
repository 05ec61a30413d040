"""Registering a hotline victim's images on the center's device (issue 19 item 3): the page
uses the portal's JS engine; the endpoint takes fingerprints as JSON only, checks consent and
registers them on the case; media is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils import timezone

from anshim.erasure.models import BankEntry, EntrySource
from anshim.security.models import AuditEntry

pytestmark = pytest.mark.django_db

IMAGE = {"kind": "image", "md5": "0" * 31 + "1", "pdq": "ab" * 32, "quality": 90}


def _post(c: Any, code: str, body: Any, content_type: str = "application/json") -> Any:
    return c.post(f"/staff/erasure/cases/{code}/register/fingerprints/",
                  json.dumps(body) if content_type == "application/json" else body,
                  content_type=content_type)


@pytest.mark.parametrize("role", ["counselor", "erasure", "supervisor"])
def test_register_on_the_center_device(role: str, make_case: Any, make_user: Any,
                                       login_client: Any) -> None:
    case = make_case()  # with the consent to register fingerprints
    c = login_client(make_user(role))
    page = c.get(f"/staff/erasure/cases/{case.code}/register/").content.decode()
    assert "portal/fingerprint-page.js" in page and 'id="fp-form"' in page
    assert f"/staff/erasure/cases/{case.code}/register/fingerprints/" in page
    r = _post(c, case.code, {"consent": True, "items": [IMAGE]})
    assert r.status_code == 201, r.content
    assert r.json()["registered"] == 1
    entry = BankEntry.objects.get(case=case)
    assert entry.source == EntrySource.STAFF_EVIDENCE
    # Sending the same file again registers nothing twice.
    assert _post(c, case.code, {"consent": True, "items": [IMAGE]}).json()["registered"] == 0
    assert BankEntry.objects.filter(case=case).count() == 1
    assert AuditEntry.objects.filter(action="erasure.device.register").count() == 2


def test_consent_is_checked(make_case: Any, make_user: Any, login_client: Any) -> None:
    case = make_case(consent=False)
    c = login_client(make_user("counselor"))
    page = c.get(f"/staff/erasure/cases/{case.code}/register/").content.decode()
    assert 'id="fp-blocker"' in page and 'id="fp-form"' not in page and "동의" in page
    r = _post(c, case.code, {"consent": True, "items": [IMAGE]})
    assert r.status_code == 422 and r.json()["error"] == "no_consent"
    assert not BankEntry.objects.exists()
    # Withdrawn consent is no consent.
    from anshim.cases.models import Consent, ConsentGiver, ConsentScope

    Consent.objects.create(case=case, scope=ConsentScope.REGISTER_FINGERPRINTS,
                           given_by=ConsentGiver.VICTIM, granted_at=timezone.now(),
                           withdrawn_at=timezone.now())
    assert _post(c, case.code, {"consent": True, "items": [IMAGE]}).status_code == 422


def test_media_and_bad_input_are_refused(make_case: Any, make_user: Any,
                                         login_client: Any) -> None:
    case = make_case()
    c = login_client(make_user("erasure"))
    r = c.post(f"/staff/erasure/cases/{case.code}/register/fingerprints/",
               {"file": ("x.png", b"\x89PNG")})
    assert r.status_code == 415
    assert _post(c, case.code, "not json", content_type="text/plain").status_code == 415
    r = c.generic("POST", f"/staff/erasure/cases/{case.code}/register/fingerprints/",
                  b"{not json", content_type="application/json")
    assert r.status_code == 400
    for bad in ({"consent": False, "items": [IMAGE]}, {"consent": True, "items": []},
                {"consent": True, "items": [{**IMAGE, "pdq": "zz"}]}):
        r = _post(c, case.code, bad)
        assert r.status_code == 422 and r.json()["message"]
    assert not BankEntry.objects.exists()


@pytest.mark.parametrize("role", ["expert", "prevention", "admin"])
def test_other_roles_are_refused(role: str, make_case: Any, make_user: Any,
                                 login_client: Any) -> None:
    case = make_case()
    c = login_client(make_user(role))
    assert c.get(f"/staff/erasure/cases/{case.code}/register/").status_code == 403
    assert _post(c, case.code, {"consent": True, "items": [IMAGE]}).status_code == 403
    assert not BankEntry.objects.exists()
