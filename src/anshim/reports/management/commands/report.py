"""`anshim report annual --year YYYY` / `monthly --month YYYY-MM`: the report as PDF, xlsx or
JSON (docs/reports.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from anshim.reports import figures, render


class Command(BaseCommand):
    help = "Write the annual or monthly report (PDF, xlsx) or print its tables as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=["annual", "monthly"])
        parser.add_argument("--year", type=int)
        parser.add_argument("--month", help="YYYY-MM")
        parser.add_argument("--output", help="FILE.pdf or FILE.xlsx")
        parser.add_argument("--format", choices=["pdf", "xlsx"], default=None)
        parser.add_argument("--json", action="store_true", help="print the tables as JSON")
        parser.add_argument("--language", default="ko")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["kind"] == "annual":
            if not options["year"]:
                raise CommandError("annual needs --year YYYY")
            period = figures.year_period(options["year"])
        else:
            try:
                period = figures.parse_month(options["month"] or "")
            except figures.BadMonth as exc:
                raise CommandError(f"monthly needs --month YYYY-MM: {exc}") from exc
        with translation.override(options["language"]):
            tables = figures.report_tables(period)
            if options["json"]:
                self.stdout.write(render.to_json(period, tables, figures.NOT_RECORDED).decode())
                return
            output = options["output"]
            if not output:
                raise CommandError("--output FILE is required (or --json)")
            fmt = options["format"] or ("xlsx" if output.endswith(".xlsx") else "pdf")
            body, _type = render.render(fmt, period, tables, figures.NOT_RECORDED)
        Path(output).write_bytes(body)
        self.stdout.write(f"{output}: {len(body)} bytes")
