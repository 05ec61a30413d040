"""Staff pages for platforms and monitored sources (issue 19 item 1): erasure specialists and
supervisors set them up in Korean; bad input is a form error; others are refused; audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from anshim.erasure.models import MonitoredSource, Platform
from anshim.erasure.setup import PLATFORM_SAVED, SOURCE_SAVED
from anshim.security.models import AuditEntry

pytestmark = pytest.mark.django_db

PLATFORM = {"name": "미니SNS", "domains": "mini.test\nhttps://cdn.mini.test/x", "kind": "social",
            "jurisdiction": "domestic", "channel": "email", "contact_email": "legal@mini.test",
            "form_url": "", "webhook_url": "", "expected_response_hours": "48",
            "notice_language": "ko", "legal_basis": "", "notice_template_ko": "",
            "notice_template_en": ""}
SOURCE = {"name": "테스트 사이트", "seeds": "http://127.0.0.1:8123/", "allowed_domains": "",
          "depth": "2", "every_minutes": "60", "enabled": "on", "per_host_rate": "2",
          "per_host_concurrency": "2", "allowed_private_hosts": "127.0.0.1"}


@pytest.mark.parametrize("role", ["erasure", "supervisor"])
def test_specialist_and_supervisor_set_up_platforms_and_sources(role: str, make_user: Any,
                                                                login_client: Any) -> None:
    c = login_client(make_user(role))
    page = c.get("/staff/erasure/platforms/")
    assert page.status_code == 200 and "플랫폼" in page.content.decode()
    assert c.get("/staff/erasure/platforms/new/").status_code == 200
    r = c.post("/staff/erasure/platforms/new/", PLATFORM)
    assert r.status_code == 302, r.content.decode()[:2000]
    p = Platform.objects.get()
    assert p.domains == "mini.test\ncdn.mini.test" and p.expected_response_hours == 48
    r = c.post(f"/staff/erasure/platforms/{p.pk}/", {**PLATFORM, "notice_language": "en"},
               follow=True)
    assert "저장했습니다" in r.content.decode()
    p.refresh_from_db()
    assert p.notice_language == "en"
    assert AuditEntry.objects.filter(action=PLATFORM_SAVED,
                                     reason__contains="notice_language").exists()

    r = c.post("/staff/erasure/sources/new/", SOURCE)
    assert r.status_code == 302
    s = MonitoredSource.objects.get()
    assert s.private_host_list == ["127.0.0.1"] and s.depth == 2
    listing = c.get("/staff/erasure/sources/").content.decode()
    assert "테스트 사이트" in listing and f"source-{s.pk}" in listing
    assert AuditEntry.objects.filter(action=SOURCE_SAVED).count() == 1


@pytest.mark.parametrize("change, field_error", [
    ({"domains": "not a host!"}, "호스트 이름이 아닙니다"),
    ({"domains": ""}, None),
    ({"channel": "partner_api"}, "웹훅 주소"),
    ({"expected_response_hours": "0"}, "1시간"),
])
def test_platform_form_errors(change: dict[str, str], field_error: str | None, make_user: Any,
                              login_client: Any) -> None:
    c = login_client(make_user("erasure"))
    r = c.post("/staff/erasure/platforms/new/", {**PLATFORM, **change})
    assert r.status_code == 200 and not Platform.objects.exists()
    if field_error:
        assert field_error in r.content.decode()


@pytest.mark.parametrize("change", [{"seeds": "ftp://x.test/"}, {"seeds": ""},
                                    {"depth": "9"}, {"every_minutes": "1"},
                                    {"allowed_private_hosts": "bad host!"}])
def test_source_form_errors(change: dict[str, str], make_user: Any, login_client: Any) -> None:
    c = login_client(make_user("erasure"))
    r = c.post("/staff/erasure/sources/new/", {**SOURCE, **change})
    assert r.status_code == 200 and not MonitoredSource.objects.exists()


def test_duplicate_name_is_a_form_error(make_user: Any, login_client: Any) -> None:
    c = login_client(make_user("erasure"))
    c.post("/staff/erasure/platforms/new/", PLATFORM)
    r = c.post("/staff/erasure/platforms/new/", PLATFORM)
    assert r.status_code == 200 and Platform.objects.count() == 1


@pytest.mark.parametrize("role", ["counselor", "expert", "prevention", "admin"])
def test_other_roles_get_the_styled_403(role: str, make_user: Any, login_client: Any) -> None:
    c = login_client(make_user(role))
    for url in ("/staff/erasure/platforms/", "/staff/erasure/sources/new/"):
        r = c.get(url)
        assert r.status_code == 403
        assert "<html" in r.content.decode().lower()  # the styled page, not a bare text
    assert c.post("/staff/erasure/platforms/new/", PLATFORM).status_code == 403
    assert not Platform.objects.exists()


def test_lists_paginate_and_cost_constant_queries(make_user: Any, login_client: Any) -> None:
    c = login_client(make_user("erasure"))
    Platform.objects.create(name="P0", domains="p0.test")
    with CaptureQueriesContext(connection) as one:
        c.get("/staff/erasure/platforms/")
    Platform.objects.bulk_create(Platform(name=f"P{i}", domains=f"p{i}.test")
                                 for i in range(1, 120))
    with CaptureQueriesContext(connection) as many:
        r = c.get("/staff/erasure/platforms/")
    assert len(many) == len(one) and len(many) <= 20
    assert r.content.decode().count("/staff/erasure/platforms/") >= 50
    assert "?page=2" in r.content.decode()
    MonitoredSource.objects.bulk_create(MonitoredSource(name=f"S{i}", seeds=f"http://s{i}.test/")
                                        for i in range(60))
    with CaptureQueriesContext(connection) as src:
        assert c.get("/staff/erasure/sources/?page=2").status_code == 200
    assert len(src) <= 20


def test_partner_webhook_secret_is_shown_on_request_and_audited(make_user: Any,
                                                                login_client: Any) -> None:
    c = login_client(make_user("erasure"))
    r = c.post("/staff/erasure/platforms/new/", {
        **PLATFORM, "channel": "partner_api", "webhook_url": "https://partner.test/hook"})
    assert r.status_code == 302
    p = Platform.objects.get()
    assert p.webhook_secret
    page = c.get(f"/staff/erasure/platforms/{p.pk}/").content.decode()
    assert 'id="show-secret"' in page and p.webhook_secret not in page
    page = c.get(f"/staff/erasure/platforms/{p.pk}/?secret=1").content.decode()
    assert p.webhook_secret in page
    assert AuditEntry.objects.filter(action="erasure.platform.secret_view").count() == 1
