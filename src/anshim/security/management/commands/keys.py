"""`anshim keys status` and `anshim keys rotate [--resume] [--retire-old]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from anshim.security import keyring, rotation


class Command(BaseCommand):
    help = "Show key usage or rotate the encryption key."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        sub.add_parser("status", help="The key ring and how many values each key encrypts.")
        rotate = sub.add_parser(
            "rotate", help="Add a new primary key and re-encrypt every encrypted value."
        )
        rotate.add_argument(
            "--resume", action="store_true",
            help="Do not add a key: finish an interrupted rotation (or one whose new key was "
            "installed through ANSHIM_KEYS) by re-encrypting with the current primary key.",
        )
        rotate.add_argument(
            "--retire-old", action="store_true",
            help="Afterwards remove every old key that no value uses any more.",
        )
        rotate.add_argument("--batch-size", type=int, default=rotation.DEFAULT_BATCH)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "status":
            self.status()
        else:
            self.rotate(options["resume"], options["retire_old"], options["batch_size"])

    def status(self) -> None:
        ring = keyring.get_keyring()
        source = "ANSHIM_KEYS" if keyring.keys_from_env() else str(keyring.key_file_path())
        self.stdout.write(f"Key ring: {source}")
        usage = rotation.key_usage()
        totals = rotation.total_usage(usage)
        for key_id in ring.keys:
            mark = " (primary)" if key_id == ring.primary_id else ""
            self.stdout.write(f"  {key_id}{mark}: {totals.get(key_id, 0)} values")
        for key_id, n in totals.items():
            if key_id not in ring.keys:
                label = "values not encrypted" if key_id == rotation.PLAINTEXT else (
                    "values under a key MISSING from the ring")
                self.stdout.write(self.style.ERROR(f"  {key_id}: {n} {label}"))
        unbound = rotation.unbound_count()
        if unbound:
            self.stdout.write(self.style.WARNING(
                f"  {unbound} values are not bound to their row yet: run "
                "`anshim keys rotate --resume` to bind them."))
        self.stdout.write("Per column:")
        for column, counter in usage.items():
            detail = ", ".join(f"{k}={n}" for k, n in sorted(counter.items())) or "empty"
            self.stdout.write(f"  {column}: {detail}")

    def rotate(self, resume: bool, retire_old: bool, batch_size: int) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if keyring.keys_from_env() and not resume:
            self.explain_env_rotation()
            return
        try:
            report = rotation.rotate(new_key=not resume, retire_old=retire_old,
                                     batch_size=batch_size)
        except rotation.RotationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"Primary key is now {report.primary_id}: re-encrypted {report.reencrypted} "
            f"values, encrypted {report.plaintext_encrypted} values that were in the clear."))
        if report.bound:
            self.stdout.write(f"Bound {report.bound} values to their rows.")
        if report.misplaced:
            self.stderr.write(self.style.ERROR(
                "Values found in another row than the one they were encrypted for (copied "
                "there; left untouched, their key is kept):\n  " + "\n  ".join(report.misplaced)))
        if report.retired:
            self.stdout.write(f"Retired keys: {', '.join(report.retired)}")
            if keyring.keys_from_env():
                ring = keyring.get_keyring().without(set(report.retired))
                self.stdout.write("Set ANSHIM_KEYS to this value in every process and restart:")
                self.stdout.write(ring.to_env_value())
        if report.kept:
            self.stdout.write(f"Old keys kept in the ring: {', '.join(report.kept)}"
                              + ("" if retire_old else " (use --retire-old to remove them)"))

    def explain_env_rotation(self) -> None:
        ring = keyring.get_keyring().with_new_primary()
        self.stdout.write(
            "The key ring comes from the ANSHIM_KEYS environment variable, which this command "
            "cannot change. To rotate:\n"
            "  1. set ANSHIM_KEYS to the value below for every process (web server, task "
            "worker, commands) and restart them;\n"
            "  2. run `anshim keys rotate --resume` to re-encrypt every value with the new key;\n"
            "  3. run `anshim keys rotate --resume --retire-old` and install the shorter value "
            "it prints.\n"
            "Keep the value secret: it holds every key.\n"
        )
        self.stdout.write(f"ANSHIM_KEYS={ring.to_env_value()}")
