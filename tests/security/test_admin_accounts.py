"""The admin role cannot take over accounts: no TOTP keys or password setting in the Django
admin, no role edits there, never one's own role; role changes and recoveries need a second
person (a supervisor); every admin change is in the audit chain."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from anshim.security import accounts
from anshim.security.models import AccountRequest, AuditEntry, User

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "violet-harbour-lantern-91"


def actions() -> list[str]:
    return list(AuditEntry.objects.order_by("seq").values_list("action", flat=True))


@pytest.fixture
def people(make_user: Any) -> dict[str, Any]:
    return {"admin": make_user("admin", username="adm"),
            "sup": make_user("supervisor", username="sup"),
            "sup2": make_user("supervisor", username="sup2"),
            "kim": make_user("counselor", username="kim")}


def signed_in(login_client: Any, user: Any) -> Client:
    return login_client(user, Client())


# --- The Django admin shows no secrets and sets no passwords or roles ------------------------


def test_no_second_factor_secrets_in_the_admin(people: dict[str, Any],
                                               login_client: Any) -> None:
    for model in (TOTPDevice, StaticDevice, StaticToken):
        assert not admin.site.is_registered(model)
    device = TOTPDevice.objects.create(user=people["kim"], name="phone", confirmed=True)
    client = signed_in(login_client, people["admin"])
    assert client.get("/staff/admin/otp_totp/totpdevice/").status_code == 404
    assert client.get(f"/staff/admin/otp_totp/totpdevice/{device.pk}/change/").status_code \
        == 404
    index = client.get("/staff/admin/").content.decode()
    assert "totpdevice" not in index and "staticdevice" not in index
    assert device.key not in client.get(
        f"/staff/admin/security/user/{people['kim'].pk}/change/").content.decode()


def test_the_admin_cannot_set_passwords(people: dict[str, Any], login_client: Any) -> None:
    client = signed_in(login_client, people["admin"])
    kim = people["kim"]
    # Django's "set password" page is gone (the admin's catch-all finds no such object).
    page = client.get(f"/staff/admin/security/user/{kim.pk}/password/", follow=True)
    assert 'name="password1"' not in page.content.decode()
    client.post(f"/staff/admin/security/user/{kim.pk}/password/", {
        "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, follow=True)
    kim.refresh_from_db()
    assert not kim.check_password(NEW_PASSWORD)
    page = client.get(f"/staff/admin/security/user/{kim.pk}/change/").content.decode()
    assert 'name="password' not in page and "/password/" not in page
    add = client.get("/staff/admin/security/user/add/").content.decode()
    assert 'name="password1"' not in add and 'name="role"' not in add


def test_a_new_account_has_no_role_and_no_password(people: dict[str, Any],
                                                   login_client: Any) -> None:
    client = signed_in(login_client, people["admin"])
    response = client.post("/staff/admin/security/user/add/", {
        "username": "newbie", "display_name": "New Bie", "email": "",
        "preferred_language": "ko", "role": "supervisor", "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD, "is_superuser": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(username="newbie")
    assert user.role == "" and not user.has_usable_password() and not user.is_superuser
    entry = AuditEntry.objects.get(action="admin.add")
    assert entry.actor_id == people["admin"].pk and entry.target_pk == str(user.pk)


def test_the_admin_cannot_change_a_role_or_superuser_flag(people: dict[str, Any],
                                                          login_client: Any) -> None:
    admin_user = people["admin"]
    client = signed_in(login_client, admin_user)
    url = f"/staff/admin/security/user/{admin_user.pk}/change/"
    response = client.post(url, {
        "username": admin_user.username, "display_name": "Changed", "email": "",
        "preferred_language": "ko", "role": "supervisor", "is_active": "on",
        "is_superuser": "on", "is_staff": "on",
        "last_login_0": "", "last_login_1": "", "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00"})
    assert response.status_code == 302, response.content.decode()[:2000]
    admin_user.refresh_from_db()
    assert admin_user.display_name == "Changed"
    assert admin_user.role == "admin" and not admin_user.is_superuser
    change = AuditEntry.objects.get(action="admin.change")
    assert change.target_pk == str(admin_user.pk) and "display" in change.reason.lower()
    assert "Changed" not in change.reason  # field names, never the values typed


def test_bulk_admin_actions_are_audited(people: dict[str, Any], login_client: Any) -> None:
    from anshim.security import audit

    entry = audit.record(actor=None, action="case.view", reason="x")
    client = signed_in(login_client, people["admin"])
    # Django's built-in bulk delete action is refused for the audit log (no delete rights).
    response = client.post("/staff/admin/security/auditentry/", {
        "action": "delete_selected", "_selected_action": [entry.pk]})
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    assert response.status_code in (200, 302)


# --- Two people for role changes -------------------------------------------------------------


def test_an_admin_cannot_raise_their_own_role(people: dict[str, Any],
                                              login_client: Any) -> None:
    admin_user = people["admin"]
    client = signed_in(login_client, admin_user)
    response = client.post(f"/staff/accounts/{admin_user.pk}/role/",
                           {"new_role": "supervisor"}, follow=True)
    assert response.status_code == 200
    assert not AccountRequest.objects.exists()
    admin_user.refresh_from_db()
    assert admin_user.role == "admin"
    with pytest.raises(accounts.OwnAccount):
        accounts.propose_role_change(admin_user, admin_user, "supervisor")


def test_role_change_proposed_by_an_admin_and_approved_by_a_supervisor(
        people: dict[str, Any], login_client: Any) -> None:
    admin_client = signed_in(login_client, people["admin"])
    kim = people["kim"]
    response = admin_client.post(f"/staff/accounts/{kim.pk}/role/", {"new_role": "supervisor"})
    assert response.status_code == 302
    proposal = AccountRequest.objects.get()
    kim.refresh_from_db()
    assert kim.role == "counselor"  # nothing happens until a supervisor approves
    # The admin cannot approve (403), nor can the account holder.
    assert admin_client.post(f"/staff/accounts/requests/{proposal.pk}/approve/").status_code \
        == 403
    with pytest.raises(PermissionDenied):
        accounts.approve(kim, proposal.pk)
    sup_client = signed_in(login_client, people["sup"])
    page = sup_client.get("/staff/accounts/").content.decode()
    assert f"/staff/accounts/requests/{proposal.pk}/approve/" in page
    response = sup_client.post(f"/staff/accounts/requests/{proposal.pk}/approve/")
    assert response.status_code == 302
    kim.refresh_from_db()
    assert kim.role == "supervisor"
    proposal.refresh_from_db()
    assert proposal.status == "approved" and proposal.decided_by_id == people["sup"].pk
    # A second click decides nothing more.
    sup_client.post(f"/staff/accounts/requests/{proposal.pk}/approve/")
    assert actions().count("account.role_changed") == 1
    changed = AuditEntry.objects.get(action="account.role_changed")
    assert changed.reason == f"request={proposal.pk} role=counselor->supervisor"
    assert {"account.role_change_proposed", "account.request_approved"} <= set(actions())


def test_a_supervisor_cannot_approve_their_own_proposal(people: dict[str, Any]) -> None:
    proposal = accounts.propose_role_change(people["sup"], people["kim"], "erasure")
    with pytest.raises(accounts.OwnAccount):
        accounts.approve(people["sup"], proposal.pk)
    with pytest.raises(accounts.OwnAccount):
        accounts.reject(people["sup"], proposal.pk)
    accounts.approve(people["sup2"], proposal.pk)
    people["kim"].refresh_from_db()
    assert people["kim"].role == "erasure"


def test_one_pending_request_per_kind_and_rejection(people: dict[str, Any]) -> None:
    first = accounts.propose_role_change(people["admin"], people["kim"], "erasure")
    with pytest.raises(accounts.AlreadyPending):
        accounts.propose_role_change(people["admin"], people["kim"], "supervisor")
    accounts.reject(people["sup"], first.pk)
    with pytest.raises(accounts.NotPending):
        accounts.approve(people["sup"], first.pk)
    people["kim"].refresh_from_db()
    assert people["kim"].role == "counselor"
    accounts.propose_role_change(people["admin"], people["kim"], "supervisor")  # now allowed


def test_a_role_that_changed_meanwhile_is_not_overwritten(people: dict[str, Any]) -> None:
    proposal = accounts.propose_role_change(people["admin"], people["kim"], "supervisor")
    User.objects.filter(pk=people["kim"].pk).update(role="erasure")
    with pytest.raises(accounts.RoleChanged):
        accounts.approve(people["sup"], proposal.pk)
    people["kim"].refresh_from_db()
    assert people["kim"].role == "erasure"


def test_other_roles_cannot_use_the_accounts_pages(make_user: Any, login_client: Any,
                                                   people: dict[str, Any]) -> None:
    for role in ("counselor", "erasure", "prevention", "expert"):
        client = signed_in(login_client, make_user(role))
        assert client.get("/staff/accounts/").status_code == 403
        assert client.post(f"/staff/accounts/{people['kim'].pk}/role/",
                           {"new_role": "supervisor"}).status_code == 403


# --- Recovery: a supervisor-approved reset that forces a new TOTP enrolment ------------------


def test_recovery_removes_factors_and_issues_a_single_use_link(
        people: dict[str, Any], login_client: Any) -> None:
    kim = people["kim"]
    TOTPDevice.objects.create(user=kim, name="phone", confirmed=True)
    static = StaticDevice.objects.create(user=kim, name="backup", confirmed=True)
    StaticToken.objects.create(device=static, token="abcdefgh")
    kims_browser = signed_in(login_client, kim)
    assert kims_browser.get("/staff/")["Location"] == "/staff/cases/"

    accounts.propose_recovery(people["admin"], kim)
    sup_client = signed_in(login_client, people["sup"])
    proposal = AccountRequest.objects.get()
    response = sup_client.post(f"/staff/accounts/requests/{proposal.pk}/approve/")
    assert response.status_code == 200
    html = response.content.decode()
    link = html.split('<code class="recovery-link">')[1].split("</code>")[0]
    path = link.removeprefix("http://testserver")
    assert path.startswith("/staff/recover/")
    token = path.split("/")[3]
    proposal.refresh_from_db()
    assert token not in proposal.recovery_token_hash and len(proposal.recovery_token_hash) == 64
    assert token not in str(list(AuditEntry.objects.values()))
    kim.refresh_from_db()
    assert not kim.has_usable_password()
    assert not TOTPDevice.objects.filter(user=kim).exists()
    assert not StaticDevice.objects.filter(user=kim).exists()
    # Kim's open session has ended.
    assert kims_browser.get("/staff/")["Location"].startswith("/staff/login/")
    assert not any(s.get_decoded().get("_auth_user_id") == str(kim.pk)
                   for s in Session.objects.all())

    holder = Client()
    assert holder.get(path).status_code == 200
    weak = holder.post(path, {"new_password1": "counselor2024", "new_password2": "counselor2024"})
    assert weak.status_code == 200 and 'role="alert"' in weak.content.decode()
    done = holder.post(path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done["Location"] == "/staff/login/"
    # Used once: the link is dead.
    assert holder.get(path).status_code == 404
    # Signing in now leads to a fresh authenticator enrolment.
    response = holder.post("/staff/login/", {"username": "kim", "password": NEW_PASSWORD})
    assert response["Location"] == "/staff/otp/setup/"
    assert {"account.recovery_proposed", "account.recovery_issued",
            "account.recovery_completed"} <= set(actions())


def test_a_recovery_link_expires(people: dict[str, Any]) -> None:
    accounts.propose_recovery(people["admin"], people["kim"])
    decision = accounts.approve(people["sup"], AccountRequest.objects.get().pk)
    AccountRequest.objects.update(recovery_expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = Client().get(f"/staff/recover/{decision.recovery_token}/")
    assert response.status_code == 404
    assert "supervisor" in response.content.decode().lower() or "슈퍼바이저" in \
        response.content.decode()
    with pytest.raises(accounts.RecoveryLinkInvalid):
        accounts.complete_recovery(decision.recovery_token, NEW_PASSWORD)


@pytest.mark.parametrize("token", ["x", "a" * 43, "%00", "../../etc"])
def test_made_up_recovery_links_are_refused(token: str) -> None:
    # (A control character never gets that far: 422, see tests/config.)
    assert Client().get(f"/staff/recover/{token}/").status_code in (404, 422)


# --- One's own password -------------------------------------------------------------------


def test_own_password_change_applies_the_validators(people: dict[str, Any],
                                                    login_client: Any) -> None:
    kim = people["kim"]
    client = signed_in(login_client, kim)
    assert client.get("/staff/password/").status_code == 200
    weak = client.post("/staff/password/", {
        "old_password": "correct-horse-battery-staple", "new_password1": "counselor2024",
        "new_password2": "counselor2024"})
    assert weak.status_code == 200 and 'role="alert"' in weak.content.decode()
    done = client.post("/staff/password/", {
        "old_password": "correct-horse-battery-staple", "new_password1": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD})
    assert done.status_code == 302
    kim.refresh_from_db()
    assert kim.check_password(NEW_PASSWORD)
    assert client.get("/staff/")["Location"] == "/staff/cases/"  # still signed in
    assert "auth.password_changed" in actions()


# --- The first accounts of a new installation ----------------------------------------------


def test_bootstrap_the_first_supervisor_then_it_closes(db: Any) -> None:
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = StringIO()
    call_command("bootstrap_staff", "boss", "--role", "supervisor", stdout=out)
    path = next(line.strip() for line in out.getvalue().splitlines()
                if line.strip().startswith("/staff/recover/"))
    boss = User.objects.get(username="boss")
    assert boss.role == "supervisor" and not boss.has_usable_password()
    holder = Client()
    holder.post(path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert holder.post("/staff/login/", {"username": "boss", "password": NEW_PASSWORD})[
        "Location"] == "/staff/otp/setup/"
    # Still open until that supervisor has an authenticator: an admin can be added now.
    call_command("bootstrap_staff", "conf", "--role", "admin", stdout=StringIO())
    TOTPDevice.objects.create(user=boss, name="phone", confirmed=True)
    with pytest.raises(CommandError, match=r"supervisor|슈퍼바이저"):
        call_command("bootstrap_staff", "another", "--role", "supervisor", stdout=StringIO())
    assert "account.bootstrapped" in actions()


def test_groups_are_not_offered(people: dict[str, Any], login_client: Any) -> None:
    from django.contrib.auth.models import Group

    assert not admin.site.is_registered(Group)


def test_accounts_pages_in_korean_with_a_bounded_number_of_queries(
        people: dict[str, Any], login_client: Any, make_user: Any,
        django_assert_max_num_queries: Any) -> None:
    client = signed_in(login_client, people["sup"])
    for i in range(12):
        user = make_user("counselor", username=f"c{i:02d}")
        if i % 3 == 0:
            accounts.propose_role_change(people["admin"], user, "erasure")
    with django_assert_max_num_queries(12):
        page = client.get("/staff/accounts/")
    html = page.content.decode()
    assert page.status_code == 200 and "직원 계정" in html and "승인" in html
    with django_assert_max_num_queries(12):
        detail = client.get(f"/staff/accounts/{people['kim'].pk}/")
    assert detail.status_code == 200 and "역할 변경 제안" in detail.content.decode()
    english = client.get("/staff/accounts/", headers={"accept-language": "en"})
    assert "Staff accounts" in english.content.decode()
