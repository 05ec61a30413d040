"""`anshim periodic [--every SECONDS] [--once]`: the center's clock, without cron.

Every `--every` seconds (default 15 minutes) it enqueues the periodic work for the task worker
(`anshim db_worker`): expert appointment reminders that are due, and the erasure tick (due
monitoring scans, re-checks of open sightings, re-sending of unanswered takedown requests).
Once a night (the first tick after 03:00 in the center's time zone, `reports.tasks`) it also
enqueues the rebuild of the closed months' report summaries, which catches bulk writes that
sent no signal.
`make run` starts it beside the worker; a deployment may run it as a service, or call
`anshim reminders` and `anshim erasure_jobs --enqueue` from cron instead.

Each tick also anchors the audit chain: when its head moved, the head is signed with the
evidence key and appended to the anchor file (`anshim.security.audit.anchor_head`), so a log
cut short or rewritten later is caught by `anshim audit verify`.

Only enqueueing (and one signature) happens here, so a tick is cheap and a slow scan never
delays the next tick; a tick that fails (the database restarting, say) is reported and
retried at the next one.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, close_old_connections

from anshim.security import audit
from anshim.security.startup import InsecureStartError, refuse_insecure_start


def tick() -> dict[str, str]:
    """Enqueue one round of periodic work; returns the ids of the enqueued tasks."""
    from anshim.erasure.tasks import erasure_tick
    from anshim.experts.tasks import schedule_due_reminders
    from anshim.reports.tasks import rebuild_due, rebuild_summaries

    ids = {
        "reminders": str(schedule_due_reminders.enqueue().id),
        "erasure": str(erasure_tick.enqueue().id),
    }
    if rebuild_due():
        ids["summaries"] = str(rebuild_summaries.enqueue().id)
    return ids


class Command(BaseCommand):
    help = ("Enqueue reminders and the erasure jobs every few minutes, the report summaries' "
            "rebuild nightly (a built-in scheduler).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, default=900.0,
                            help="Seconds between ticks (default 900).")
        parser.add_argument("--once", action="store_true", help="One tick, then exit.")

    def handle(self, *args: Any, every: float = 900.0, once: bool = False,
               **options: Any) -> None:
        if every < 1:
            raise CommandError("--every must be at least 1 second.")
        try:
            refuse_insecure_start("scheduler")
        except InsecureStartError as exc:
            raise CommandError(str(exc)) from exc
        while True:
            close_old_connections()
            try:
                ids = tick()
            except DatabaseError as exc:
                self.stderr.write(f"periodic: tick failed, retrying in {every:g}s: {exc}")
            else:
                self.stdout.write(f"periodic: enqueued {ids['reminders']} (reminders), "
                                  f"{ids['erasure']} (erasure)")
                if "summaries" in ids:
                    self.stdout.write(f"periodic: enqueued {ids['summaries']} (the nightly "
                                      "rebuild of the report summaries)")
            self.anchor()
            self.stdout.flush()
            if once:
                return
            time.sleep(every)

    def anchor(self) -> None:
        try:
            made = audit.anchor_head()
        except (DatabaseError, OSError, audit.AuditError) as exc:
            # Reported loudly and retried next tick; `anshim audit verify` would show the cause.
            self.stderr.write(f"periodic: audit anchor failed: {exc}")
            return
        if made is not None:
            self.stdout.write(f"periodic: anchored the audit log at seq {made.seq}")
