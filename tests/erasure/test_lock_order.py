"""One lock order everywhere (issue 17, item 6; docs/erasure.md): the change-log lock and row
locks first, the audit head last. Withdrawing the fingerprint consent used to write its audit
entry (taking the audit head) before withdrawing the entries (taking the change-log lock):
the opposite of every bank writer. The concurrent proof is in test_concurrency.py
(PostgreSQL); this one checks the order on both databases through the audit chain itself."""

from __future__ import annotations

from typing import Any

import pytest

from anshim.cases.models import ConsentScope
from anshim.cases.services import withdraw_consent
from anshim.erasure.models import BankEntry, EntrySource, Tombstone
from anshim.erasure.services import register_fingerprints
from anshim.fingerprint import fingerprint_bytes
from anshim.security.models import AuditEntry

from .media import picture_bytes

pytestmark = pytest.mark.django_db


def test_withdrawing_the_fingerprint_consent_audits_after_the_bank_writes(
        bank: Any, make_case: Any, make_user: Any) -> None:
    case = make_case()
    for seed in (80, 81):
        register_fingerprints(bank, case=case, fingerprints=fingerprint_bytes(picture_bytes(seed)),
                              source=EntrySource.STAFF_EVIDENCE, actor=None)
    withdraw_consent(make_user("supervisor"), case, ConsentScope.REGISTER_FINGERPRINTS)
    assert not BankEntry.objects.filter(case=case).exists()
    assert Tombstone.objects.count() == 2
    seqs = dict(AuditEntry.objects.filter(action__in=["bank.entry.withdraw", "consent.withdraw"])
                .values_list("action", "seq").order_by("seq"))
    # Both bank withdrawals (change-log lock, then their audit entries) come before the
    # consent's audit entry: the audit head was not held while the change log was locked.
    assert seqs["bank.entry.withdraw"] < seqs["consent.withdraw"]
    assert [t.reason for t in Tombstone.objects.all()] == ["consent_withdrawn"] * 2
