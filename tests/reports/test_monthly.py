"""The monthly report from the staff UI: the same tables as `anshim report monthly`, as a
page and as PDF, xlsx and JSON downloads; a bad month is said, never a 500."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from typing import Any

import pytest
from django.core.management import call_command

from .conftest import YEAR, World


def test_the_page_and_the_command_give_the_same_tables(make_user: Any, login_client: Any,
                                                       world: World) -> None:
    c = login_client(make_user("supervisor"))
    page = c.get(f"/staff/reports/monthly/?month={YEAR}-02&format=json",
                 HTTP_ACCEPT_LANGUAGE="ko")
    assert page.status_code == 200
    assert page["Content-Disposition"] == (
        f'attachment; filename="anshim-monthly-{YEAR}-02.json"')
    out = io.StringIO()
    call_command("report", "monthly", "--month", f"{YEAR}-02", "--json", stdout=out)
    assert json.loads(page.content) == json.loads(out.getvalue())
    tables = {t["key"]: t for t in json.loads(page.content)["tables"]}
    # February: case 0 (under 14; distribution and sextortion), its two notices
    ages = tables["victims_by_age"]["rows"]
    assert ages[0][1] == 1 and sum(r[1] for r in ages) == 1
    assert sum(r[1] for r in tables["removal_by_route"]["rows"]) == 2
    html = c.get(f"/staff/reports/monthly/?month={YEAR}-02", HTTP_ACCEPT_LANGUAGE="ko")
    assert html.status_code == 200 and "월간 보고서" in html.content.decode()
    xlsx = c.get(f"/staff/reports/monthly/?month={YEAR}-02&format=xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_the_pdf_has_the_korean_headings(make_user: Any, login_client: Any, world: World,
                                         tmp_path: Any) -> None:
    c = login_client(make_user("supervisor"))
    pdf = c.get(f"/staff/reports/monthly/?month={YEAR}-02&format=pdf",
                HTTP_ACCEPT_LANGUAGE="ko")
    assert pdf.status_code == 200 and pdf.content[:4] == b"%PDF"
    path = tmp_path / "m.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert f"{YEAR}-02" in text and "요청 경로별" in text


@pytest.mark.parametrize("month", ["2025-13", "abc", "1999-01", "2999-01", " "])
def test_a_bad_month_is_said_not_a_500(make_user: Any, login_client: Any, world: World,
                                       month: str) -> None:
    c = login_client(make_user("supervisor"))
    page = c.get("/staff/reports/monthly/", {"month": month}, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    body = page.content.decode()
    if month.strip():
        assert 'role="alert"' in body
    download = c.get("/staff/reports/monthly/", {"month": month, "format": "pdf"},
                     HTTP_ACCEPT_LANGUAGE="en")
    assert download.status_code == (400 if month.strip() else 200)


def test_the_default_is_the_last_month_that_is_over(make_user: Any, login_client: Any,
                                                    world: World,
                                                    django_assert_max_num_queries: Any) -> None:
    from anshim.reports import figures, summary

    c = login_client(make_user("supervisor"))
    summary.rebuild_all()
    c.get("/staff/reports/monthly/")
    # a fixed number of aggregate queries, whatever the volume (no query per row)
    with django_assert_max_num_queries(90):
        page = c.get("/staff/reports/monthly/")
    assert page.status_code == 200
    assert page.context["period"] == figures.last_closed_month()
    assert figures.last_closed_month().closed
