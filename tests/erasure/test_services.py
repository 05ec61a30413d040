"""Banks, registration (consent checked), withdrawal (deleted, tombstone, change log)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import translation

from anshim.cases.consent import ConsentMissing
from anshim.cases.models import ConsentGiver, ConsentScope, TimelineEvent
from anshim.erasure import services
from anshim.erasure.models import (
    Bank,
    BankChange,
    BankEntry,
    ChangeOp,
    EntrySource,
    Fingerprint,
    FingerprintKind,
    MediaKind,
    Tombstone,
)
from anshim.erasure.services import HashValue, register_fingerprints, withdraw_entry
from anshim.fingerprint.engine import fingerprint_bytes

PDQ = "f" * 64
MD5 = "0123456789abcdef" * 2

pytestmark = pytest.mark.django_db


def hashes(pdq: str = PDQ) -> list[HashValue]:
    return [HashValue(FingerprintKind.PDQ, pdq), HashValue(FingerprintKind.MD5, MD5)]


def test_bank_threshold_is_validated() -> None:
    with pytest.raises(ValidationError):
        services.create_bank("too-wide", threshold=65)
    assert not Bank.objects.filter(name="too-wide").exists()
    assert services.create_bank("max", threshold=64).threshold == 64


def test_bank_changes_are_logged_in_increasing_order(bank: Bank) -> None:
    services.update_bank(bank, threshold=20)
    ops = list(BankChange.objects.filter(bank=bank).values_list("seq", "op"))
    assert [op for _, op in ops] == [ChangeOp.CONFIG, ChangeOp.CONFIG]
    assert ops[0][0] < ops[1][0]


def test_update_bank_refuses_unknown_fields(bank: Bank) -> None:
    with pytest.raises(ValueError):
        services.update_bank(bank, name="other")


def test_register_image_keeps_all_hashes_and_the_consent(bank: Bank, make_case, picture) -> None:
    case = make_case()
    fp = fingerprint_bytes(picture(1))
    entry = register_fingerprints(bank, case=case, fingerprints=fp,
                                  source=EntrySource.STAFF_EVIDENCE, actor=None, label="ev-1")
    assert entry.media_kind == MediaKind.IMAGE
    assert entry.consent is not None
    assert entry.consent.scope == ConsentScope.REGISTER_FINGERPRINTS
    assert entry.consent.given_by == ConsentGiver.VICTIM
    kinds = dict(entry.fingerprints.values_list("kind", "value"))
    assert kinds == {"pdq": fp.pdq, "md5": fp.md5, "sha256": fp.sha256}
    assert BankChange.objects.filter(entry_id=entry.pk, op=ChangeOp.ADD).exists()
    assert TimelineEvent.objects.filter(case=case, kind="bank.entry_added").exists()


def test_register_dihedral_variants_as_extra_pdq_rows(bank: Bank, picture) -> None:
    fp = fingerprint_bytes(picture(1), dihedral=True)
    entry = register_fingerprints(bank, fingerprints=fp, source=EntrySource.STAFF_EVIDENCE,
                                  actor=None)
    variants = set(entry.fingerprints.filter(kind="pdq").values_list("variant", flat=True))
    assert len(variants) == 8 and "original" in variants and "rotate90" in variants


def test_register_without_consent_is_refused_with_a_message(bank: Bank, make_case) -> None:
    case = make_case(consent=False)
    with translation.override("en"), pytest.raises(ConsentMissing) as info:
        register_fingerprints(bank, case=case, fingerprints=hashes(),
                              source=EntrySource.STAFF_EVIDENCE, actor=None)
    with translation.override("en"):
        assert "Register fingerprints" in info.value.text
    assert not BankEntry.objects.exists()
    assert not Fingerprint.objects.exists()


def test_register_for_a_child_under_14_needs_the_guardian_too(bank: Bank, make_case) -> None:
    case = make_case(age_group="under14")
    with pytest.raises(ConsentMissing) as info:
        register_fingerprints(bank, case=case, fingerprints=hashes(),
                              source=EntrySource.STAFF_EVIDENCE, actor=None)
    assert info.value.needs_guardian


def test_register_rejects_malformed_hashes(bank: Bank) -> None:
    with pytest.raises(ValidationError):
        register_fingerprints(bank, fingerprints=[HashValue("pdq", "xyz")],
                              source=EntrySource.IMPORT, actor=None)
    with pytest.raises(ValidationError):
        register_fingerprints(bank, fingerprints=[], source=EntrySource.IMPORT, actor=None)


def test_staff_need_manage_erasure(bank: Bank, make_user) -> None:
    with pytest.raises(PermissionDenied):
        register_fingerprints(bank, fingerprints=hashes(), source=EntrySource.STAFF_EVIDENCE,
                              actor=make_user("counselor"))
    entry = register_fingerprints(bank, fingerprints=hashes(), source=EntrySource.STAFF_EVIDENCE,
                                  actor=make_user("erasure"))
    assert entry.added_by is not None
    with pytest.raises(PermissionDenied):
        withdraw_entry(entry.pk, actor=make_user("prevention"))
    assert withdraw_entry(entry.pk, actor=make_user("supervisor")) is not None


def test_withdrawal_deletes_and_leaves_a_tombstone(bank: Bank, make_case) -> None:
    case = make_case()
    entry = register_fingerprints(bank, case=case, fingerprints=hashes(),
                                  source=EntrySource.VICTIM_PORTAL, actor=None)
    entry_id = entry.pk
    tomb = withdraw_entry(entry_id, actor=None, reason="victim withdrew")
    assert tomb is not None
    assert not BankEntry.objects.filter(pk=entry_id).exists()
    assert not Fingerprint.objects.filter(value=PDQ).exists()
    assert Tombstone.objects.get(entry_id=entry_id).reason == "victim withdrew"
    changes = list(BankChange.objects.filter(entry_id=entry_id).values_list("op", "seq"))
    assert [op for op, _ in changes] == [ChangeOp.ADD, ChangeOp.WITHDRAW]
    assert tomb.seq == changes[1][1]
    event = TimelineEvent.objects.get(case=case, kind="bank.entry_withdrawn")
    assert event.data["entry"] == entry_id and PDQ not in str(event.data)
    # Idempotent: a second withdrawal does nothing.
    assert withdraw_entry(entry_id, actor=None) is None
    assert Tombstone.objects.filter(entry_id=entry_id).count() == 1


def test_withdrawing_an_unknown_entry_fails_and_changes_nothing(bank: Bank) -> None:
    entry = register_fingerprints(bank, fingerprints=hashes(), source=EntrySource.IMPORT,
                                  actor=None)
    with pytest.raises(BankEntry.DoesNotExist):
        services.withdraw_entries([entry.pk, 999_999], actor=None)
    assert BankEntry.objects.filter(pk=entry.pk).exists()
    assert not Tombstone.objects.exists()


def test_withdraw_case_entries(bank: Bank, make_case) -> None:
    case, other = make_case(), make_case()
    for pdq in ("a" * 64, "b" * 64):
        register_fingerprints(bank, case=case, fingerprints=hashes(pdq),
                              source=EntrySource.VICTIM_PORTAL, actor=None)
    kept = register_fingerprints(bank, case=other, fingerprints=hashes("c" * 64),
                                 source=EntrySource.VICTIM_PORTAL, actor=None)
    assert len(services.withdraw_case_entries(case, actor=None)) == 2
    assert list(BankEntry.objects.values_list("pk", flat=True)) == [kept.pk]
    assert services.withdraw_case_entries(case, actor=None) == []


def test_tombstone_ids_are_never_reused(bank: Bank) -> None:
    first = register_fingerprints(bank, fingerprints=hashes(), source=EntrySource.IMPORT,
                                  actor=None)
    withdraw_entry(first.pk, actor=None)
    second = register_fingerprints(bank, fingerprints=hashes(), source=EntrySource.IMPORT,
                                   actor=None)
    assert second.pk > first.pk


def test_demo_banks_are_idempotent() -> None:
    from anshim.erasure.demo import DEMO_BANKS, create_demo_banks

    assert len(create_demo_banks()) == len(DEMO_BANKS)
    assert create_demo_banks() == []


def test_admin_configures_banks_but_never_deletes_them() -> None:
    from django.contrib import admin

    from anshim.erasure.models import Bank as BankModel

    model_admin = admin.site._registry[BankModel]
    assert model_admin.has_delete_permission(None) is False
    assert "threshold" in model_admin.fields


def test_staff_withdrawing_fingerprint_consent_withdraws_the_case_entries(
        db: Any, make_user: Any) -> None:
    from anshim.cases import consent as consent_rules
    from anshim.cases import services as case_services
    from anshim.cases.models import Case, ConsentScope, Person
    from anshim.erasure.models import BankEntry, Tombstone
    from anshim.erasure.services import HashValue, create_bank, register_fingerprints

    counselor = make_user("counselor")
    case = Case.objects.create(code="AN-WDRW-1X", person=Person.objects.create(age_group="adult"),
                               channel="phone", lead_counselor=counselor)
    consent_rules.grant(case, ConsentScope.REGISTER_FINGERPRINTS, "victim", recorded_by=counselor)
    bank = create_bank("victims-wd", purpose="victim_images", actor=None)
    entry = register_fingerprints(bank, case=case, source="staff_evidence", actor=None,
                                  fingerprints=[HashValue(kind="md5", value="0" * 32)])
    case_services.withdraw_consent(counselor, case, ConsentScope.REGISTER_FINGERPRINTS)
    assert not BankEntry.objects.filter(pk=entry.pk).exists()
    assert Tombstone.objects.filter(entry_id=entry.pk).exists()
