"""`anshim reminders`: enqueue the expert reminders that are due (run it from cron).

Example crontab line (every 15 minutes; the worker `anshim db_worker` sends the e-mails)::

    */15 * * * * cd /srv/anshim && .venv/bin/anshim reminders --quiet
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from anshim.experts.tasks import schedule_due_reminders


class Command(BaseCommand):
    help = "Enqueue reminders for expert appointments starting within the next 24 hours."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Print nothing.")

    def handle(self, *args: Any, quiet: bool = False, **options: Any) -> None:
        count = schedule_due_reminders.call()
        if not quiet:
            self.stdout.write(f"{count} reminder(s) enqueued.")
