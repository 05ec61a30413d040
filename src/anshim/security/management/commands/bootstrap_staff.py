"""`anshim bootstrap_staff USERNAME --role supervisor|admin`: the first accounts of a new
installation, each with a single-use link to set its password (anshim.security.accounts)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from anshim.security import accounts


class Command(BaseCommand):
    help = ("Create the first supervisor or administrator with a single-use link to set the "
            "password. Refused once a supervisor is in service.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=["supervisor", "admin"])
        parser.add_argument("--display-name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user, token = accounts.bootstrap(options["username"], options["role"],
                                             options["display_name"])
        except accounts.AccountError as exc:
            raise CommandError(str(exc.message)) from None
        self.stdout.write(
            f"Account {user.username} ({user.role}) created. Give its holder this link "
            f"(single use, {accounts.RECOVERY_HOURS} hours) on this site's address:\n"
            f"  /staff/recover/{token}/\n"
            "After setting the password they sign in and set up an authenticator app.")
