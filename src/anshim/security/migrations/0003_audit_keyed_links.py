"""Re-link the audit chain with the keyed hash (HMAC-SHA256 under the audit key).

The old chain (plain SHA-256) is checked first: if it is already broken the migration stops,
so re-linking can never bless entries that were edited or removed before the key existed.
"""

from django.db import migrations

from anshim.security import audit, audit_triggers

FIELDS = audit.HASHED_FIELDS


def relink(apps, schema_editor):
    AuditEntry = apps.get_model("security", "AuditEntry")
    AuditHead = apps.get_model("security", "AuditHead")
    alias = schema_editor.connection.alias
    entries = list(AuditEntry.objects.using(alias).order_by("seq"))
    if not entries:
        return
    prev_hash = audit.GENESIS_HASH
    for expected_seq, entry in enumerate(entries, start=entries[0].seq):
        values = {name: getattr(entry, name) for name in FIELDS}
        if (entry.seq != expected_seq or entry.prev_hash != prev_hash
                or audit.plain_sha256(values) != entry.entry_hash):
            raise RuntimeError(
                f"The audit chain is already broken at seq {entry.seq} (entry id {entry.pk}): "
                "investigate with `anshim audit verify` on the previous release before "
                "migrating; nothing was changed.")
        prev_hash = entry.entry_hash
    head = AuditHead.objects.using(alias).filter(pk=audit.HEAD_PK).first()
    if entries[0].seq != 1 or head is None or head.seq != entries[-1].seq:
        raise RuntimeError("The audit log does not start at seq 1 or its head does not match "
                           "its last entry: nothing was changed.")
    key = audit.audit_key(create=True)
    for sql in audit_triggers.DROP.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)
    prev_hash = audit.GENESIS_HASH
    for entry in entries:
        entry.prev_hash = prev_hash
        values = {name: getattr(entry, name) for name in FIELDS}
        entry.entry_hash = audit.compute_hash(values, key)
        entry.save(update_fields=["prev_hash", "entry_hash"])
        prev_hash = entry.entry_hash
    head.last_hash = prev_hash
    head.save(update_fields=["last_hash"])
    for sql in audit_triggers.CREATE.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ("security", "0002_audit"),
    ]

    operations = [
        migrations.RunPython(relink, migrations.RunPython.noop),
    ]
