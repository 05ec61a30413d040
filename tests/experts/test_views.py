"""Pages: registry, assignment, booking, the expert's home; 403s and no 500 on bad input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from anshim.experts.models import (
    Appointment,
    AppointmentStatus,
    Assignment,
    Expert,
    SessionLog,
)

from .conftest import PLACE, book, next_weekday

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(login_client: Any, counselor: Any) -> Client:
    return login_client(counselor)


def test_registry_list_and_detail(staff_client: Client, make_expert: Any) -> None:
    expert = make_expert(specialties=("trauma", "family"), regions=("mapo",))
    r = staff_client.get("/staff/experts/")
    assert r.status_code == 200 and str(expert.user) in r.content.decode()
    assert staff_client.get("/staff/experts/?kind=bogus").status_code == 200
    r = staff_client.get(f"/staff/experts/{expert.pk}/")
    assert r.status_code == 200 and "마포구" in r.content.decode()
    assert staff_client.get("/staff/experts/999999/").status_code == 404
    # Counselors view the registry but do not edit it.
    assert staff_client.get(f"/staff/experts/{expert.pk}/edit/").status_code == 403


def test_registry_needs_the_policy(login_client: Any, make_user: Any, client: Client) -> None:
    assert client.get("/staff/experts/").status_code == 302  # to the login page
    for role in ("erasure", "prevention", "expert"):
        c = login_client(make_user(role), Client())
        assert c.get("/staff/experts/").status_code == 403, role


def test_edit_expert(login_client: Any, supervisor: Any, make_expert: Any) -> None:
    expert = make_expert()
    c = login_client(supervisor)
    assert c.get(f"/staff/experts/{expert.pk}/edit/").status_code == 200
    data = {
        "kind": "therapy", "organization": "Centre", "specialties": ["trauma", "crisis"],
        "languages": ["ko", "en"], "regions": ["mapo"], "weekly_capacity": "7", "active": "on",
        "availability-TOTAL_FORMS": "1", "availability-INITIAL_FORMS": "0",
        "availability-MIN_NUM_FORMS": "0", "availability-MAX_NUM_FORMS": "28",
        "availability-0-weekday": "4", "availability-0-start_time": "10:00",
        "availability-0-end_time": "12:00",
    }
    r = c.post(f"/staff/experts/{expert.pk}/edit/", data)
    assert r.status_code == 302, r.content.decode()[:2000]
    expert.refresh_from_db()
    assert expert.weekly_capacity == 7 and expert.specialties == ["trauma", "crisis"]
    assert expert.availability.filter(weekday=4).exists()
    # Bad input: legal specialty for a therapist, end before start, odd minutes: no 500.
    bad = {**data, "specialties": ["civil_damages"], "weekly_capacity": "x",
           "availability-0-start_time": "12:07", "availability-0-end_time": "11:00"}
    r = c.post(f"/staff/experts/{expert.pk}/edit/", bad)
    assert r.status_code == 200 and "errorlist" in r.content.decode()


def test_assign_page_suggests_and_assigns(
    staff_client: Client, make_case: Any, make_expert: Any, immediate_tasks: None,
    mailoutbox: list,
) -> None:
    case = make_case(language="vi")
    best = make_expert(languages=("ko", "vi"))
    make_expert(languages=("ko",))
    url = f"/staff/experts/assign/{case.code}/"
    r = staff_client.get(url)
    assert r.status_code == 200
    r = staff_client.get(url, {"need": "trauma", "language": "vi", "region": ""})
    body = r.content.decode()
    assert r.status_code == 200 and str(best.user) in body
    r = staff_client.get(url, {"need": "nonsense", "language": "xx"})
    assert r.status_code == 200  # errors shown, no 500
    r = staff_client.post(url, {"expert": best.pk, "need": "trauma", "brief": "Brief text"})
    assert r.status_code == 302
    assignment = Assignment.objects.get()
    assert r["Location"] == f"/staff/experts/assignments/{assignment.pk}/"
    # Duplicate, unknown expert, wrong specialty: form errors, no 500.
    for data in ({"expert": best.pk, "need": "trauma"}, {"expert": 999999, "need": "trauma"},
                 {"expert": best.pk, "need": "family"}, {}):
        r = staff_client.post(url, data)
        assert r.status_code == 200
        assert "errorlist" in r.content.decode() or "msg-error" in r.content.decode()
    assert Assignment.objects.count() == 1
    assert staff_client.get("/staff/experts/assign/NOPE-0000/").status_code == 404


def test_assign_forbidden_for_experts(login_client: Any, assignment: Any) -> None:
    c = login_client(assignment.expert.user)
    assert c.get(f"/staff/experts/assign/{assignment.case.code}/").status_code == 403


def test_booking_form(staff_client: Client, assignment: Any) -> None:
    url = f"/staff/experts/assignments/{assignment.pk}/book/"
    assert staff_client.get(url).status_code == 200
    start = next_weekday(0, 10)
    ok = {"date": start.date().isoformat(), "time": "10:00", "duration": "60",
          "mode": "in_person", "location": PLACE}
    assert staff_client.post(url, ok).status_code == 302
    r = staff_client.post(url, {**ok, "time": "10:30"})
    assert r.status_code == 400
    assert "msg-error" in r.content.decode()  # the double-booking message
    for bad in ({**ok, "time": "10:05"}, {**ok, "time": "07:00"}, {**ok, "date": "2001-01-01"},
                {**ok, "date": "not a date"}, {**ok, "duration": "7"}, {**ok, "mode": "x"}, {},
                {**ok, "time": "11:00", "location": "  "}):
        r = staff_client.post(url, bad)
        assert r.status_code == 400, bad
    assert Appointment.objects.count() == 1


def test_assignment_page_cancel_move_outcome(staff_client: Client, assignment: Any,
                                             counselor: Any) -> None:
    appt = book(counselor, assignment, next_weekday(0, 10))
    page = f"/staff/experts/assignments/{assignment.pk}/"
    r = staff_client.get(page)
    assert r.status_code == 200 and "Brief: first session" in r.content.decode()
    r = staff_client.post(f"/staff/experts/appointments/{appt.pk}/move/", {
        "date": next_weekday(2, 11).date().isoformat(), "time": "11:00", "duration": "30",
        "mode": "phone"})
    assert r.status_code == 302
    appt.refresh_from_db()
    assert appt.mode == "phone" and appt.starts_at == next_weekday(2, 11)
    assert staff_client.post(f"/staff/experts/appointments/{appt.pk}/outcome/",
                             {"status": "done"}).status_code == 302
    appt.refresh_from_db()
    assert appt.status == AppointmentStatus.SCHEDULED  # not started yet: refused with a message
    assert staff_client.post(f"/staff/experts/appointments/{appt.pk}/outcome/",
                             {"status": "bogus"}).status_code == 302
    assert staff_client.post(f"/staff/experts/appointments/{appt.pk}/cancel/").status_code == 302
    appt.refresh_from_db()
    assert appt.status == AppointmentStatus.CANCELLED
    assert staff_client.post(f"/staff/experts/appointments/{appt.pk}/cancel/").status_code == 302
    assert staff_client.get(f"/staff/experts/appointments/{appt.pk}/cancel/").status_code == 405
    assert staff_client.post(f"/staff/experts/assignments/{assignment.pk}/end/").status_code == 302
    assignment.refresh_from_db()
    assert assignment.status == "ended"


def test_expert_home_and_assignment(login_client: Any, assignment: Any, make_case: Any,
                                    make_expert: Any, counselor: Any) -> None:
    expert_user = assignment.expert.user
    c = login_client(expert_user)
    book(counselor, assignment, next_weekday(0, 10))
    r = c.get("/staff/experts/my/")
    body = r.content.decode()
    assert r.status_code == 200 and assignment.case.code in body
    r = c.get(f"/staff/experts/assignments/{assignment.pk}/")
    body = r.content.decode()
    assert r.status_code == 200 and "Brief: first session" in body
    # Not the case's personal data or summary.
    for secret in ("홍길동", "010-0000-0000", "victim@example.invalid", "SECRET-SUMMARY"):
        assert secret not in body
    # Another expert's assignment, on another case: 403.
    foreign = Assignment.objects.create(case=make_case(), expert=make_expert(),
                                        specialty="trauma")
    assert c.get(f"/staff/experts/assignments/{foreign.pk}/").status_code == 403
    assert c.get(f"/staff/experts/assignments/{foreign.pk}/book/").status_code == 403
    assert c.get("/staff/experts/assignments/999999/").status_code == 404
    # A staff member without an expert profile has no "my assignments".
    assert login_client(counselor, Client()).get("/staff/experts/my/").status_code == 403


def test_expert_writes_session_log(login_client: Any, assignment: Any, counselor: Any) -> None:
    start = timezone.now() - dt.timedelta(hours=2)
    appt = Appointment.objects.create(assignment=assignment, expert=assignment.expert,
                                      starts_at=start, ends_at=start + dt.timedelta(hours=1))
    url = f"/staff/experts/appointments/{appt.pk}/log/"
    c = login_client(assignment.expert.user)
    assert c.get(url).status_code == 200
    assert c.post(url, {"summary": ""}).status_code == 400
    assert c.post(url, {"summary": "Went well.", "follow_up_needed": "on"}).status_code == 302
    assert SessionLog.objects.get().summary == "Went well."
    # The case's counselor reads it, but may not write it.
    assignment.case.lead_counselor = counselor
    assignment.case.save()
    staff = login_client(counselor, Client())
    page = staff.get(f"/staff/experts/assignments/{assignment.pk}/")
    assert "Went well." in page.content.decode()
    assert staff.get(url).status_code == 403


def test_no_expert_profile_data_leaks_into_other_experts(login_client: Any,
                                                         assignment: Any) -> None:
    # The registry is staff-only; experts cannot browse their colleagues.
    c = login_client(assignment.expert.user)
    assert c.get("/staff/experts/").status_code == 403
    assert c.get(f"/staff/experts/{Expert.objects.get().pk}/").status_code == 403


def test_panel_on_the_case_page(login_client: Any, assignment: Any, counselor: Any,
                                make_user: Any) -> None:
    """The cases app includes experts/_case_panel.html in the case page."""
    book(counselor, assignment, next_weekday(0, 10))
    url = f"/staff/cases/{assignment.case.code}/"
    staff = login_client(counselor).get(url)
    assert staff.status_code == 200
    body = staff.content.decode()
    assert "experts-panel" in body
    assert f"/staff/experts/assign/{assignment.case.code}/" in body
    assert f"/staff/experts/assignments/{assignment.pk}/book/" in body
    expert = login_client(assignment.expert.user, Client()).get(url)
    assert expert.status_code == 200
    body = expert.content.decode()
    assert "experts-panel" in body and "Brief: first session" in body
    assert "/staff/experts/assign/" not in body
    for secret in ("홍길동", "010-0000-0000", "victim@example.invalid", "SECRET-SUMMARY"):
        assert secret not in body
    # An expert without an assignment on the case: 403, not the panel.
    stranger = make_user("expert")
    assert login_client(stranger, Client()).get(url).status_code == 403


GARBAGE = [
    {}, {"date": "2030-02-30", "time": "25:00", "duration": "abc", "mode": "<script>"},
    {"summary": "x" * 30000}, {"status": "done" * 100, "reason": "r" * 1000},
    {"expert": "-1", "need": "' OR 1=1 --", "brief": "\x00"},
]


def test_garbage_never_gives_a_500(login_client: Any, assignment: Any, counselor: Any,
                                   supervisor: Any) -> None:
    start = timezone.now() - dt.timedelta(hours=2)
    appt = Appointment.objects.create(assignment=assignment, expert=assignment.expert,
                                      starts_at=start, ends_at=start + dt.timedelta(hours=1))
    urls = [
        f"/staff/experts/assign/{assignment.case.code}/",
        f"/staff/experts/assignments/{assignment.pk}/book/",
        f"/staff/experts/appointments/{appt.pk}/move/",
        f"/staff/experts/appointments/{appt.pk}/outcome/",
        f"/staff/experts/appointments/{appt.pk}/cancel/",
        f"/staff/experts/appointments/{appt.pk}/log/",
        f"/staff/experts/{assignment.expert_id}/edit/",
        f"/staff/experts/assignments/{assignment.pk}/end/",
    ]
    for user in (counselor, supervisor, assignment.expert.user):
        c = login_client(user, Client())
        for url in urls:
            for data in GARBAGE:
                r = c.post(url, data)
                assert r.status_code < 500, (user.role, url, data)
            assert c.get(url + "?need=%00&language=" + "z" * 500).status_code < 500
