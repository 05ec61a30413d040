"""`anshim report` and `anshim demo --volume`: the files, their Korean text and figures."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from .conftest import YEAR, World


def _json(*args: str) -> Any:
    out = io.StringIO()
    call_command("report", *args, stdout=out)
    return json.loads(out.getvalue())


def test_json_has_the_annual_tables(world: World) -> None:
    data = _json("annual", "--year", str(YEAR), "--json", "--language", "en")
    ages = next(t for t in data["tables"] if t["key"] == "victims_by_age")
    assert ages["rows"] == [["Under 14", 2], ["14–17", 1], ["18 or older", 0], ["Unknown", 0]]  # noqa: RUF001
    removal = next(t for t in data["tables"] if t["key"] == "removal_times")
    assert ["Social", 3, 3, 30.0, 100.0, 33.3, 66.7, 100.0] in removal["rows"]


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_pdf_in_korean_with_the_figures(world: World, tmp_path: Path) -> None:
    target = tmp_path / "annual.pdf"
    call_command("report", "annual", "--year", str(YEAR), "--output", str(target))
    text = subprocess.run(["pdftotext", str(target), "-"], capture_output=True, text=True,
                          check=True).stdout
    for heading in ("안심 지원센터 보고서", "요약", "연령대별 지원 피해자", "서버 소재지별 삭제",
                    "플랫폼별 삭제 요청부터 삭제까지 걸린 시간", "성별 지원 피해자",
                    "지역별 지원 피해자", "가해자와 피해자의 관계",
                    "개인정보가 함께 유출된 삭제 건"):
        assert heading in text, heading
    # the new tables' figures: 2 female victims, 1 of 4 removed items co-leaked (25.0%)
    assert "여성" in text and "개인정보 동반 유출" in text and "25.0" in text
    assert "14세 미만" in text and "75.0" in text and "100.0" in text
    fonts = subprocess.run(["pdffonts", str(target)], capture_output=True, text=True,
                           check=True).stdout
    assert "NotoSansCJK" in fonts and " yes " in fonts  # embedded


def test_monthly_xlsx(world: World, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    target = tmp_path / "m.xlsx"
    call_command("report", "monthly", "--month", f"{YEAR}-02", "--output", str(target))
    book = load_workbook(target)
    sheet = book["victims_by_age"]
    values = [row for row in sheet.iter_rows(values_only=True)]
    assert values[2][1] == 1  # one victim under 14 in February


def test_bad_arguments_are_clear_errors(db: Any) -> None:
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("report", "monthly", "--month", "2025-13", "--json")
    with pytest.raises(CommandError, match="--year"):
        call_command("report", "annual", "--json")


def test_demo_volume_generates_a_realistic_mix(db: Any) -> None:
    from anshim.cases.models import Case, CaseHarm
    from anshim.erasure.models import Platform, Sighting
    from anshim.reports import demo

    demo.generate(500)
    assert Case.objects.filter(code__startswith=demo.PREFIX).count() == 500
    assert Platform.objects.count() >= 12
    assert CaseHarm.objects.values("harm_type").distinct().count() >= 6
    assert Sighting.objects.filter(is_reupload=True).exists()
    from anshim.erasure.models import TakedownRequest

    assert TakedownRequest.objects.filter(escalation="regulator").exists()
    ages = Case.objects.order_by("created_at").values_list("created_at", flat=True)
    assert (ages.last() - ages.first()).days > 600  # spread over 24 months
    # experts: a pool of 100 who cannot sign in, a quarter of the cases supported, each
    # assignment with an expert of its need's kind, active only on open cases, sessions
    # done in the past and scheduled (with their slots) in the next weeks
    from django.db.models import F

    from anshim.experts.models import (
        SPECIALTY_KIND,
        Appointment,
        AppointmentSlot,
        Assignment,
        Expert,
    )

    experts = Expert.objects.filter(user__username__startswith=demo.EXPERT_PREFIX)
    assert experts.count() == demo.EXPERTS
    assert not any(e.user.has_usable_password() for e in experts.select_related("user"))
    supported = Assignment.objects.values("case").distinct().count()
    assert 0.15 * 500 < supported < 0.35 * 500
    for a in Assignment.objects.select_related("expert", "case"):
        assert a.expert.kind == SPECIALTY_KIND[a.specialty]
        assert (a.status == "active") == (a.case.status != "closed")
    now = timezone.now()
    assert Appointment.objects.filter(status="done", starts_at__lt=now).exists()
    scheduled = Appointment.objects.filter(status="scheduled")
    assert scheduled.exists() and not scheduled.filter(starts_at__lt=now).exists()
    assert AppointmentSlot.objects.filter(appointment__status="scheduled").count() >= (
        3 * scheduled.count())
    # whole 15-minute slots, as the booking service requires
    assert not [a for a in Appointment.objects.all()
                if (a.ends_at - a.starts_at).total_seconds() % 900]
    assert not Appointment.objects.exclude(expert=F("assignment__expert")).exists()
    demo.generate(100)  # a re-run replaces the generated cases and keeps the experts
    assert Case.objects.filter(code__startswith=demo.PREFIX).count() == 100
    assert experts.count() == demo.EXPERTS
    assert Assignment.objects.filter(case__code__startswith=demo.PREFIX).count() == (
        Assignment.objects.count())
