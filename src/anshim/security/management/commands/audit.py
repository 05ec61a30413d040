"""`anshim audit verify` checks the keyed chain against its anchors; `anshim audit anchor`
signs the head now; `anshim audit show` lists recent entries; `anshim audit grants` prints the
PostgreSQL grants of the runtime role."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from anshim.security import audit
from anshim.security.models import AuditEntry


class Command(BaseCommand):
    help = "Verify or show the audit log."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        verify = sub.add_parser(
            "verify", help="Check the chain against the audit key and the anchors; exit status "
            "1 when tampered.")
        verify.add_argument("--anchor", dest="anchor_files", action="append", default=[],
                            type=Path, help="Also check against the anchors of this file (a copy "
                            "kept elsewhere); repeatable.")
        verify.add_argument("--anchor-line", dest="anchor_lines", action="append", default=[],
                            help="Also check against this anchor line (e.g. from the anchor "
                            "mail); repeatable.")
        anchor = sub.add_parser("anchor", help="Sign the head of the chain with the evidence key "
                                "and append it to the anchor file.")
        anchor.add_argument("--force", action="store_true",
                            help="Even when the head has not moved since the last anchor.")
        grants = sub.add_parser("grants", help="Print the PostgreSQL grants of the runtime role "
                                "(run them as the owner after every migrate).")
        grants.add_argument("--role", required=True, help="The runtime role, e.g. anshim_app.")
        grants.add_argument("--schema", default="public")
        show = sub.add_parser("show", help="List the most recent entries.")
        show.add_argument("--case", dest="case_code", default="", help="Only this case code.")
        show.add_argument("--limit", type=int, default=50, help="How many entries (default 50).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "verify":
            self.verify(options["anchor_files"], options["anchor_lines"])
        elif options["subcommand"] == "anchor":
            self.anchor(options["force"])
        elif options["subcommand"] == "grants":
            self.grants(options["role"], options["schema"])
        else:
            self.show(options["case_code"], options["limit"])

    def verify(self, files: list[Path], lines: list[str]) -> None:
        extra: list[audit.Anchor] = []
        try:
            for path in files:
                if not path.is_file():
                    raise CommandError(f"No anchor file {path}.")
                extra.extend(audit.read_anchors(path))
            extra.extend(audit.Anchor.from_line(line) for line in lines)
        except audit.AnchorError as exc:
            raise CommandError(f"Anchor not readable: {exc}") from exc
        result = audit.verify_chain(anchors=extra)
        if not result.ok:
            self.stderr.write(self.style.ERROR(f"TAMPERED: {result.message}"))
            raise SystemExit(1)
        seq, head = audit.head_hash()
        self.stdout.write(self.style.SUCCESS(f"OK: {result.message}"))
        self.stdout.write(f"Chain head: seq {seq} {head}")
        if result.anchored_seq is None:
            self.stdout.write(self.style.WARNING(
                "No anchor yet: run `anshim audit anchor` (anshim periodic does it every tick)."))

    def anchor(self, force: bool) -> None:
        try:
            made = audit.anchor_head(force=force)
        except audit.AuditError as exc:
            raise CommandError(str(exc)) from exc
        if made is None:
            self.stdout.write("The head has not moved since the last anchor; nothing added.")
            return
        self.stdout.write(self.style.SUCCESS(
            f"Anchored seq {made.seq} at {made.at} in {audit.anchor_path()}"))
        self.stdout.write(made.to_line())

    def grants(self, role: str, schema: str) -> None:
        from anshim.security.audit_triggers import runtime_role_sql

        try:
            statements = runtime_role_sql(role, schema)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for sql in statements:
            self.stdout.write(sql)

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
