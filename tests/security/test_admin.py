"""The Django admin: configuration only, behind the staff sign-in and the policy."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from anshim.security import audit
from anshim.security.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_admin_role_with_totp_gets_in(client: Client, make_user: Any, login_client: Any) -> None:
    login_client(make_user("admin"))
    assert client.get("/staff/admin/").status_code == 200
    assert client.get("/staff/admin/security/user/").status_code == 200


def test_admin_without_second_factor_is_sent_to_staff_login(client: Client,
                                                            make_user: Any) -> None:
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    response = client.get("/staff/admin/")
    assert response.status_code == 302
    response = client.get(response["Location"])  # the admin's login view
    assert response.status_code == 302
    assert response["Location"] == "/staff/login/?next=/staff/admin/"


@pytest.mark.parametrize("role", ["counselor", "supervisor", "erasure", "expert"])
def test_other_roles_are_kept_out(client: Client, make_user: Any, login_client: Any,
                                  role: str) -> None:
    login_client(make_user(role, is_staff=True))
    assert client.get("/staff/admin/").status_code == 302


def test_user_admin_shows_the_role_without_editing_it(client: Client, make_user: Any,
                                                     login_client: Any) -> None:
    login_client(make_user("admin"))
    target = make_user("counselor")
    page = client.get(f"/staff/admin/security/user/{target.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200 and 'name="role"' not in html
    assert f"/staff/accounts/{target.pk}/" in html  # where a role change is proposed


def test_audit_entries_are_read_only_in_admin(client: Client, make_user: Any,
                                              login_client: Any) -> None:
    login_client(make_user("admin"))
    entry = audit.record(actor=None, action="case.view", reason="check")
    assert client.get("/staff/admin/security/auditentry/").status_code == 200
    page = client.get(f"/staff/admin/security/auditentry/{entry.pk}/change/")
    assert page.status_code == 200
    assert 'name="reason"' not in page.content.decode()  # no editable field
    assert client.get("/staff/admin/security/auditentry/add/").status_code == 403
    response = client.post(f"/staff/admin/security/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
