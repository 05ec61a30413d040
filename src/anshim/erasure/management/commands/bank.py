"""`anshim bank ...`: manage hash banks from the command line (runs as the system, audited).

    anshim bank create NAME [--purpose P] [--threshold N] [--disabled]
    anshim bank list
    anshim bank set NAME [--threshold N] [--enable | --disable]
    anshim bank add --bank NAME [--case CODE] [--label L] [--source S] [--no-robust] PATH...
    anshim bank import --bank NAME [--format csv|jsonl] [--source S] FILE
    anshim bank export --bank NAME [--format csv|jsonl] [--output FILE]
    anshim bank withdraw [--reason TEXT] ENTRY_ID...

`bank add` registers images robustly by default (issue 8): besides MD5/SHA-256/PDQ, the PDQ of
the border-trimmed picture and of a grid of crops, all on the same entry (withdrawn with it), so
that cropped, letterboxed and screenshotted re-uploads are found. `--no-robust` registers the
plain fingerprints only. Videos are always registered as usual. Adding a file that is already
in the bank (same SHA-256, same case) changes nothing and reports "already registered", so
`bank add` can be re-run after an interruption.

Exit status: 0 on success; 1 when anything failed (bad input, missing consent, a file that could
not be fingerprinted: the other files are still added).
"""

from __future__ import annotations

from argparse import ArgumentParser, BooleanOptionalAction
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from anshim.cases.models import Case
from anshim.erasure import hashlists, services
from anshim.erasure.media_paths import expand_paths
from anshim.erasure.models import Bank, BankEntry, BankPurpose, EntrySource
from anshim.fingerprint.errors import FingerprintError
from anshim.fingerprint.types import ImageFingerprint


def _validation_text(exc: ValidationError) -> str:
    return " ".join(str(m) for m in exc.messages)


class Command(BaseCommand):
    help = "Manage hash banks: create, list, set, add, import, export, withdraw."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)

        create = sub.add_parser("create", help="Create a bank.")
        create.add_argument("name")
        create.add_argument("--purpose", choices=BankPurpose.values,
                            default=BankPurpose.VICTIM_IMAGES)
        create.add_argument("--threshold", type=int, default=31)
        create.add_argument("--disabled", action="store_true")

        sub.add_parser("list", help="List banks.")

        setp = sub.add_parser("set", help="Change a bank's threshold or enabled flag.")
        setp.add_argument("name")
        setp.add_argument("--threshold", type=int)
        onoff = setp.add_mutually_exclusive_group()
        onoff.add_argument("--enable", action="store_true")
        onoff.add_argument("--disable", action="store_true")

        add = sub.add_parser("add", help="Fingerprint files and add them to a bank.")
        add.add_argument("--bank", required=True)
        add.add_argument("--case", help="Case code; its fingerprint consent is checked.")
        add.add_argument("--label", default="")
        add.add_argument("--source", choices=EntrySource.values,
                         default=EntrySource.STAFF_EVIDENCE)
        add.add_argument("--robust", action=BooleanOptionalAction, default=True,
                         help="Also register trimmed and cropped variants of images "
                              "(default: on).")
        add.add_argument("paths", nargs="+", metavar="PATH")

        imp = sub.add_parser("import", help="Import a CSV or JSON-lines hash list.")
        imp.add_argument("--bank", required=True)
        imp.add_argument("--format", choices=hashlists.FORMATS)
        imp.add_argument("--source", choices=EntrySource.values, default=EntrySource.IMPORT)
        imp.add_argument("file")

        exp = sub.add_parser("export", help="Export a bank's hashes.")
        exp.add_argument("--bank", required=True)
        exp.add_argument("--format", choices=hashlists.FORMATS, default="jsonl")
        exp.add_argument("--output", help="File to write (default: standard output).")

        wd = sub.add_parser("withdraw", help="Withdraw entries (deleted; tombstones remain).")
        wd.add_argument("--reason", default="")
        wd.add_argument("entry_ids", nargs="+", type=int, metavar="ENTRY_ID")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, "do_" + options["subcommand"])(options)

    # --- helpers --------------------------------------------------------------------------

    def _bank(self, name: str) -> Bank:
        try:
            return Bank.objects.get(name=name)
        except Bank.DoesNotExist:
            raise CommandError(f"No bank named {name!r}.") from None

    # --- subcommands ------------------------------------------------------------------------

    def do_create(self, options: dict[str, Any]) -> None:
        if Bank.objects.filter(name=options["name"].strip()).exists():
            raise CommandError(f"A bank named {options['name']!r} already exists.")
        try:
            bank = services.create_bank(options["name"], purpose=options["purpose"],
                                        threshold=options["threshold"],
                                        enabled=not options["disabled"], actor=None)
        except ValidationError as exc:
            raise CommandError(_validation_text(exc)) from None
        self.stdout.write(f"Created bank {bank.name!r} (id {bank.pk}).")

    def do_list(self, options: dict[str, Any]) -> None:
        from django.db.models import Count

        self.stdout.write(f"{'NAME':30} {'PURPOSE':14} {'THRESHOLD':>9} {'ENABLED':7} "
                          f"{'ENTRIES':>8}")
        for bank in Bank.objects.annotate(n=Count("entries")).order_by("name"):
            self.stdout.write(f"{bank.name:30} {bank.purpose:14} {bank.threshold:>9} "
                              f"{'yes' if bank.enabled else 'no':7} {bank.n:>8}")

    def do_set(self, options: dict[str, Any]) -> None:
        bank = self._bank(options["name"])
        changes: dict[str, Any] = {}
        if options["threshold"] is not None:
            changes["threshold"] = options["threshold"]
        if options["enable"] or options["disable"]:
            changes["enabled"] = bool(options["enable"])
        if not changes:
            raise CommandError("Nothing to change: give --threshold, --enable or --disable.")
        try:
            services.update_bank(bank, actor=None, **changes)
        except ValidationError as exc:
            raise CommandError(_validation_text(exc)) from None
        self.stdout.write(f"Updated bank {bank.name!r}.")

    def do_add(self, options: dict[str, Any]) -> None:
        bank = self._bank(options["bank"])
        case = None
        if options["case"]:
            case = Case.objects.filter(code=options["case"].strip().upper()).first()
            if case is None:
                raise CommandError(f"No case with code {options['case']!r}.")
            try:  # Refuse before fingerprinting anything.
                services.fingerprint_consent(case)
            except ValidationError as exc:
                raise CommandError(_validation_text(exc)) from None
        from anshim.fingerprint.engine import fingerprint_file

        failed = 0
        for path in expand_paths(options["paths"]):
            try:
                fp = fingerprint_file(path)
                known = services.registered_file(bank, fp.sha256, case)
                if known is not None:  # checked again under the lock by the service
                    self.stdout.write(f"{path}: already registered (entry {known.pk})")
                    continue
                if options["robust"] and isinstance(fp, ImageFingerprint):
                    # Decoded in memory again for the variants; nothing is written anywhere.
                    entry = services.register_image_robust(
                        bank, data=path.read_bytes(), case=case, source=options["source"],
                        actor=None, label=options["label"], fingerprint=fp,
                    )
                else:
                    entry = services.register_fingerprints(
                        bank, case=case, fingerprints=fp, source=options["source"],
                        actor=None, label=options["label"],
                    )
            except FingerprintError as exc:
                failed += 1
                self.stderr.write(f"{path}: {exc.message}")
                continue
            except ValidationError as exc:
                raise CommandError(_validation_text(exc)) from None
            if entry.already_registered:
                self.stdout.write(f"{path}: already registered (entry {entry.pk})")
            else:
                self.stdout.write(f"{path}: entry {entry.pk} ({fp.kind})")
        if failed:
            raise CommandError(f"{failed} file(s) could not be fingerprinted.", returncode=1)

    def do_import(self, options: dict[str, Any]) -> None:
        bank = self._bank(options["bank"])
        fmt = hashlists.format_for(options["file"], options["format"])
        try:
            with Path(options["file"]).open(encoding="utf-8-sig", newline="") as fh:
                result = hashlists.import_hash_list(bank, fh, fmt=fmt,
                                                    source=options["source"], actor=None)
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{options['file']} is not UTF-8 text.") from None
        except hashlists.HashListError as exc:
            raise CommandError("Nothing imported.\n" + exc.text) from None
        self.stdout.write(f"Imported {result.added} entries into {bank.name!r} "
                          f"({result.skipped} already present or repeated).")

    def do_export(self, options: dict[str, Any]) -> None:
        bank = self._bank(options["bank"])
        if options["output"]:
            with Path(options["output"]).open("w", encoding="utf-8", newline="") as fh:
                count = hashlists.export_hash_list(bank, fh, fmt=options["format"])
            self.stderr.write(f"Exported {count} entries to {options['output']}.")
        else:
            # OutputWrapper adds no newline to text that already ends with one.
            hashlists.export_hash_list(bank, self.stdout, fmt=options["format"])  # type: ignore[arg-type]

    def do_withdraw(self, options: dict[str, Any]) -> None:
        try:
            tombstones = services.withdraw_entries(options["entry_ids"], actor=None,
                                                   reason=options["reason"])
        except BankEntry.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        for tomb in tombstones:
            self.stdout.write(f"Withdrew entry {tomb.entry_id} (change {tomb.seq}).")
        skipped = len(set(options["entry_ids"])) - len(tombstones)
        if skipped:
            self.stdout.write(f"{skipped} entr{'y was' if skipped == 1 else 'ies were'} "
                              "already withdrawn.")
