"""`anshim demo`: demo accounts for every role and a dozen fictitious cases (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from anshim.cases import demo
from anshim.erasure import demo as erasure_demo
from anshim.experts import demo as experts_demo
from anshim.prevention import demo as prevention_demo


class Command(BaseCommand):
    help = "Create demo staff accounts (with second factors) and fictitious cases. Idempotent."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--volume", type=int, default=0,
                            help="also generate N fictitious cases over 24 months (reports)")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("Loading the demo data (all of it fictitious):")
        if options.get("volume"):
            from anshim.reports import demo as reports_demo

            self._line("generated cases for the reports", reports_demo.generate(options["volume"]))
        staff = demo.create_staff()
        self._line("experts", experts_demo.create_demo_experts())
        from anshim.security.models import User

        if not User.objects.filter(username="expert").exists():
            demo.ensure_user("expert", "expert", dict((s[0], s[2]) for s in demo.STAFF)["expert"])
        else:
            expert = User.objects.get(username="expert")
            expert.set_password(demo.DEMO_PASSWORD)
            expert.save(update_fields=["password"])
        cases = demo.create_demo_cases(staff)
        self._line("cases", cases if cases else "already there")
        self._line("expert assignments", experts_demo.create_demo_assignment())
        self._line("hash banks", erasure_demo.create_demo_banks())
        # Schools, sessions, a pre/post test and the 4,012-student survey (the prevention
        # officer's start page shows them).
        prevention_demo.load(staff["prevention"])
        self._line("prevention", "schools, sessions, tests and a survey of "
                   f"{prevention_demo.N_STUDENTS:,} students")

        logins = [demo.ensure_second_factor(u) for u in
                  User.objects.filter(username__in=[s[0] for s in demo.STAFF])
                  .order_by("username")]
        names = {u.username: u.display_name for u in
                 User.objects.filter(username__in=[s[0] for s in demo.STAFF])}
        self.stdout.write("")
        self.stdout.write(self.style.WARNING(
            "DEMO ONLY: these accounts share a published password and published second "
            "factors. Never use them in production."))
        for line in SIGN_IN_STEPS:
            self.stdout.write(line.format(password=demo.DEMO_PASSWORD))
        self.stdout.write("")
        header = (f"{'username':<12} {'role':<11} {'name':<14} {'code now':<9} "
                  f"{'backup code':<12} TOTP secret (base32)")
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for login in logins:
            self.stdout.write(
                f"{login.username:<12} {login.role:<11} {_pad(names.get(login.username, ''), 14)} "
                f"{demo.current_totp(login.username):<9} {login.backup_code:<12} "
                f"{login.totp_secret}"
            )

    def _line(self, what: str, result: Any) -> None:
        """One summary line per part of the demo, all in the same form."""
        if isinstance(result, list | tuple):
            summary = f"{len(result)}"
        elif isinstance(result, int):
            summary = f"{result}"
        elif isinstance(result, str):
            summary = result
        else:
            summary = "ready"
        self.stdout.write(f"  {what}: {summary}")


# How the demo logins work, in the order a person signs in.
SIGN_IN_STEPS = (
    "Signing in: open http://127.0.0.1:8000/staff/ and enter a username below with the "
    "password {password}.",
    "Second factor: the next page asks for a 6-digit code. Either add the account's TOTP "
    "secret to an authenticator app (a new code every 30 seconds), or type its backup code "
    "(single use; running `anshim demo` again restores it). The \"code now\" column is only "
    "valid for at most 30 seconds after this was printed.",
)


def _pad(text: str, width: int) -> str:
    """Left-align for a terminal: a Hangul syllable takes two columns."""
    columns = sum(2 if "\uac00" <= ch <= "\ud7a3" else 1 for ch in text)
    return text + " " * max(width - columns, 0)
