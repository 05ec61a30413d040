"""`anshim worker`: django-tasks-db's `db_worker` that never exits on a busy database.

The options are `db_worker`'s (`--queue-name '*'`, `--batch`, `--interval`...). In production
mode it refuses to start with development defaults (anshim.security.startup).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django_tasks_db.management.commands import db_worker

from anshim.config import worker
from anshim.security.startup import InsecureStartError, refuse_insecure_start


class Command(db_worker.Command):
    help = ("Run background tasks (reminders, webhooks, notices); retries with backoff when "
            "the database is busy instead of exiting.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            refuse_insecure_start("task worker")
        except InsecureStartError as exc:
            raise CommandError(str(exc)) from exc
        # db_worker builds its Worker by name inside handle: give it ours.
        original = db_worker.Worker
        db_worker.Worker = worker.ResilientWorker  # type: ignore[misc]
        try:
            super().handle(*args, **options)
        finally:
            db_worker.Worker = original  # type: ignore[misc]
