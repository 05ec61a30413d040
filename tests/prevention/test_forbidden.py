"""A refused page is a translated page, never a bare English 403."""

from __future__ import annotations

from typing import Any


def test_forbidden_page_is_translated(make_user: Any, login_client: Any) -> None:
    c = login_client(make_user("erasure"))
    response = c.get("/staff/prevention/")
    assert response.status_code == 403
    text = response.content.decode()
    assert "권한 없음" in text and "<html" in text
    english = c.get("/staff/prevention/", HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 403
