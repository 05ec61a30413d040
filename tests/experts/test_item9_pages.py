"""Issue 19 item 9 on the pages: the slot picker, the meeting place, the pre-selected top
suggestion with a "choose" button per ranked row, the victim's age in the ranking, and the
expert's follow-up flag on the counselor's case page."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from anshim.experts import services
from anshim.experts.models import Appointment, Assignment, SessionLog
from anshim.experts.slots import free_starts

from .conftest import PLACE, book, next_weekday

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(login_client: Any, counselor: Any) -> Client:
    return login_client(counselor)


# --- Slot picker ----------------------------------------------------------------------------
def test_free_starts_leave_out_bookings_the_past_and_full_weeks(
    assignment: Any, counselor: Any, make_case: Any,
) -> None:
    monday = next_weekday(0, 9)
    starts = free_starts(assignment.expert, 60)
    assert monday in starts and monday.replace(hour=16) in starts
    assert monday.replace(hour=16, minute=15) not in starts  # would end after 17:00
    assert all(s > timezone.now() for s in starts)
    book(counselor, assignment, monday.replace(hour=10))
    starts = free_starts(assignment.expert, 60)
    # 10:00-11:00 is taken: 9:15 to 10:45 cannot start a one-hour session; 9:00 and 11:00 can.
    for taken in ("09:15", "09:30", "09:45", "10:00", "10:30", "10:45"):
        h, m = map(int, taken.split(":"))
        assert monday.replace(hour=h, minute=m) not in starts, taken
    assert monday in starts and monday.replace(hour=11) in starts
    # A week at the expert's capacity offers nothing.
    expert = assignment.expert
    expert.weekly_capacity = 1
    expert.save()
    starts = free_starts(expert, 60)
    assert not [s for s in starts if s.date() - dt.timedelta(days=s.weekday()) == monday.date()]
    # Moving the one booking: its own slots count as free.
    appt = Appointment.objects.get()
    assert monday.replace(hour=10) in free_starts(expert, 60, exclude=appt)


def test_booking_page_offers_the_free_slots(
    staff_client: Client, assignment: Any, counselor: Any,
    django_assert_max_num_queries: Any,
) -> None:
    monday = next_weekday(0, 9)
    book(counselor, assignment, monday.replace(hour=10))
    url = f"/staff/experts/assignments/{assignment.pk}/book/"
    with django_assert_max_num_queries(25):
        r = staff_client.get(url)
    body = r.content.decode()
    assert r.status_code == 200
    assert "slot-picker.js" in body
    day = monday.date().isoformat()
    assert f'data-date="{day}" data-time="09:00"' in body
    assert f'data-date="{day}" data-time="10:00"' not in body
    found = re.search(r'<script id="slot-data" type="application/json">(.*?)</script>', body,
                      re.S)
    assert found
    data = json.loads(found.group(1))
    assert set(data) == {"15", "30", "45", "60", "90", "120"}
    monday_60 = next(d for d in data["60"] if d["date"] == day)["times"]
    assert "09:00" in monday_60 and "10:00" not in monday_60 and "11:00" in monday_60
    monday_15 = next(d for d in data["15"] if d["date"] == day)["times"]
    assert "09:45" in monday_15 and "10:45" not in monday_15
    # The server stays authoritative: a taken time typed in anyway is refused.
    r = staff_client.post(url, {"date": day, "time": "10:00", "duration": "60",
                                "mode": "in_person", "location": PLACE})
    assert r.status_code == 400 and Appointment.objects.count() == 1


def test_the_picker_lists_the_free_times_of_the_chosen_duration_without_script(
    staff_client: Client, assignment: Any,
) -> None:
    monday = next_weekday(0, 9).date().isoformat()
    url = f"/staff/experts/assignments/{assignment.pk}/book/"
    body = staff_client.post(url, {"date": "", "time": "", "duration": "120",
                                   "mode": "in_person"}).content.decode()
    assert f'data-date="{monday}" data-time="15:00"' in body
    assert f'data-date="{monday}" data-time="15:15"' not in body  # 2 h would end after 17:00


# --- Meeting place --------------------------------------------------------------------------
def test_the_meeting_place_is_required_in_person_and_encrypted(
    staff_client: Client, assignment: Any,
) -> None:
    url = f"/staff/experts/assignments/{assignment.pk}/book/"
    day = next_weekday(0, 9).date().isoformat()
    r = staff_client.post(url, {"date": day, "time": "09:00", "duration": "60",
                                "mode": "in_person", "location": ""})
    assert r.status_code == 400 and not Appointment.objects.exists()
    assert "대면 상담을 할 장소를 입력하세요." in r.content.decode()
    home = "서울시 종로구 가상로 1 (fictitious)"
    r = staff_client.post(url, {"date": day, "time": "09:00", "duration": "60",
                                "mode": "in_person", "location": home})
    assert r.status_code == 302
    appt = Appointment.objects.get()
    assert appt.location == home
    with connection.cursor() as cur:
        cur.execute("SELECT location FROM experts_appointment WHERE id = %s", [appt.pk])
        raw = cur.fetchone()[0]
    assert "가상로" not in str(raw)
    # Not in the audit log or the timeline either.
    from anshim.cases.models import TimelineEvent
    from anshim.security.models import AuditEntry

    assert not any("가상로" in json.dumps(e.data, ensure_ascii=False) + e.message
                   for e in TimelineEvent.objects.all())
    assert not any("가상로" in str(vars(e)) for e in AuditEntry.objects.all())
    # A video session keeps no address.
    r = staff_client.post(f"/staff/experts/appointments/{appt.pk}/move/", {
        "date": day, "time": "09:00", "duration": "60", "mode": "video", "location": home})
    assert r.status_code == 302
    appt.refresh_from_db()
    assert appt.location == ""


def test_the_meeting_place_is_shown_on_need_to_know(
    login_client: Any, assignment: Any, counselor: Any, make_user: Any,
) -> None:
    book(counselor, assignment, next_weekday(0, 10), location="가상 주소 7 (fictitious)")
    page = f"/staff/experts/assignments/{assignment.pk}/"
    case_page = f"/staff/cases/{assignment.case.code}/"
    assert "가상 주소 7" in login_client(counselor).get(page).content.decode()
    assert "가상 주소 7" in login_client(counselor, Client()).get(case_page).content.decode()
    expert_client = login_client(assignment.expert.user, Client())
    assert "가상 주소 7" in expert_client.get(page).content.decode()
    # Roles that may see the case but do not arrange its sessions do not see the place.
    for role in ("erasure", "prevention"):
        r = login_client(make_user(role), Client()).get(case_page)
        assert "가상 주소 7" not in r.content.decode(), role


# --- Assign: pre-selected top suggestion, "choose" per row, age ----------------------------
def _selected_expert(body: str) -> str:
    match = re.search(r'<select name="expert"[^>]*>(.*?)</select>', body, re.S)
    assert match
    found = re.search(r'<option value="(\d+)" selected>', match.group(1))
    return found.group(1) if found else ""


def test_top_suggestion_is_preselected_and_each_row_can_be_chosen(
    staff_client: Client, make_case: Any, make_expert: Any,
) -> None:
    case = make_case()
    case.person.age_group = "under14"
    case.person.save()
    child = make_expert(username="child", regions=("mapo",))
    child.age_groups = ["under14"]
    child.save()
    adult = make_expert(username="adult")
    adult.age_groups = ["adult"]
    adult.save()
    url = f"/staff/experts/assign/{case.code}/"
    body = staff_client.get(url).content.decode()
    # The age group comes from the case.
    assert re.search(r'<option value="under14" selected>', body)
    r = staff_client.get(url, {"need": "trauma", "language": "ko", "age_group": "under14"})
    body = r.content.decode()
    assert body.index("child") < body.index("adult")
    assert _selected_expert(body) == str(child.pk)
    assert "피해자 연령대 전문" in body  # the reason names the age
    choose = re.findall(r'href="(\?[^"]*expert=(\d+)[^"]*)#assign-h"', body)
    assert [pk for _, pk in choose] == [str(adult.pk)]  # the chosen row has no button
    r = staff_client.get(url + choose[0][0].replace("&amp;", "&"))
    body = r.content.decode()
    assert _selected_expert(body) == str(adult.pk)
    assert 'aria-current="true"' in body
    # Assigning the chosen one.
    r = staff_client.post(url, {"expert": adult.pk, "need": "trauma", "brief": ""})
    assert r.status_code == 302
    assert Assignment.objects.get(case=case).expert == adult
    # An adult victim: the adult specialist comes first.
    body = staff_client.get(url, {"need": "trauma", "language": "ko",
                                  "age_group": "adult"}).content.decode()
    assert "No active expert" not in body


def test_api_suggestions_take_the_cases_age(
    login_client: Any, counselor: Any, make_case: Any, make_expert: Any,
) -> None:
    case = make_case()
    case.person.age_group = "under14"
    case.person.save()
    adult = make_expert(username="adult2")
    adult.age_groups = ["adult"]
    adult.save()
    child = make_expert(username="child2")
    child.age_groups = ["under14"]
    child.save()
    c = login_client(counselor)
    r = c.get("/api/v1/experts/suggestions", {"case_code": case.code, "need": "trauma"})
    assert r.status_code == 200
    assert [s["expert_id"] for s in r.json()] == [child.pk, adult.pk]
    r = c.get("/api/v1/experts/suggestions", {"case_code": case.code, "need": "trauma",
                                              "age_group": "adult"})
    assert [s["expert_id"] for s in r.json()] == [adult.pk, child.pk]


# --- Follow-up flag -------------------------------------------------------------------------
def _held(assignment: Any, hours_ago: int, follow_up: bool) -> SessionLog:
    start = (timezone.now() - dt.timedelta(hours=hours_ago)).replace(
        minute=0, second=0, microsecond=0)
    return services.record_held_session(
        assignment.expert.user, assignment, start, "Fictitious summary.",
        follow_up_needed=follow_up)


def test_follow_up_flag_on_the_case_page(
    login_client: Any, assignment: Any, counselor: Any,
    django_assert_max_num_queries: Any,
) -> None:
    case_page = f"/staff/cases/{assignment.case.code}/"
    c = login_client(counselor)
    assert "follow-up-needed" not in c.get(case_page).content.decode()
    _held(assignment, 30, follow_up=True)
    with django_assert_max_num_queries(80):
        body = c.get(case_page).content.decode()
    assert "follow-up-needed" in body and "전문가가 후속 조치를 요청했습니다." in body
    assert f"/staff/experts/assignments/{assignment.pk}/" in body
    # The expert's next log without the flag clears it.
    _held(assignment, 5, follow_up=False)
    assert "follow-up-needed" not in c.get(case_page).content.decode()
    # So does a later flagged one raise it again, and the end of the assignment clear it.
    _held(assignment, 3, follow_up=True)
    assert "follow-up-needed" in c.get(case_page).content.decode()
    services.end_assignment(counselor, assignment)
    assert "follow-up-needed" not in c.get(case_page).content.decode()


def test_follow_up_annotation_costs_no_query_per_case(
    make_case: Any, make_expert: Any, counselor: Any, django_assert_num_queries: Any,
) -> None:
    from anshim.cases.models import Case
    from anshim.experts.followup import follow_up_needed

    expert = make_expert(username="fu")
    flagged = []
    for i in range(4):
        case = make_case()
        a = Assignment.objects.create(case=case, expert=expert, specialty="trauma")
        _held(a, 30 + i, follow_up=i % 2 == 0)
        if i % 2 == 0:
            flagged.append(case.code)
    with django_assert_num_queries(1):
        rows = list(Case.objects.annotate(follow_up=follow_up_needed()).values_list(
            "code", "follow_up"))
    assert sorted(code for code, flag in rows if flag) == sorted(flagged)


def test_follow_up_flag_in_the_counselors_case_list(
    login_client: Any, make_case: Any, make_expert: Any, counselor: Any,
) -> None:
    from django.test.utils import CaptureQueriesContext

    expert = make_expert(username="fl")
    c = login_client(counselor)

    def add(flag: bool) -> str:
        case = make_case(lead_counselor=counselor)
        a = Assignment.objects.create(case=case, expert=expert, specialty="trauma")
        _held(a, 40 + Assignment.objects.count(), follow_up=flag)
        return str(case.code)

    flagged = add(True)
    quiet = add(False)

    def row_of(body: str, code: str) -> str:
        found = re.search(rf"<tr>\s*<td><a href=\"[^\"]*{code}/\">{code}</a>(.*?)</tr>", body,
                          re.S)
        assert found, code
        return found.group(1)

    with CaptureQueriesContext(connection) as few:
        body = c.get("/staff/cases/").content.decode()
    assert "후속 조치 필요" in row_of(body, flagged)
    assert "후속 조치 필요" not in row_of(body, quiet)
    for _ in range(6):
        add(True)
    with CaptureQueriesContext(connection) as many:
        body = c.get("/staff/cases/").content.decode()
    assert body.count('class="follow-up"') == 7
    assert len(many.captured_queries) == len(few.captured_queries)  # no query per row


def test_the_registry_edits_and_shows_age_groups(
    login_client: Any, supervisor: Any, make_expert: Any,
) -> None:
    expert = make_expert()
    c = login_client(supervisor)
    data = {
        "kind": "therapy", "organization": "Centre", "specialties": ["trauma"],
        "languages": ["ko"], "regions": ["mapo"], "age_groups": ["under14", "14to17"],
        "weekly_capacity": "5", "active": "on",
        "availability-TOTAL_FORMS": "0", "availability-INITIAL_FORMS": "0",
        "availability-MIN_NUM_FORMS": "0", "availability-MAX_NUM_FORMS": "28",
    }
    r = c.post(f"/staff/experts/{expert.pk}/edit/", data)
    assert r.status_code == 302, r.content.decode()[:2000]
    expert.refresh_from_db()
    assert expert.age_groups == ["under14", "14to17"]
    body = c.get(f"/staff/experts/{expert.pk}/").content.decode()
    assert "14세 미만" in body
    r = c.post(f"/staff/experts/{expert.pk}/edit/", {**data, "age_groups": ["unknown"]})
    assert r.status_code == 200  # "unknown" is no specialisation: refused
