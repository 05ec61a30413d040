"""Managing partners: create, share banks, rotate and revoke tokens, set webhooks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from anshim.erasure.models import Bank, Platform
from anshim.exchange.models import ALL_SCOPES, BankShare, Partner
from anshim.exchange.tokens import IssuedToken, issue_token, revoke_tokens, rotate_token
from anshim.exchange.webhooks import new_secret


def parse_scopes(scopes: Iterable[str] | str) -> str:
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    cleaned = sorted({s.strip() for s in items if s.strip()})
    unknown = [s for s in cleaned if s not in ALL_SCOPES]
    if unknown:
        raise ValidationError(
            f"unknown scope {unknown[0]!r}; choose from {', '.join(ALL_SCOPES)}", code="scope"
        )
    return ",".join(cleaned)


def _banks(names: Iterable[str]) -> list[Bank]:
    banks = []
    for name in names:
        bank = Bank.objects.filter(name=name).first()
        if bank is None:
            raise ValidationError(f"no bank named {name!r}", code="bank")
        banks.append(bank)
    return banks


def create_partner(
    name: str, *, scopes: Iterable[str] | str = ALL_SCOPES, banks: Iterable[str] = (),
    rate_per_minute: int = 600, burst: int = 60, webhook_url: str = "",
    expires_at: dt.datetime | None = None, platform: Platform | str | None = None,
) -> tuple[Partner, IssuedToken]:
    name = name.strip()
    if not name:
        raise ValidationError("a partner needs a name", code="name")
    if Partner.objects.filter(name=name).exists():
        raise ValidationError(f"a partner named {name!r} already exists", code="duplicate")
    with transaction.atomic():
        partner = Partner.objects.create(
            name=name, scopes=parse_scopes(scopes), rate_per_minute=rate_per_minute,
            burst=burst, platform=_platform(platform),
        )
        for bank in _banks(banks):
            BankShare.objects.get_or_create(partner=partner, bank=bank)
        if webhook_url:
            set_webhook(partner, webhook_url)
        issued = issue_token(partner, expires_at=expires_at)
    return partner, issued


def _platform(platform: Platform | str | None) -> Platform | None:
    if platform is None or isinstance(platform, Platform):
        return platform
    found = Platform.objects.filter(name=platform).first()
    if found is None:
        raise ValidationError(f"no platform named {platform!r}", code="platform")
    return found


def set_platform(partner: Partner, platform: Platform | str | None) -> Partner:
    """Link the partner to the platform it runs: its feedback then applies to that platform's
    sightings (and only those)."""
    partner.platform = _platform(platform)
    partner.save(update_fields=["platform"])
    return partner


def get_partner(name: str) -> Partner:
    partner = Partner.objects.filter(name=name).first()
    if partner is None:
        raise ValidationError(f"no partner named {name!r}", code="unknown")
    return partner


def share_banks(partner: Partner, bank_names: Iterable[str]) -> list[BankShare]:
    return [BankShare.objects.get_or_create(partner=partner, bank=bank)[0]
            for bank in _banks(bank_names)]


def unshare_banks(partner: Partner, bank_names: Iterable[str]) -> int:
    deleted, _ = BankShare.objects.filter(
        partner=partner, bank__in=_banks(bank_names)).delete()
    return deleted


def set_webhook(partner: Partner, url: str) -> str:
    """Point the partner's webhook at `url` with a fresh secret (returned; shown once).

    Starting from the current end of the change log: the partner syncs history by the feed."""
    from anshim.exchange.feed import latest_seq

    URLValidator(schemes=["http", "https"])(url)
    secret = new_secret()
    from anshim.exchange.feed import encode_cursor

    partner.refresh_from_db(fields=["share_epoch"])
    partner.webhook_url, partner.webhook_secret = url, secret
    partner.webhook_seq = latest_seq()
    partner.webhook_cursor = encode_cursor(partner, partner.webhook_seq)
    partner.save(update_fields=["webhook_url", "webhook_secret", "webhook_seq",
                                "webhook_cursor"])
    return secret


def rotate(partner: Partner, *, grace: dt.timedelta = dt.timedelta(0)) -> IssuedToken:
    return rotate_token(partner, grace=grace)


def revoke(partner: Partner, *, deactivate: bool = False) -> int:
    """Revoke every token at once; `deactivate` also disables the partner account."""
    count = revoke_tokens(partner)
    if deactivate:
        partner.active = False
        partner.save(update_fields=["active"])
    return count
