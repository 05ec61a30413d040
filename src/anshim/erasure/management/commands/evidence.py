"""`anshim evidence export CODE [--out DIR]`: write a case's signed evidence package
(CODE-evidence.json and CODE-evidence.pdf); `anshim evidence verify FILE.json` checks one."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Export or verify signed per-case evidence packages."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export")
        export.add_argument("code")
        export.add_argument("--out", default=".")
        check = sub.add_parser("verify")
        check.add_argument("path")

    def handle(self, *args: Any, **options: Any) -> None:
        from anshim.cases.models import Case
        from anshim.erasure.evidence_export import export_case, verify_package

        if options["action"] == "verify":
            path = Path(options["path"])
            if not path.exists():
                raise CommandError(f"{path} does not exist.")
            if not verify_package(path):
                raise CommandError("Signature check FAILED.", returncode=1)
            self.stdout.write("Signature OK")
            return
        case = Case.objects.filter(code=options["code"]).first()
        if case is None:
            raise CommandError(f"No case {options['code']!r}.")
        json_path, pdf_path = export_case(case, Path(options["out"]))
        self.stdout.write(f"{json_path}\n{pdf_path}")
