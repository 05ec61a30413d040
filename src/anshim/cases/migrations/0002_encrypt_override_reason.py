"""TriageAssessment.override_reason becomes an encrypted field; existing plaintext rows are
encrypted in place (and decrypted again on the way back)."""

from typing import Any

from django.db import migrations

import anshim.security.crypto

TABLE = "cases_triageassessment"


def _plaintext_rows(schema_editor: Any) -> list[tuple[int, str]]:
    # Raw SQL: the historical model would try to decrypt these plaintext values.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, override_reason FROM {TABLE} "  # noqa: S608 - a constant table name
            "WHERE override_reason <> '' AND override_reason NOT LIKE 'enc1:%%'"
        )
        return list(cursor.fetchall())


def encrypt_existing(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("cases", "TriageAssessment")
    db = schema_editor.connection.alias
    for pk, plain in _plaintext_rows(schema_editor):
        # save() through the field, so the ciphertext is exactly what the model writes.
        row = model.objects.using(db).only("id").get(pk=pk)
        row.override_reason = plain
        row.save(update_fields=["override_reason"])


def decrypt_existing(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("cases", "TriageAssessment")
    db = schema_editor.connection.alias
    rows = [(r.pk, r.override_reason) for r in model.objects.using(db).exclude(override_reason="")]
    with schema_editor.connection.cursor() as cursor:
        for pk, plain in rows:
            cursor.execute(f"UPDATE {TABLE} SET override_reason = %s WHERE id = %s",  # noqa: S608
                           [plain, pk])


class Migration(migrations.Migration):

    dependencies = [
        ('cases', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='triageassessment',
            name='override_reason',
            field=anshim.security.crypto.EncryptedTextField(blank=True),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing),
    ]
