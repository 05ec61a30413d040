"""`anshim partner ...`: create (token printed once), list, rotate, revoke, share, webhook."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from anshim.exchange.models import BankShare, Partner, PartnerToken
from anshim.exchange.tokens import TokenError, authenticate

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("partner", *args, stdout=out)
    return out.getvalue()


def token_in(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("anx_"))


def test_create_prints_a_working_token_once(make_bank):
    make_bank("victims")
    output = run("create", "Clipshare", "--scopes", "read,lookup", "--banks", "victims",
                 "--rate", "120")
    token = token_in(output)
    partner = authenticate(token).partner
    assert partner.name == "Clipshare" and partner.scope_set == {"read", "lookup"}
    assert partner.rate_per_minute == 120
    assert list(BankShare.objects.values_list("bank__name", flat=True)) == ["victims"]
    assert token not in run("list")
    assert "Clipshare" in run("list") and token[:12] in run("list")


def test_rotate_and_revoke(make_bank):
    old = token_in(run("create", "P"))
    new = token_in(run("rotate", "P"))
    assert authenticate(new)
    with pytest.raises(TokenError):
        authenticate(old)
    graced = token_in(run("rotate", "P", "--grace-hours", "2"))
    assert authenticate(new) and authenticate(graced)
    assert "Revoked 2 token(s)" in run("revoke", "P")
    with pytest.raises(TokenError):
        authenticate(graced)
    run("revoke", "P", "--disable")
    assert not Partner.objects.get(name="P").active


def test_share_and_unshare(make_bank):
    make_bank("a")
    make_bank("b")
    run("create", "P")
    run("share", "P", "--bank", "a", "--bank", "b")
    assert BankShare.objects.count() == 2
    run("share", "P", "--bank", "a", "--unshare")
    assert list(BankShare.objects.values_list("bank__name", flat=True)) == ["b"]


def test_webhook_prints_a_secret():
    run("create", "P")
    assert "secret" in run("webhook", "P", "https://partner.example/hook")
    assert Partner.objects.get(name="P").webhook_url == "https://partner.example/hook"


@pytest.mark.parametrize("args", [
    ("create", "P", "--scopes", "read,admin"),
    ("create", "P", "--banks", "missing"),
    ("rotate", "nobody"),
    ("revoke", "nobody"),
    ("share", "nobody", "--bank", "x"),
    ("webhook", "P", "ftp://nope"),
])
def test_bad_arguments_are_clear_errors(args):
    if args[0] == "webhook":
        run("create", "P")
    with pytest.raises(CommandError):
        run(*args)


def test_duplicate_partner_is_an_error():
    run("create", "P")
    with pytest.raises(CommandError, match="already exists"):
        run("create", "P")
    assert PartnerToken.objects.count() == 1


def test_platform_link_and_hash_list(make_bank, add_entry, tmp_path):
    from anshim.erasure.models import Platform

    platform = Platform.objects.create(name="Clipshare", domains="clipshare.example")
    bank = make_bank("victims")
    entry = add_entry(bank, pdq="a" * 64, md5="b" * 32)
    run("create", "Clipshare", "--banks", "victims", "--platform", "Clipshare")
    assert Partner.objects.get(name="Clipshare").platform == platform
    with pytest.raises(CommandError, match="no platform named"):
        run("platform", "Clipshare", "Nowhere")
    out = tmp_path / "hashes.txt"
    err = io.StringIO()
    call_command("partner", "hashes", "Clipshare", "--output", str(out), stderr=err)
    assert set(out.read_text().splitlines()) == {f"pdq {'a' * 64}", f"video_md5 {'b' * 32}"}
    assert "2 signal(s)" in err.getvalue()
    assert entry.pk
