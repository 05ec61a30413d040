"""`anshim audit verify` checks the hash chain; `anshim audit show` lists recent entries."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from anshim.security import audit
from anshim.security.models import AuditEntry


class Command(BaseCommand):
    help = "Verify or show the audit log."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        sub.add_parser("verify", help="Check the hash chain; exit status 1 when tampered.")
        show = sub.add_parser("show", help="List the most recent entries.")
        show.add_argument("--case", dest="case_code", default="", help="Only this case code.")
        show.add_argument("--limit", type=int, default=50, help="How many entries (default 50).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "verify":
            self.verify()
        else:
            self.show(options["case_code"], options["limit"])

    def verify(self) -> None:
        result = audit.verify_chain()
        if not result.ok:
            self.stderr.write(self.style.ERROR(f"TAMPERED: {result.message}"))
            raise SystemExit(1)
        seq, head = audit.head_hash()
        self.stdout.write(self.style.SUCCESS(f"OK: {result.message}"))
        self.stdout.write(f"Chain head: seq {seq} {head}")

    def show(self, case_code: str, limit: int) -> None:
        if limit < 1:
            raise CommandError("--limit must be at least 1.")
        entries = AuditEntry.objects.order_by("-seq")
        if case_code:
            entries = entries.filter(case_code=case_code)
        for entry in reversed(list(entries[:limit])):
            when = timezone.localtime(entry.at).strftime("%Y-%m-%d %H:%M:%S")
            target = f"{entry.target_model}#{entry.target_pk}" if entry.target_model else "-"
            who = entry.actor_username or "-"
            if entry.actor_role:
                who += f" ({entry.actor_role})"
            line = (f"{entry.seq:>7} {when} {who:<28} {entry.action:<22} "
                    f"{entry.case_code or '-':<12} {target:<24} {entry.client_address or '-'}")
            if entry.reason:
                line += f"  reason: {entry.reason}"
            self.stdout.write(line)
