"""`anshim erasure_jobs [--enqueue]`: the periodic erasure work, for cron or a systemd timer.

Runs the monitored sources that are due, re-checks open sightings and re-sends unanswered
takedown requests. With --enqueue the work goes to the task worker (`anshim db_worker`)
instead of running here.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run (or enqueue) due scans, verification of open sightings and re-sending."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--enqueue", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        from anshim.erasure import tasks

        if options["enqueue"]:
            tasks.erasure_tick.enqueue()
            self.stdout.write("enqueued")
            return
        scans = [tasks.scan_source.call(s.pk) for s in tasks.due_sources()]
        verify = tasks.verify_sightings.call()
        resent = tasks.resend_requests.call()
        self.stdout.write(json.dumps({"scans": scans, "verify": verify, "resent": resent}))
