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
        if options.get("volume"):
            from anshim.reports import demo as reports_demo

            written = reports_demo.generate(options["volume"])
            self.stdout.write(f"Generated cases: {written}")
        staff = demo.create_staff()
        self._report("experts", experts_demo.create_demo_experts())
        from anshim.security.models import User

        if not User.objects.filter(username="expert").exists():
            demo.ensure_user("expert", "expert", "전문가 정들")
        else:
            expert = User.objects.get(username="expert")
            expert.set_password(demo.DEMO_PASSWORD)
            expert.save(update_fields=["password"])
        cases = demo.create_demo_cases(staff)
        self.stdout.write(f"Demo cases created: {len(cases)}"
                          + ("" if cases else " (already there)"))
        self._report("expert assignments", experts_demo.create_demo_assignment())
        self._report("hash banks", erasure_demo.create_demo_banks())
        # Schools, sessions, a pre/post test and the 4,012-student survey (the prevention
        # officer's start page shows them).
        prevention_demo.load(staff["prevention"])
        self.stdout.write("Prevention demo: schools, sessions, tests and a survey of "
                          f"{prevention_demo.N_STUDENTS:,} students")

        logins = [demo.ensure_second_factor(u) for u in
                  User.objects.filter(username__in=[s[0] for s in demo.STAFF])
                  .order_by("username")]
        self.stdout.write("")
        self.stdout.write(self.style.WARNING(
            "DEMO ONLY: these accounts share a published password and published second "
            "factors. Never use them in production."))
        self.stdout.write(f"Password for every demo account: {demo.DEMO_PASSWORD}")
        self.stdout.write("Second factor: add the TOTP secret to an authenticator app, or use "
                          "the backup code (single use; running `anshim demo` again restores it).")
        self.stdout.write("")
        header = f"{'username':<12} {'role':<11} {'TOTP secret (base32)':<34} {'now':<7} backup"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for login in logins:
            self.stdout.write(
                f"{login.username:<12} {login.role:<11} {login.totp_secret:<34} "
                f"{demo.current_totp(login.username):<7} {login.backup_code}"
            )

    def _report(self, what: str, result: Any) -> None:
        summary = f"{len(result)} records" if isinstance(result, list | tuple) else "done"
        self.stdout.write(f"Demo {what}: {summary}")
