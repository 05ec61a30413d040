"""Issue 19 item 7: every role lands on its own start page; error pages are styled,
translated and lead back."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db

START_PAGES = {
    "counselor": "/staff/cases/",
    "erasure": "/staff/erasure/",
    "prevention": "/staff/prevention/",
    "expert": "/staff/experts/my/",
    "supervisor": "/staff/reports/",
    "admin": "/staff/accounts/",
}


@pytest.mark.parametrize("role", sorted(START_PAGES))
def test_every_role_lands_on_its_start_page_which_it_may_open(
        role: str, make_user: Any, login_client: Any) -> None:
    c = login_client(make_user(role))
    response = c.get("/staff/")
    assert response.status_code == 302 and response["Location"] == START_PAGES[role]
    # The start page is one the role may open: no refusal right after signing in.
    assert c.get(START_PAGES[role]).status_code == 200


def test_a_refusal_is_a_korean_page_with_a_way_back(make_user: Any, login_client: Any) -> None:
    c = login_client(make_user("expert"))
    with CaptureQueriesContext(connection) as queries:
        response = c.get("/staff/accounts/", HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 403
    body = response.content.decode()
    assert "권한 없음" in body and 'href="/staff/"' in body and "내 시작 페이지로" in body
    assert "Forbidden" not in body and 'href="/staff/static' not in body
    assert "staff.css" in body  # the staff frame, styled
    assert len(queries) <= 15


def test_a_staff_404_is_translated_and_leads_to_the_start_page(
        make_user: Any, login_client: Any) -> None:
    c = login_client(make_user("counselor"))
    response = c.get("/staff/no-such-page/", HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 404
    body = response.content.decode()
    assert "페이지를 찾을 수 없습니다" in body and 'href="/staff/"' in body
    assert "Not Found" not in body and "staff.css" in body


def test_a_public_404_uses_the_portal_frame(client: Any) -> None:
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 404
    body = response.content.decode()
    assert "페이지를 찾을 수 없습니다" in body and "처음 화면으로" in body
    assert "portal.css" in body and "staff.css" not in body  # no staff frame for a victim
    english = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Page not found" in english.content.decode()


def test_the_500_page_is_translated_and_needs_no_database(rf: Any) -> None:
    from django.utils import translation

    from anshim.config import urls
    from anshim.security import errors

    assert urls.handler500 == "anshim.security.errors.server_error"
    with translation.override("ko"), CaptureQueriesContext(connection) as queries:
        response = errors.server_error(rf.get("/staff/cases/"))
    assert response.status_code == 500
    body = response.content.decode()
    assert "잠시 문제가 생겼습니다" in body and 'href="/staff/"' in body and "staff.css" in body
    assert len(queries) == 0
    with translation.override("ko"):
        public = errors.server_error(rf.get("/status/")).content.decode()
    assert "portal.css" in public and 'href="/"' in public


def test_the_500_page_falls_back_to_fixed_text(rf: Any, settings: Any) -> None:
    from anshim.security import errors

    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [], "APP_DIRS": False,
                           "OPTIONS": {**settings.TEMPLATES[0].get("OPTIONS", {}),
                                       "loaders": []}}]
    response = errors.server_error(rf.get("/"))
    assert response.status_code == 500 and "잠시 문제가 생겼습니다" in response.content.decode()
