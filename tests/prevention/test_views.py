"""Staff pages: the role matrix of every prevention view, query counts, and the forms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from anshim.prevention import services
from anshim.prevention.models import (
    BookingRequest,
    ClassSession,
    Facilitator,
    KnowledgeTest,
    Module,
    ProgrammeSession,
    School,
    Survey,
)
from anshim.security.policy import Action, can

ROLES = ("prevention", "supervisor", "counselor", "erasure", "expert", "admin")


@dataclass
class World:
    school: School
    module: Module
    facilitator: Facilitator
    booking: BookingRequest
    session: ProgrammeSession
    test: KnowledgeTest
    survey: Survey
    cs: ClassSession


@pytest.fixture
def world(officer: Any, published: Any, class_session: ClassSession) -> World:
    school = class_session.school
    module = Module.objects.create(name="Deepfakes", topic="deepfakes", duration_minutes=45)
    facilitator = Facilitator.objects.create(kind="external", name="Choi")
    booking = BookingRequest.objects.create(
        school_name="Req School", level="middle", district="d", contact_name="T",
        class_count=1, grades=[8], preferred_dates=["2030-01-01"])
    start = timezone.make_aware(dt.datetime.combine(
        timezone.localdate() + dt.timedelta(days=5), dt.time(10)))
    session = services.schedule_session(officer, services.SessionPlan(
        school=school, module=module, facilitator=facilitator, starts_at=start, grade=8))
    test = services.create_test(officer, name="Quiz", module=module, max_score=10)
    return World(school, module, facilitator, booking, session, test, published.survey,
                 class_session)


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    url: Callable[[World], str]
    allowed: Callable[[Any], bool]
    data: Callable[[World], dict[str, Any]] | None = None


def _may(action: Action) -> Callable[[Any], bool]:
    return lambda user: can(user, action)


VIEW, MANAGE = _may(Action.VIEW_PREVENTION), _may(Action.MANAGE_PREVENTION)
P = "/staff/prevention"
ROWS = [
    Row("prevention:home", "GET", lambda w: f"{P}/", VIEW),
    Row("prevention:schools", "GET", lambda w: f"{P}/schools/", VIEW),
    Row("prevention:schools (add)", "POST", lambda w: f"{P}/schools/", MANAGE,
        lambda w: {"name": "New", "level": "high", "district": "d", "students": 10}),
    Row("prevention:modules", "GET", lambda w: f"{P}/programmes/", VIEW),
    Row("prevention:facilitators", "GET", lambda w: f"{P}/facilitators/", VIEW),
    Row("prevention:edit", "GET", lambda w: f"{P}/school/{w.school.pk}/edit/", MANAGE),
    Row("prevention:bookings", "GET", lambda w: f"{P}/bookings/", VIEW),
    Row("prevention:booking", "GET", lambda w: f"{P}/bookings/{w.booking.pk}/", VIEW),
    Row("prevention:booking (decline)", "POST", lambda w: f"{P}/bookings/{w.booking.pk}/",
        MANAGE, lambda w: {"do": "decline", "decline-reason": "no capacity"}),
    Row("prevention:sessions", "GET", lambda w: f"{P}/sessions/", VIEW),
    Row("prevention:session", "GET", lambda w: f"{P}/sessions/{w.session.pk}/", VIEW),
    Row("prevention:session (cancel)", "POST", lambda w: f"{P}/sessions/{w.session.pk}/",
        MANAGE, lambda w: {"do": "cancel"}),
    Row("prevention:tests", "GET", lambda w: f"{P}/tests/", VIEW),
    Row("prevention:test", "GET", lambda w: f"{P}/tests/{w.test.pk}/", VIEW),
    Row("prevention:surveys", "GET", lambda w: f"{P}/surveys/", VIEW),
    Row("prevention:survey", "GET", lambda w: f"{P}/surveys/{w.survey.pk}/", VIEW),
    Row("prevention:preview", "GET", lambda w: f"{P}/surveys/{w.survey.pk}/v1/preview/", VIEW),
    Row("prevention:xlsform", "GET", lambda w: f"{P}/surveys/{w.survey.pk}/v1/xlsform/", VIEW),
    Row("prevention:design", "GET", lambda w: f"{P}/surveys/{w.survey.pk}/design/", VIEW),
    Row("prevention:results", "GET", lambda w: f"{P}/surveys/{w.survey.pk}/results/", VIEW),
    Row("prevention:results_table", "GET",
        lambda w: f"{P}/surveys/{w.survey.pk}/results.csv?by=sex", VIEW),
    Row("prevention:export", "POST", lambda w: f"{P}/surveys/{w.survey.pk}/export/",
        _may(Action.EXPORT_SURVEY_DATA), lambda w: {"kind": "csv", "profile": "deidentified"}),
    Row("prevention:class_session", "GET", lambda w: f"{P}/classes/{w.cs.pk}/", VIEW),
    Row("prevention:class_session (close)", "POST", lambda w: f"{P}/classes/{w.cs.pk}/",
        MANAGE, lambda w: {}),
    Row("prevention:class_count", "GET", lambda w: f"{P}/classes/{w.cs.pk}/count/", VIEW),
    Row("prevention:help_requests", "GET", lambda w: f"{P}/help-requests/",
        _may(Action.VIEW_HELP_REQUESTS)),
]


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(role: str, world: World, make_user: Any, login_client: Any) -> None:
    user = make_user(role)
    c = login_client(user, Client())
    for row in ROWS:
        url = row.url(world)
        response = c.get(url) if row.method == "GET" else c.post(url, row.data(world)
                                                                 if row.data else {})
        if row.allowed(user):
            assert response.status_code in (200, 302), (row.name, role, response.status_code)
        else:
            assert response.status_code == 403, (row.name, role, response.status_code)


def test_policy_decides_the_matrix(make_user: Any) -> None:
    officer, supervisor = make_user("prevention"), make_user("supervisor")
    counselor = make_user("counselor")
    assert can(officer, Action.MANAGE_PREVENTION) and can(officer, Action.EXPORT_SURVEY_DATA)
    assert can(supervisor, Action.VIEW_PREVENTION) and not can(supervisor,
                                                               Action.MANAGE_PREVENTION)
    assert can(counselor, Action.VIEW_HELP_REQUESTS)
    assert not can(counselor, Action.VIEW_PREVENTION)
    assert not can(officer, Action.VIEW_HELP_REQUESTS)
    assert not can(officer, Action.VIEW_CASE_LIST)  # still no case data


def test_anonymous_staff_pages_redirect_to_login(world: World, client: Any) -> None:
    for row in ROWS:
        url = row.url(world)
        response = client.get(url) if row.method == "GET" else client.post(url, {})
        assert response.status_code == 302 and "/staff/login/" in response["Location"], row.name


def _names(resolver: URLResolver, prefix: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            ns = pattern.namespace
            names |= _names(pattern, f"{prefix}{ns}:" if ns else prefix)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(prefix + pattern.name)
    return names


def test_every_prevention_view_is_in_the_matrix() -> None:
    views = {n for n in _names(get_resolver()) if n.startswith("prevention:")}
    covered = {r.name.split(" (")[0] for r in ROWS}
    assert views - covered == set()


@pytest.mark.parametrize(("url", "limit"), [
    ("/", 16), ("/sessions/", 12), ("/bookings/", 10), ("/surveys/", 10), ("/tests/", 10),
    ("/schools/", 10), ("/facilitators/", 11),
])
def test_query_counts_do_not_grow_with_rows(url: str, limit: int, world: World, officer: Any,
                                            login_client: Any,
                                            django_assert_max_num_queries: Any) -> None:
    for k in range(12):
        School.objects.create(name=f"S{k}", level="high", district="d")
        f = Facilitator.objects.create(kind="external", name=f"F{k}")
        f.modules.add(world.module)
        BookingRequest.objects.create(school_name=f"B{k}", level="high", district="d",
                                      contact_name="c", class_count=1, grades=[10],
                                      preferred_dates=["2030-01-01"])
        start = world.session.starts_at + dt.timedelta(days=k + 1)
        services.schedule_session(officer, services.SessionPlan(
            school=world.school, module=world.module, facilitator=world.facilitator,
            starts_at=start, grade=8))
    c = login_client(officer)
    with django_assert_max_num_queries(limit):
        assert c.get(P + url).status_code == 200


def test_survey_and_results_pages_query_counts(world: World, officer: Any, login_client: Any,
                                               good_answers: dict,
                                               django_assert_max_num_queries: Any) -> None:
    for i in range(35):  # 5 boys: their column is suppressed, and so is its complement
        services.submit_response(world.cs.short_code, f"device-{i:03d}-abcdefghijklmn",
                                 {**good_answers, "sex": "male" if i < 5 else "female"})
    c = login_client(officer)
    with django_assert_max_num_queries(18):
        assert c.get(f"{P}/surveys/{world.survey.pk}/").status_code == 200
    # +1: the analysis stamp's token, read before the inputs (the analysis is then kept)
    with django_assert_max_num_queries(15):
        page = c.get(f"{P}/surveys/{world.survey.pk}/results/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "100.0%" in text  # everyone consented: published with n = 35
    with django_assert_max_num_queries(15):
        by_sex = c.get(f"{P}/surveys/{world.survey.pk}/results/?by=sex")
    assert 'class="suppressed"' in by_sex.content.decode()
    with django_assert_max_num_queries(10):
        assert c.get(f"{P}/classes/{world.cs.pk}/count/").json()["count"] == 35
    table = c.get(f"{P}/surveys/{world.survey.pk}/results.csv?by=sex").content.decode(
        "utf-8-sig")
    import csv

    lines = list(csv.reader(table.splitlines()))[1:]
    assert lines and all(cells[3] == "" for cells in lines if cells[7] == "yes")
    assert any(cells[7] == "yes" for cells in lines)  # 35 answers split by sex: suppressed
    # Nobody sees an individual answer sheet: the free text never appears on a page.
    for url in (f"/surveys/{world.survey.pk}/", f"/surveys/{world.survey.pk}/results/",
                f"/classes/{world.cs.pk}/"):
        assert "someone asked for photos" not in c.get(P + url).content.decode()


def test_upload_publish_and_open_a_class_from_the_ui(officer: Any, school: School,
                                                     login_client: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from .forms import kobo_style_form

    c = login_client(officer)
    response = c.post(f"{P}/surveys/", {"title": "", "description": "", "xlsform":
                                        SimpleUploadedFile("youth.xlsx", kobo_style_form())})
    assert response.status_code == 302
    survey = Survey.objects.get()
    assert c.post(f"{P}/surveys/{survey.pk}/", {"do": "publish", "number": 1}
                  ).status_code == 302
    response = c.post(f"{P}/surveys/{survey.pk}/", {
        "do": "class", "class-school": school.pk, "class-grade": 8, "class-label": "8-1",
        "class-expected": 25, "class-minutes": 45})
    assert response.status_code == 302
    cs = ClassSession.objects.get()
    page = c.get(response["Location"])
    assert cs.short_code in page.content.decode() and "<svg" in page.content.decode()
    # A bad upload is a form error, not a 500.
    bad = c.post(f"{P}/surveys/", {"title": "x", "xlsform": SimpleUploadedFile("x.xlsx",
                                                                                b"nope")})
    assert bad.status_code == 200 and Survey.objects.count() == 1


def test_public_booking_form(client: Any, db: Any) -> None:
    assert client.get("/schools/request/").status_code == 200
    future = (timezone.localdate() + dt.timedelta(days=10)).isoformat()
    response = client.post("/schools/request/", {
        "school_name": "Haneul Middle", "level": "middle", "district": "Mapo-gu",
        "contact_name": "Teacher", "contact_phone": "02-123-4567", "class_count": 4,
        "grades": [7, 8], "preferred_dates": future})
    assert response.status_code == 302
    booking = BookingRequest.objects.get()
    assert booking.grades == [7, 8] and booking.preferred_dates == [future]
    past = client.post("/schools/request/", {
        "school_name": "X", "level": "middle", "district": "d", "contact_name": "T",
        "contact_phone": "1", "class_count": 1, "grades": [7], "preferred_dates": "2001-01-01"})
    assert past.status_code == 200 and BookingRequest.objects.count() == 1


def test_prevention_officer_lands_on_the_start_page(officer: Any, make_user: Any,
                                                    login_client: Any, rf: Any) -> None:
    from anshim.security.services import default_landing, safe_next

    assert default_landing(officer) == "/staff/prevention/"
    assert default_landing(make_user("counselor")) == "/staff/cases/"
    # The landing stored before sign-in (the generic one) becomes the role's start page.
    request = rf.get("/staff/login/")
    request.user = officer
    assert safe_next(request, default_landing()) == "/staff/prevention/"
    assert safe_next(request, "/staff/prevention/surveys/") == "/staff/prevention/surveys/"
    c = login_client(officer)
    response = c.get("/staff/")
    assert response.status_code == 302 and response["Location"] == "/staff/prevention/"


def test_detail_pages_query_counts(world: World, officer: Any, login_client: Any,
                                   django_assert_max_num_queries: Any) -> None:
    from django.utils import timezone as tz

    lines = services.parse_score_lines("\n".join(f"지{m:02d}1{d} {m % 10}" for m in
                                                 range(1, 13) for d in range(10)), 10)
    for wave in ("pre", "post"):
        services.add_scores(officer, world.test, wave=wave, taken_on=tz.localdate(),
                            lines=lines)
    c = login_client(officer)
    for url, limit in ((f"/sessions/{world.session.pk}/", 14),
                       (f"/bookings/{world.booking.pk}/", 14),
                       (f"/tests/{world.test.pk}/", 12),
                       (f"/surveys/{world.survey.pk}/design/", 10),
                       (f"/surveys/{world.survey.pk}/v1/preview/", 10)):
        with django_assert_max_num_queries(limit):
            assert c.get(P + url).status_code == 200, url
