"""Portal services: reports open triaged cases, registration validates and banks hashes,
withdrawal removes them and leaves tombstones."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from anshim.cases.models import AgeGroup, ConsentGiver, ConsentScope, RiskLevel
from anshim.portal import services

pytestmark = pytest.mark.django_db

MD5 = "0123456789abcdef0123456789abcdef"
PDQ = "f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22"


def report(**extra):
    data = {"harm_types": ["distribution"], "in_danger": "no", "age_group": "14to17",
            "contact_preference": "portal", "consent_keep_data": True, "urls": []}
    return services.submit_report({**data, **extra})


def image(md5=MD5, pdq=PDQ, quality=90):
    return {"kind": "image", "md5": md5, "pdq": pdq, "quality": quality}


def video(md5="f" * 32, n=3):
    return {"kind": "video", "md5": md5,
            "frames": [{"pdq": PDQ, "quality": 80, "timestamp": float(i)} for i in range(n)]}


def test_report_opens_a_triaged_portal_case_with_hashed_passphrase():
    new = report(threatened=True, urls=["https://example.com/x"], platforms="X",
                 summary="hello", consent_contact_platforms=True)
    case = new.case
    assert case.channel == "portal" and case.status == "triaged"
    assert case.risk_level == RiskLevel.URGENT and case.response_due is not None
    assert case.harm_types == ["distribution"]
    assert case.portal_passphrase_hash.startswith("argon2$")
    assert new.passphrase not in case.portal_passphrase_hash
    assert "https://example.com/x" in case.summary and "hello" in case.summary
    assert services.active_consents(case) == sorted(
        [ConsentScope.KEEP_DATA, ConsentScope.CONTACT_PLATFORMS])
    assert case.assessments.count() == 1
    kinds = set(case.timeline.values_list("kind", flat=True))
    assert {"case.created", "triage.assessed", "consent.granted"} <= kinds


def test_report_without_risk_is_low_and_danger_is_urgent():
    assert report(harm_types=["unsolicited"]).case.risk_level == RiskLevel.LOW
    assert report(harm_types=["unsolicited"], in_danger="unsure").case.risk_level == \
        RiskLevel.URGENT


def test_report_contact_details_are_kept_only_for_the_chosen_channel():
    case = report(contact_preference="sms", contact_detail="010-1234-5678").case
    assert case.person.phone == "010-1234-5678" and case.person.email == ""
    case = report(contact_preference="portal", contact_detail="010-1234-5678").case
    assert case.person.phone == ""


def test_report_is_audited():
    from anshim.security.models import AuditEntry

    case = report().case
    assert AuditEntry.objects.filter(case_id=case.pk, action="case.create",
                                     actor_id=None).exists()


def test_authenticate():
    new = report()
    assert services.authenticate(new.case.code.lower(), new.passphrase) == new.case
    assert services.authenticate(new.case.code, "WRONG") is None
    assert services.authenticate("AN-2222-22", new.passphrase) is None
    assert services.authenticate("", "") is None


@pytest.mark.parametrize("payload, code", [
    (None, "no_items"), ([], "no_items"), ({"items": "x", "consent": True}, "no_items"),
    ({"items": [image()]}, "no_consent"), ({"items": [image()], "consent": "yes"}, "no_consent"),
    ({"items": [], "consent": True}, "item_count"),
    ({"items": [image()] * (services.MAX_ITEMS + 1), "consent": True}, "item_count"),
    ({"items": [{"kind": "audio"}], "consent": True}, "bad_kind"),
    ({"items": ["image"], "consent": True}, "bad_kind"),
    ({"items": [image(md5="xyz")], "consent": True}, "bad_md5"),
    ({"items": [image(md5=12345)], "consent": True}, "bad_md5"),
    ({"items": [image(pdq="g" * 64)], "consent": True}, "bad_pdq"),
    ({"items": [image(pdq=PDQ + "0")], "consent": True}, "bad_pdq"),
    ({"items": [image(pdq=None)], "consent": True}, "bad_pdq"),
    ({"items": [image(quality=101)], "consent": True}, "bad_quality"),
    ({"items": [image(quality=True)], "consent": True}, "bad_quality"),
    ({"items": [image(quality=50.5)], "consent": True}, "bad_quality"),
    ({"items": [{**video(), "frames": []}], "consent": True}, "frame_count"),
    ({"items": [{**video(), "frames": "x"}], "consent": True}, "frame_count"),
    ({"items": [{**video(), "frames": [1, 2]}], "consent": True}, "bad_frame"),
    ({"items": [{**video(), "frames": [{"pdq": PDQ, "quality": 5, "timestamp": -1}]}],
      "consent": True}, "bad_frame"),
    ({"items": [{**video(), "frames": [{"pdq": PDQ, "quality": 5, "timestamp": float("nan")}]}],
      "consent": True}, "bad_frame"),
    ({"items": [{**video(), "frames": [{"pdq": PDQ, "quality": 5, "timestamp": "1"}]}],
      "consent": True}, "bad_frame"),
    ({"items": [{**video(), "frames": [{"pdq": PDQ, "quality": 5}] * (services.MAX_FRAMES + 1)}],
      "consent": True}, "frame_count"),
])
def test_validate_registration_rejects_malformed_payloads(payload, code):
    with pytest.raises(ValidationError) as info:
        services.validate_registration(payload)
    assert info.value.code == code
    assert info.value.messages[0]


def test_validate_registration_normalises_case():
    (item,) = services.validate_registration(
        {"consent": True, "items": [image(md5=MD5.upper(), pdq=PDQ.upper())]})
    assert item == image()


def test_register_banks_hashes_with_consent_and_skips_duplicates():
    from anshim.erasure.models import Bank, BankChange, Fingerprint

    case = report().case
    result = services.register_from_device(case, {"consent": True, "items": [image(), video()]})
    assert result["registered"] == 2 and result["skipped"] == 0
    bank = Bank.objects.get(name=services.PORTAL_BANK)
    entries = services.entries_for(case)
    assert [e.media_kind for e in entries] == ["image", "video"]
    assert all(e.bank == bank and e.source == "victim_portal" for e in entries)
    assert all(e.consent.scope == ConsentScope.REGISTER_FINGERPRINTS for e in entries)
    assert all(e.label in ("portal image", "portal video") for e in entries)
    kinds = sorted(Fingerprint.objects.filter(entry__case=case).values_list("kind", flat=True))
    assert kinds == ["md5", "md5", "pdq", "vpdq", "vpdq", "vpdq"]
    frames = Fingerprint.objects.filter(entry=entries[1], kind="vpdq").order_by("frame_number")
    assert [(f.frame_number, f.timestamp) for f in frames] == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert BankChange.objects.filter(op="add").count() == 2
    again = services.register_from_device(case, {"consent": True, "items": [image()]})
    assert again == {"registered": 0, "skipped": 1, "entries": [], "total": 2}


def test_under_14_needs_a_guardian_before_portal_registration():
    from anshim.cases import consent

    case = report(age_group=AgeGroup.UNDER_14).case
    assert services.registration_blocker(case)
    with pytest.raises(ValidationError) as info:
        services.register_from_device(case, {"consent": True, "items": [image()]})
    assert info.value.code == "guardian_needed"
    consent.grant(case, ConsentScope.REGISTER_FINGERPRINTS, ConsentGiver.GUARDIAN,
                  recorded_by=None, method="written")
    assert services.registration_blocker(case) is None
    assert services.register_from_device(case, {"consent": True, "items": [image()]})[
        "registered"] == 1


def test_withdraw_some_then_everything():
    from anshim.erasure.models import BankEntry, Tombstone

    case = report().case
    services.register_from_device(case, {"consent": True, "items": [image(), video()]})
    first, second = [e.pk for e in services.entries_for(case)]
    done = services.withdraw(case, entry_ids=[first], scopes=[])
    assert done.fingerprints == 1 and done.consents == 0
    assert list(BankEntry.objects.filter(case=case).values_list("pk", flat=True)) == [second]
    assert Tombstone.objects.filter(entry_id=first).exists()
    done = services.withdraw(case, entry_ids=[], scopes=[], everything=True)
    assert done.fingerprints == 1 and done.consents == 2
    assert not BankEntry.objects.filter(case=case).exists()
    assert services.active_consents(case) == []


def test_withdrawing_the_fingerprint_consent_withdraws_every_fingerprint():
    from anshim.erasure.models import BankEntry

    case = report().case
    services.register_from_device(case, {"consent": True, "items": [image(), video()]})
    done = services.withdraw(case, entry_ids=[], scopes=[ConsentScope.REGISTER_FINGERPRINTS])
    assert done.fingerprints == 2 and done.consents == 1
    assert not BankEntry.objects.filter(case=case).exists()
    assert services.active_consents(case) == [ConsentScope.KEEP_DATA]


def test_withdraw_refuses_other_cases_entries_and_unknown_scopes():
    mine, theirs = report().case, report().case
    services.register_from_device(theirs, {"consent": True, "items": [image()]})
    (entry,) = services.entries_for(theirs)
    with pytest.raises(ValidationError):
        services.withdraw(mine, entry_ids=[entry.pk], scopes=[])
    with pytest.raises(ValidationError):
        services.withdraw(mine, entry_ids=[], scopes=["everything_please"])
    with pytest.raises(ValidationError):
        services.withdraw(mine, entry_ids=[], scopes=[])
    assert services.entries_for(theirs) == [entry]


def test_send_message_notifies_assigned_counselors(make_user):
    from anshim.cases.models import Notification

    case = report().case
    counselor = make_user("counselor")
    case.counselors.add(counselor)
    msg = services.send_message(case, "Can you call me after school?")
    assert services.messages_for(case) == [msg]
    note = Notification.objects.get(recipient=counselor)
    assert case.code in note.message and "after school" not in note.message


def test_case_progress_counts_and_next_appointment():
    case = report().case
    services.register_from_device(case, {"consent": True, "items": [image()]})
    progress = services.case_progress(case)
    assert progress["registered"] == 1 and progress["next_appointment"] is None


def test_report_summary_is_labelled_in_the_centers_language():
    """Counselors read the summary on the case page: its labels are Korean, not "Where:"."""
    from django.utils import translation

    with translation.override("en"):  # a victim who reported in English
        case = report(urls=["https://example.com/x"], platforms="앱", in_danger="yes").case
    summary = case.summary
    assert "어디에서:\nhttps://example.com/x" in summary and "앱 또는 사이트: 앱" in summary
    assert "지금 위험한가요: 예" in summary
    assert "Where:" not in summary and "Apps or sites:" not in summary


def test_withdraw_rows_tell_items_apart():
    case = report().case
    services.register_from_device(case, {"consent": True, "items": [
        image(), image(md5="e" * 32, pdq="0a0b0c0d" + "1" * 56), video()]})
    rows = services.withdraw_rows(case)
    assert [(r.number, r.media_kind, r.short_id) for r in rows] == [
        (1, "image", PDQ[:8].upper()), (2, "image", "0A0B0C0D"), (3, "video", PDQ[:8].upper())]
    assert rows[2].frames == 3
