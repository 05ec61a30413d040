"""The supervisor's triage-override reason is personal data: encrypted at rest, migrated from
plaintext, and kept out of the audit log (issue 17 item 2)."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps as global_apps
from django.db import connection

from anshim.cases import services
from anshim.cases.models import TriageAssessment
from anshim.security.models import AuditEntry

REASON = "Called by her aunt 이순자: the threat is real"


def _raw(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT override_reason FROM cases_triageassessment WHERE id = %s", [pk])
        return str(cursor.fetchone()[0])


def test_override_reason_encrypted_and_not_audited(make_case: Any, supervisor: Any) -> None:
    case = make_case()
    assessment = services.override_triage(supervisor, case, "urgent", REASON)
    assert TriageAssessment.objects.get(pk=assessment.pk).override_reason == REASON
    assert _raw(assessment.pk).startswith("enc1:") and "이순자" not in _raw(assessment.pk)
    entry = AuditEntry.objects.get(action="triage.override")
    assert entry.reason == "" and entry.target_pk == str(assessment.pk)
    assert not AuditEntry.objects.filter(reason__contains="이순자").exists()


@pytest.mark.django_db
def test_migration_encrypts_existing_plaintext_rows(make_case: Any) -> None:
    case = make_case()
    assessment = case.assessments.get()
    with connection.cursor() as cursor:  # a row written before the field was encrypted
        cursor.execute("UPDATE cases_triageassessment SET override_reason = %s WHERE id = %s",
                       [REASON, assessment.pk])
    migration = importlib.import_module("anshim.cases.migrations.0002_encrypt_override_reason")
    # The functions use only the editor's connection (a real schema editor cannot open inside
    # the test's transaction on SQLite).
    editor = SimpleNamespace(connection=connection)
    migration.encrypt_existing(global_apps, editor)
    assert _raw(assessment.pk).startswith("enc1:")
    assert TriageAssessment.objects.get(pk=assessment.pk).override_reason == REASON
    migration.decrypt_existing(global_apps, editor)  # and back
    assert _raw(assessment.pk) == REASON
