"""`anshim partner ...` — manage partner platforms of the exchange API.

    anshim partner create NAME [--scopes read,lookup,feedback] [--banks B1,B2] [--rate N]
                               [--burst N] [--webhook URL] [--expires-days N]
                               [--platform PLATFORM]
    anshim partner list
    anshim partner rotate NAME [--grace-hours H]
    anshim partner revoke NAME [--disable]
    anshim partner share NAME --bank B [--bank B2 ...] [--unshare]
    anshim partner webhook NAME URL
    anshim partner platform NAME PLATFORM      (the erasure platform it runs; feedback scope)
    anshim partner hashes NAME [--output FILE] (threatexchange signal file of its banks)

Tokens and webhook secrets are printed once and never stored in the clear.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from anshim.exchange import services
from anshim.exchange.models import ALL_SCOPES, Partner


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


class Command(BaseCommand):
    help = "Manage partner platforms of the exchange API (tokens, scopes, shared banks)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a partner and print its token once.")
        create.add_argument("name")
        create.add_argument("--scopes", type=_csv, default=list(ALL_SCOPES),
                            help=f"Comma-separated, from {','.join(ALL_SCOPES)} (default: all).")
        create.add_argument("--banks", type=_csv, default=[],
                            help="Banks to share (comma-separated).")
        create.add_argument("--rate", type=_positive, default=600, help="Requests per minute.")
        create.add_argument("--burst", type=_positive, default=60, help="Burst size (requests).")
        create.add_argument("--webhook", default="", help="Webhook URL (prints the secret once).")
        create.add_argument("--expires-days", type=_positive, default=None)
        create.add_argument("--platform", default=None,
                            help="The erasure platform this partner runs (feedback applies to "
                                 "its sightings only).")
        sub.add_parser("list", help="List partners, their scopes, banks and tokens.")
        rotate = sub.add_parser("rotate", help="Issue a new token; revoke the old ones.")
        rotate.add_argument("name")
        rotate.add_argument("--grace-hours", type=float, default=0.0,
                            help="Keep old tokens working this long (default: revoke at once).")
        revoke = sub.add_parser("revoke", help="Revoke all tokens of a partner at once.")
        revoke.add_argument("name")
        revoke.add_argument("--disable", action="store_true", help="Also disable the partner.")
        share = sub.add_parser("share", help="Share banks with a partner (or --unshare).")
        share.add_argument("name")
        share.add_argument("--bank", action="append", required=True, dest="banks")
        share.add_argument("--unshare", action="store_true")
        webhook = sub.add_parser("webhook", help="Set the webhook URL; prints a new secret once.")
        webhook.add_argument("name")
        webhook.add_argument("url")
        platform = sub.add_parser("platform", help="Link the partner to the platform it runs.")
        platform.add_argument("name")
        platform.add_argument("platform")
        hashes = sub.add_parser("hashes", help="Write the partner's hash list in "
                                               "threatexchange's `signal_type signal` format.")
        hashes.add_argument("name")
        hashes.add_argument("--output", "-o", default="-", help="File (default: stdout).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None

    def _create(self, options: dict[str, Any]) -> None:
        expires = (timezone.now() + dt.timedelta(days=options["expires_days"])
                   if options["expires_days"] else None)
        partner, issued = services.create_partner(
            options["name"], scopes=options["scopes"], banks=options["banks"],
            rate_per_minute=options["rate"], burst=options["burst"], expires_at=expires,
            platform=options["platform"],
        )
        self.stdout.write(f"Partner {partner.name!r} created (scopes: {partner.scopes}).")
        if options["webhook"]:
            secret = services.set_webhook(partner, options["webhook"])
            self.stdout.write(f"Webhook secret (shown once): {secret}")
        self.stdout.write("API token (shown once, store it now):")
        self.stdout.write(issued.token)

    def _list(self, options: dict[str, Any]) -> None:
        for partner in Partner.objects.prefetch_related("shares__bank", "tokens"):
            banks = ",".join(s.bank.name for s in partner.shares.all()) or "-"
            live = [t for t in partner.tokens.all() if t.is_usable()]
            state = "active" if partner.active else "disabled"
            prefixes = ",".join(t.prefix for t in live) or "-"
            self.stdout.write(
                f"{partner.name}\t{state}\tscopes={partner.scopes}\tbanks={banks}\t"
                f"rate={partner.rate_per_minute}/min\ttokens={prefixes}"
            )

    def _rotate(self, options: dict[str, Any]) -> None:
        partner = services.get_partner(options["name"])
        issued = services.rotate(partner, grace=dt.timedelta(hours=options["grace_hours"]))
        self.stdout.write("New API token (shown once, store it now):")
        self.stdout.write(issued.token)

    def _revoke(self, options: dict[str, Any]) -> None:
        partner = services.get_partner(options["name"])
        count = services.revoke(partner, deactivate=options["disable"])
        self.stdout.write(f"Revoked {count} token(s) of {partner.name!r}.")

    def _share(self, options: dict[str, Any]) -> None:
        partner = services.get_partner(options["name"])
        if options["unshare"]:
            count = services.unshare_banks(partner, options["banks"])
            self.stdout.write(f"Stopped sharing {count} bank(s) with {partner.name!r}.")
        else:
            services.share_banks(partner, options["banks"])
            self.stdout.write(f"Shared {', '.join(options['banks'])} with {partner.name!r}.")

    def _webhook(self, options: dict[str, Any]) -> None:
        partner = services.get_partner(options["name"])
        secret = services.set_webhook(partner, options["url"])
        self.stdout.write(f"Webhook secret (shown once): {secret}")

    def _platform(self, options: dict[str, Any]) -> None:
        partner = services.set_platform(services.get_partner(options["name"]),
                                        options["platform"])
        self.stdout.write(f"{partner.name!r} runs {options['platform']!r}: its feedback "
                          "applies to that platform's sightings.")

    def _hashes(self, options: dict[str, Any]) -> None:
        from anshim.exchange.hashlist import hash_list_lines

        partner = services.get_partner(options["name"])
        if options["output"] == "-":
            for line in hash_list_lines(partner):
                self.stdout.write(line)
            return
        count = 0
        with open(options["output"], "w", encoding="utf-8") as out:
            for line in hash_list_lines(partner):
                out.write(line + "\n")
                count += 1
        self.stderr.write(f"{count} signal(s) written to {options['output']}")
