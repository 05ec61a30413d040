"""Migration 0005 encrypts typed text written in the clear before it (issue 17, item 2):
takedown notes and tombstone reasons become ciphertext, read back unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("erasure", "0004_fingerprint_provenance")


def test_existing_notes_and_reasons_are_encrypted(make_case: Any) -> None:
    case = make_case(consent=False)
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps
    platform = old.get_model("erasure", "Platform").objects.create(
        name="P", domains="p.test", channel="partner_api", webhook_url="http://p.test/h")
    request = old.get_model("erasure", "TakedownRequest").objects.create(
        case_id=case.pk, platform=platform, subject="s", body="b")
    old.get_model("erasure", "TakedownEvent").objects.create(
        request=request, to_state="sent", at=timezone.now(), note="담당자 홍길동 통화")
    bank = old.get_model("erasure", "Bank").objects.create(name="b")
    old.get_model("erasure", "Tombstone").objects.create(entry_id=1, bank=bank, seq=1,
                                                         reason="typed by staff")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    from anshim.erasure.models import Platform, TakedownEvent, Tombstone

    with connection.cursor() as cursor:
        cursor.execute("SELECT note FROM erasure_takedownevent")
        [(note,)] = cursor.fetchall()
        cursor.execute("SELECT reason FROM erasure_tombstone")
        [(reason,)] = cursor.fetchall()
    assert note.startswith("enc1:") and reason.startswith("enc1:")
    assert TakedownEvent.objects.get().note == "담당자 홍길동 통화"
    assert Tombstone.objects.get().reason == "typed by staff"
    assert Platform.objects.get().webhook_secret  # partner platforms can sign from now on
