"""The public annual report (`/statistics/?year=YYYY&format=pdf`, no login): the protected
tables of the page, every suppressed cell a dash, the summary from the published totals."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
from django.core.cache import cache

from anshim.reports import figures, public, render

from .conftest import YEAR, World


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


def test_the_summary_uses_the_published_totals(world: World) -> None:
    tables = public.public_tables(figures.year_period(YEAR))
    ages = next(t for t in tables if t.key == "victims_by_age")
    # three victims in the year: every count under 10 is suppressed, the total too
    assert ages.rows[-1][0] == public.total_label()
    assert render._headline(ages) == "—"
    assert render._headline(figures.victims_by_age(figures.year_period(YEAR))) == "3"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_the_public_pdf(world: World, client: Any, tmp_path: Any) -> None:
    response = client.get("/statistics/", {"year": YEAR, "format": "pdf"},
                          HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 200 and response.content[:4] == b"%PDF"
    assert response["Content-Disposition"] == (
        f'attachment; filename="anshim-statistics-{YEAR}.pdf"')
    path = tmp_path / "s.pdf"
    path.write_bytes(response.content)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert str(YEAR) in text and "—" in text
    # the fixture's three victims are all suppressed: the age table's summary line is a dash
    assert "연령대별 지원 피해자: —" in text
    assert client.get("/statistics/", {"year": YEAR}).status_code == 200
    # kept: the second download is the same bytes
    again = client.get("/statistics/", {"year": YEAR, "format": "pdf"},
                       HTTP_ACCEPT_LANGUAGE="ko")
    assert again.content == response.content
