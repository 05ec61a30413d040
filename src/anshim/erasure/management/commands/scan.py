"""`anshim scan [--depth N] [--json] [--no-record] [--ray ADDRESS] URL...`: crawl from the
seeds now and report every match (page URL, media URL, bank, entry, case code, distance).

With --json, one JSON object per line:
    {"page_url": ..., "media_url": ..., "bank": ..., "entry": 12, "case": "AN-..." | null,
     "kind": "pdq", "distance": 3, "sighting": 5, "new": true, "reupload": false}
Matches are recorded as sightings (with signed evidence) unless --no-record.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from anshim.crawl import CrawlConfigError, CrawlFailed


class Command(BaseCommand):
    help = "Crawl from the given seed URLs and match their media against the banks."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("urls", nargs="+", metavar="URL")
        parser.add_argument("--depth", type=int, default=1)
        parser.add_argument("--rate", type=float, default=4.0, help="Requests/s per host.")
        parser.add_argument("--json", action="store_true", help="One JSON object per match.")
        parser.add_argument("--no-record", action="store_true",
                            help="Report only; do not record sightings.")
        parser.add_argument("--state", default=None, help="Crawl state file (resume).")
        parser.add_argument("--workers", type=int, default=settings.ANSHIM_SCAN_WORKERS,
                            help="Processes fingerprinting media (default: ANSHIM_SCAN_WORKERS, "
                                 "one per core).")
        parser.add_argument("--allow-private-host", action="append", default=[],
                            metavar="HOST",
                            help="A host that may be fetched although it is on a loopback or "
                                 "private network (repeatable; e.g. a test site). Every other "
                                 "such address is refused.")
        parser.add_argument("--ray", metavar="ADDRESS", default=None,
                            help='Fan the work out over Ray ("local", "auto", "ray://...").')

    def handle(self, *args: Any, **options: Any) -> None:
        from anshim.erasure.scan import run_scan

        records = None
        if options["ray"]:
            from anshim.erasure.ray_scan import ray_records

            records = ray_records(options["urls"], address=options["ray"],
                                  depth=options["depth"], per_host_rate=options["rate"],
                                  allowed_private_hosts=options["allow_private_host"])
        try:
            report = run_scan(options["urls"], depth=options["depth"],
                              per_host_rate=options["rate"], record=not options["no_record"],
                              state_path=options["state"], records=records,
                              workers=options["workers"],
                              allowed_private_hosts=options["allow_private_host"])
        except (CrawlConfigError, CrawlFailed) as exc:
            raise CommandError(str(exc)) from exc
        for m in report.matches:
            if options["json"]:
                self.stdout.write(json.dumps(m.to_dict(), ensure_ascii=False))
            else:
                self.stdout.write(f"{m.page_url}  {m.media_url}  {m.match.bank}/"
                                  f"{m.match.entry_id}  {m.match.case_code or '-'}  "
                                  f"d={m.match.distance}")
        if not options["json"]:
            self.stderr.write(f"{report.pages} pages, {report.media} media, "
                              f"{len(report.matches)} matches, {report.errors} errors")
