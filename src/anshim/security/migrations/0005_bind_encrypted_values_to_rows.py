"""Bind every encrypted value to its row: re-encrypt with `app.model.column#pk` as the
associated data (issue 17: values could be swapped between rows undetected).

The key rotation code does the work (`rotation.reencrypt_all`, on the historical models of
this point), so this is exactly `anshim keys rotate --resume`: batched, each batch its own
locked transaction on PostgreSQL, safe to re-run after an interruption.
"""

from django.db import migrations


def bind(apps, schema_editor):
    from anshim.security import keyring, rotation
    from anshim.security.crypto import encrypted_fields

    fields = encrypted_fields(apps)
    report = rotation.reencrypt_all(keyring.get_keyring(), fields=fields)
    if report.misplaced:
        # A value bound to another row cannot be moved by this migration (it did not exist
        # before); say so rather than fail the upgrade.
        print(f"\n  Encrypted values in the wrong row, left untouched: {report.misplaced}")


class Migration(migrations.Migration):

    dependencies = [
        ("security", "0004_accountrequest"),
        ("cases", "0002_encrypt_override_reason"),
        ("experts", "0002_encrypted_reasons"),
        ("erasure", "0005_takedown_deliveries"),
        ("exchange", "0003_shares_platform_feedback"),
        ("portal", "0002_message_thread"),
        ("prevention", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(bind, migrations.RunPython.noop, elidable=True),
    ]
