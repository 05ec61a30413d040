"""Scan now (issue 19 item 2) and links the victim reports (item 4), against a benign test
site on 127.0.0.1 (allowed as a private host on the source) and a real bank entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from anshim.cases.models import Case, Channel, Person
from anshim.erasure.models import (
    EntrySource,
    LinkResult,
    MonitoredSource,
    ReportedLink,
    ScanKind,
    ScanRun,
    ScanStatus,
)
from anshim.erasure.scan import ScanReport, run_scan
from anshim.erasure.scan_now import execute, extract_urls
from anshim.erasure.services import register_fingerprints
from anshim.fingerprint import fingerprint_bytes
from anshim.portal.models import PortalMessage

from .media import picture_bytes
from .workflow_support import FakeSite, transformed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def setup(settings: Any, tmp_path: Path) -> None:
    settings.ANSHIM_EVIDENCE_KEY_FILE = str(tmp_path / "evidence.pem")
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    settings.ANSHIM_SCAN_WORKERS = 1


@pytest.fixture
def site(tmp_path: Path) -> Any:
    with FakeSite(tmp_path / "site") as s:
        s.put_image("a.jpg", transformed(900, "recompressed"))
        s.put_image("b.png", picture_bytes(901))
        s.page = s.put_page("index.html", ["a.jpg", "b.png"])
        s.other = s.put_page("other.html", ["b.png"])
        yield s


@pytest.fixture
def case(bank: Any, make_case: Any) -> Any:
    case = make_case()
    register_fingerprints(bank, case=case, source=EntrySource.STAFF_EVIDENCE, actor=None,
                          fingerprints=fingerprint_bytes(picture_bytes(900), dihedral=True))
    return case


def test_extract_urls() -> None:
    text = "여기요 https://a.test/x/1. 그리고 http://b.test/p?q=1, 또 https://a.test/x/1"
    assert extract_urls(text) == ["https://a.test/x/1", "http://b.test/p?q=1"]
    assert extract_urls("") == []


def test_progress_is_reported_as_the_scan_grows(site: Any, case: Any) -> None:
    seen: list[tuple[int, int, int]] = []

    def progress(r: ScanReport) -> None:
        seen.append((r.pages, r.media, len(r.matches)))

    report = run_scan([site.page], depth=0, per_host_rate=200,
                      allowed_private_hosts=["127.0.0.1"], on_progress=progress)
    assert seen[-1] == (report.pages, report.media, len(report.matches)) == (1, 2, 1)
    assert seen == sorted(seen) and len(seen) >= 3


def test_scan_now_on_a_source(site: Any, case: Any, make_user: Any, login_client: Any,
                              django_capture_on_commit_callbacks: Any) -> None:
    c = login_client(make_user("erasure"))
    source = MonitoredSource.objects.create(name="테스트", seeds=site.page, depth=0,
                                            per_host_rate=50, allowed_private_hosts="127.0.0.1")
    before = c.get(f"/staff/erasure/sources/{source.pk}/").content.decode()
    assert "아직 검색하지 않았습니다" in before
    with django_capture_on_commit_callbacks(execute=True):
        r = c.post(f"/staff/erasure/sources/{source.pk}/scan/")
    run = ScanRun.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/staff/erasure/scans/{run.pk}/"
    assert (run.status, run.pages, run.media, run.matches, run.new_sightings) == (
        ScanStatus.DONE, 1, 2, 1, 1)
    page = c.get(f"/staff/erasure/scans/{run.pk}/").content.decode()
    assert 'data-status="done"' in page and 'http-equiv="refresh"' not in page
    source.refresh_from_db()
    assert source.last_scan == run and source.last_run_at == run.finished_at
    detail = c.get(f"/staff/erasure/sources/{source.pk}/").content.decode()
    assert "1 pages, 2 media, 1 matches" in detail or "페이지 1" in detail
    assert "종료 · " in c.get("/staff/erasure/sources/").content.decode()
    # A second scan while one is under way is refused with a message (nothing queued twice).
    ScanRun.objects.create(kind=ScanKind.SOURCE, source=source)
    r = c.post(f"/staff/erasure/sources/{source.pk}/scan/", follow=True)
    assert "이미 검색 중" in r.content.decode()
    assert ScanRun.objects.filter(status=ScanStatus.QUEUED).count() == 1
    # A running page refreshes itself; a run delivered twice runs once.
    queued = ScanRun.objects.get(status=ScanStatus.QUEUED)
    assert 'http-equiv="refresh"' in c.get(f"/staff/erasure/scans/{queued.pk}/").content.decode()
    assert execute(run.pk) == "skipped"


def test_links_from_the_portal_are_stored_checked_and_shown(
        site: Any, case: Any, make_user: Any, login_client: Any,
        django_capture_on_commit_callbacks: Any) -> None:
    MonitoredSource.objects.create(name="로컬", seeds=site.page, enabled=False,
                                   allowed_private_hosts="127.0.0.1")
    with django_capture_on_commit_callbacks(execute=True):
        PortalMessage.objects.create(case=case,
                                     body=f"이 주소에 또 올라왔어요 {site.page} 확인해 주세요")
        PortalMessage.objects.create(case=case, body=f"{site.page}", from_victim=False)
    link = ReportedLink.objects.get()
    assert link.origin == "portal_message" and link.url == site.page
    assert link.result == LinkResult.MATCHED and link.matches == 1 and link.checked_at
    run = ScanRun.objects.get()
    assert run.kind == ScanKind.LINKS and run.status == ScanStatus.DONE

    c = login_client(make_user("erasure"))
    with CaptureQueriesContext(connection) as q:
        page = c.get("/staff/erasure/").content.decode()
    assert "피해자가 알린 주소" in page and site.page[:50] in page
    assert "등록된 특징값과 일치" in page and "피해자 신고" in page  # the queue row is marked
    assert len(q) <= 30

    # Staff add a link on the case page; it is checked at once; a bad one is a form error.
    with django_capture_on_commit_callbacks(execute=True):
        r = c.post(f"/staff/erasure/cases/{case.code}/", {"url": site.other})
    assert r.status_code == 302
    other = ReportedLink.objects.get(url=site.other)
    assert other.origin == "staff" and other.result == LinkResult.NO_MATCH
    r = c.post(f"/staff/erasure/cases/{case.code}/", {"url": "javascript:alert(1)"})
    assert r.status_code == 200 and ReportedLink.objects.count() == 2
    r = c.post(f"/staff/erasure/cases/{case.code}/", {"url": site.other})
    assert r.status_code == 200 and "이미" in r.content.decode()
    # Scan now on the case looks at its links and sightings' pages again.
    with django_capture_on_commit_callbacks(execute=True):
        r = c.post(f"/staff/erasure/cases/{case.code}/scan/")
    run = ScanRun.objects.filter(kind=ScanKind.CASE).get()
    assert run.status == ScanStatus.DONE and run.pages >= 2 and run.matches >= 1
    body = c.get(f"/staff/erasure/cases/{case.code}/").content.decode()
    assert "reported-links" in body and "지금 검색" in body


def test_a_portal_report_with_addresses_becomes_links(
        django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        case = Case.objects.create(code="AN-LNK1-XX", person=Person.objects.create(),
                                   channel=Channel.PORTAL,
                                   summary="무슨 일\n\nWhere:\nhttps://a.test/1\nhttp://b.test/2")
        Case.objects.create(code="AN-LNK2-XX", person=Person.objects.create(),
                            channel=Channel.PHONE, summary="https://c.test/3")
    assert sorted(ReportedLink.objects.values_list("url", flat=True)) == [
        "http://b.test/2", "https://a.test/1"]
    # Public addresses that do not resolve here: checked, and marked as not fetched.
    assert set(ReportedLink.objects.filter(case=case).values_list("result", flat=True)) <= {
        LinkResult.UNREACHABLE, LinkResult.NO_MATCH}


@pytest.mark.parametrize("role", ["counselor", "expert"])
def test_others_cannot_scan(role: str, make_user: Any, login_client: Any, case: Any) -> None:
    c = login_client(make_user(role))
    source = MonitoredSource.objects.create(name="x", seeds="http://x.test/")
    assert c.post(f"/staff/erasure/sources/{source.pk}/scan/").status_code == 403
    assert c.post(f"/staff/erasure/cases/{case.code}/scan/").status_code == 403
    assert c.get(f"/staff/erasure/cases/{case.code}/").status_code == 403
    assert not ScanRun.objects.exists()


def test_case_and_scan_pages_cost_constant_queries(case: Any, make_user: Any,
                                                   login_client: Any) -> None:
    c = login_client(make_user("erasure"))
    ReportedLink.objects.create(case=case, url="https://a.test/0", origin="staff")
    run = ScanRun.objects.create(kind=ScanKind.CASE, case=case, status=ScanStatus.DONE)
    with CaptureQueriesContext(connection) as one:
        assert c.get(f"/staff/erasure/cases/{case.code}/").status_code == 200
    ReportedLink.objects.bulk_create(ReportedLink(case=case, url=f"https://a.test/{i}",
                                                  origin="portal_message") for i in range(1, 40))
    ScanRun.objects.bulk_create(ScanRun(kind=ScanKind.LINKS, case=case) for _ in range(5))
    with CaptureQueriesContext(connection) as many:
        page = c.get(f"/staff/erasure/cases/{case.code}/").content.decode()
    assert len(many) == len(one) and page.count("https://a.test/") >= 40
    with CaptureQueriesContext(connection) as q:
        assert c.get(f"/staff/erasure/scans/{run.pk}/").status_code == 200
    assert len(q) <= 20
