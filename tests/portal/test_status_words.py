"""Issue 19 item 12: the status page speaks to a teenager, not in staff jargon; the register
button waits for the consent box."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from anshim.cases.models import CaseStatus

pytestmark = pytest.mark.django_db

STAFF_WORDS = ("분류 완료", "분류됨", "Triaged", "진행 중", "보류")


@pytest.mark.parametrize("status", list(CaseStatus))
def test_the_status_reads_as_a_sentence_for_the_victim(
        status: CaseStatus, signed_in_client: Any, portal_case: Any) -> None:
    case, _ = portal_case
    case.status = status
    case.save(update_fields=["status"])
    with CaptureQueriesContext(connection) as queries:
        page = signed_in_client.get("/status/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert len(queries) <= 40
    shown = page.split('id="progress-status">', 1)[1].split("</dd>", 1)[0]
    assert shown.endswith("요.") and not any(word in shown for word in STAFF_WORDS), shown
    english = signed_in_client.get("/status/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    shown_en = english.split('id="progress-status">', 1)[1].split("</dd>", 1)[0]
    assert shown_en != str(status.label) and len(shown_en.split()) >= 6


def test_the_register_button_waits_for_the_consent_box() -> None:
    import anshim.portal

    script = (Path(anshim.portal.__file__).parent / "static/portal/fingerprint-page.js"
              ).read_text()
    assert "submit.disabled = busy || !ready || !consent.checked;" in script
    assert "updateSubmit(); });" in script  # ticking or unticking re-evaluates the button


def test_withdraw_everything_asks_once_more(signed_in_client: Any, portal_case: Any) -> None:
    case, _ = portal_case
    asked = signed_in_client.post("/status/withdraw/", {"everything": "1"},
                                  HTTP_ACCEPT_LANGUAGE="ko")
    body = asked.content.decode()
    assert asked.status_code == 200 and "모두 철회할까요?" in body
    assert 'name="confirmed" value="1"' in body
    assert case.consents.filter(withdrawn_at__isnull=True).exists()  # nothing withdrawn yet
    done = signed_in_client.post("/status/withdraw/", {"everything": "1", "confirmed": "1"})
    assert done.status_code == 302
    assert not case.consents.filter(withdrawn_at__isnull=True).exists()
