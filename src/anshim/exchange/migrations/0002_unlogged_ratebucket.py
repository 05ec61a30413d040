"""PostgreSQL: keep the rate-limit buckets out of the write-ahead log.

Every API request updates its partner's bucket. As an ordinary table, each of those updates is
a commit that waits for a WAL flush (fsync); an UNLOGGED table skips the log. What it gives
up is harmless for a rate limit: after a crash the table is emptied (buckets start full again)
and standbys do not get it. Other databases: nothing to do.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def _set(logged: bool) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(apps.get_model("exchange", "RateBucket")._meta.db_table)
        schema_editor.execute(f"ALTER TABLE {table} SET {'LOGGED' if logged else 'UNLOGGED'}")

    return run


class Migration(migrations.Migration):
    dependencies = [("exchange", "0001_initial")]

    operations = [migrations.RunPython(_set(logged=False), _set(logged=True))]
