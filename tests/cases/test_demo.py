from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from anshim.cases import demo
from anshim.cases.models import Case
from anshim.security.models import User

pytestmark = pytest.mark.django_db


def test_demo_is_idempotent_and_prints_logins() -> None:
    out = io.StringIO()
    call_command("demo", stdout=out)
    text = out.getvalue()
    count = Case.objects.count()
    assert count >= 12
    for username, role, _name in demo.STAFF:
        user = User.objects.get(username=username)
        assert user.role == role
        assert user.check_password(demo.DEMO_PASSWORD)
        assert username in text
        assert demo.backup_code(username) in text
        assert demo.totp_secret_b32(username) in text
    assert demo.DEMO_PASSWORD in text
    call_command("demo", stdout=io.StringIO())
    assert Case.objects.count() == count
    assert User.objects.filter(username="counselor").count() == 1


def test_demo_second_factors_verify() -> None:
    from django_otp.oath import totp
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    call_command("demo", stdout=io.StringIO())
    user = User.objects.get(username="supervisor")
    device = TOTPDevice.objects.get(user=user, name="demo")
    assert device.confirmed
    assert device.verify_token(f"{totp(device.bin_key):06d}")
    static = StaticDevice.objects.get(user=user)
    assert static.verify_token(demo.backup_code("supervisor"))
    # Used up; running the demo again restores it.
    assert not static.verify_token(demo.backup_code("supervisor"))
    call_command("demo", stdout=io.StringIO())
    static.refresh_from_db()
    assert static.verify_token(demo.backup_code("supervisor"))


def test_demo_cases_are_varied() -> None:
    call_command("demo", stdout=io.StringIO())
    assert len(set(Case.objects.values_list("risk_level", flat=True))) >= 4
    assert len(set(Case.objects.values_list("status", flat=True))) >= 3


def test_demo_names_are_distinct_and_the_output_explains_the_second_factor() -> None:
    out = io.StringIO()
    call_command("demo", stdout=out)
    text = out.getvalue()
    # Staff and experts: one person, one name (an expert once shared a counselor's name).
    names = list(User.objects.exclude(display_name="").values_list("display_name", flat=True))
    assert len(names) == len(set(names)) >= len(demo.STAFF)
    # How to sign in and how the second factor works, beside the logins.
    assert "http://127.0.0.1:8000/staff/" in text
    assert "6-digit code" in text and "authenticator app" in text and "backup code" in text
    assert "상담원 문하람" in text and "김하늘 변호사" in text
    # One voice: every summary line of the seeding has the same "  part: result" form.
    summary = text.split("Loading the demo data (all of it fictitious):\n", 1)[1].split("\n\n")[0]
    lines = summary.splitlines()
    assert len(lines) >= 5 and all(line.startswith("  ") and ": " in line for line in lines)
    assert "records" not in summary and "Demo " not in summary
