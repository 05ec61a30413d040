"""Programmes, sessions, tests, versions, design, exports and the demo figures."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from anshim.prevention import analysis, services
from anshim.prevention.models import (
    BookingRequest,
    Facilitator,
    FacilitatorSlot,
    ImmutableVersion,
    KnowledgeTest,
    Module,
    ProgrammeSession,
    Response,
    SurveyVersion,
)

from .forms import kobo_style_form


def _at(days: int, hour: int, minute: int = 0) -> dt.datetime:
    day = timezone.localdate() + dt.timedelta(days=days)
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


@pytest.fixture
def module(db: Any) -> Module:
    return Module.objects.create(name="Sextortion", topic="sextortion", duration_minutes=45,
                                 target_levels=["middle"])


@pytest.fixture
def facilitator(db: Any) -> Facilitator:
    return Facilitator.objects.create(kind="external", name="Kim")


def _plan(school: Any, module: Module, facilitator: Facilitator, start: dt.datetime
          ) -> services.SessionPlan:
    return services.SessionPlan(school=school, module=module, facilitator=facilitator,
                                starts_at=start, grade=8)


def test_booking_request_to_scheduled_session(officer: Any, school: Any, module: Module,
                                              facilitator: Facilitator) -> None:
    booking = services.request_booking(services.BookingData(
        school_name=school.name, level="middle", district=school.district,
        contact_name="Teacher Lee", contact_phone="02-000-0000", class_count=3, grades=[8, 8],
        preferred_dates=[timezone.localdate() + dt.timedelta(days=7)]))
    assert booking.status == "pending" and booking.grades == [8]
    session = services.schedule_booking(officer, booking, _plan(school, module, facilitator,
                                                                _at(7, 10)))
    booking.refresh_from_db()
    assert booking.status == "scheduled" and session.booking == booking
    assert session.ends_at - session.starts_at == dt.timedelta(minutes=45)
    assert FacilitatorSlot.objects.filter(session=session).count() == 3
    with pytest.raises(services.BookingHandled):
        services.decline_booking(officer, booking, "full")


def test_no_double_booking_of_a_facilitator(officer: Any, school: Any, module: Module,
                                            facilitator: Facilitator) -> None:
    services.schedule_session(officer, _plan(school, module, facilitator, _at(3, 10)))
    with pytest.raises(services.DoubleBooking):  # overlaps by 15 minutes
        services.schedule_session(officer, _plan(school, module, facilitator, _at(3, 10, 30)))
    assert ProgrammeSession.objects.count() == 1  # nothing half-written
    # Back to back is fine, and so is another facilitator at the same time.
    services.schedule_session(officer, _plan(school, module, facilitator, _at(3, 10, 45)))
    other = Facilitator.objects.create(kind="external", name="Park")
    services.schedule_session(officer, _plan(school, module, other, _at(3, 10)))


def test_the_database_itself_refuses_a_double_booking(officer: Any, school: Any,
                                                      module: Module,
                                                      facilitator: Facilitator) -> None:
    first = services.schedule_session(officer, _plan(school, module, facilitator, _at(4, 9)))
    with pytest.raises(IntegrityError), transaction.atomic():
        FacilitatorSlot.objects.create(facilitator=facilitator, session=first,
                                       slot_start=first.starts_at)


def test_cancelling_frees_the_facilitator(officer: Any, school: Any, module: Module,
                                          facilitator: Facilitator) -> None:
    first = services.schedule_session(officer, _plan(school, module, facilitator, _at(5, 9)))
    services.cancel_session(officer, first)
    services.schedule_session(officer, _plan(school, module, facilitator, _at(5, 9)))


@pytest.mark.parametrize(("start", "error"), [
    (lambda: _at(-1, 10), services.InThePast),
    (lambda: _at(2, 10, 10), services.NotAligned),
])
def test_bad_session_times(officer: Any, school: Any, module: Module,
                           facilitator: Facilitator, start: Any, error: type) -> None:
    with pytest.raises(error):
        services.schedule_session(officer, _plan(school, module, facilitator, start()))


def test_session_report_and_stale_edit(officer: Any, school: Any, module: Module,
                                       facilitator: Facilitator) -> None:
    session = services.schedule_session(officer, _plan(school, module, facilitator,
                                                       _at(2, 13)))
    report = services.SessionReport(attendance={(8, "female"): 12, (8, "male"): 13},
                                    fidelity={"objectives": True, "help_card": True},
                                    satisfaction={4: 10, 5: 15},
                                    expected_version=session.version)
    services.report_session(officer, session, report)
    session.refresh_from_db()
    assert session.status == "delivered"
    assert sum(a.count for a in session.attendance.all()) == 25
    assert session.fidelity["help_card"] and not session.fidelity["on_time"]
    assert session.satisfaction_mean == pytest.approx(4.6)
    with pytest.raises(services.StaleEdit):  # a second editor with the old version
        services.report_session(officer, session, report)
    with pytest.raises(services.InvalidInput):
        services.report_session(officer, session, services.SessionReport(
            attendance={}, fidelity={}, satisfaction={6: 1}, expected_version=session.version))


def test_disclosure_routed_to_counselors_without_a_name(officer: Any, school: Any,
                                                       module: Module,
                                                       facilitator: Facilitator) -> None:
    from anshim.cases.models import Case

    session = services.schedule_session(officer, _plan(school, module, facilitator,
                                                       _at(2, 14)))
    services.record_disclosure(officer, session, harm_type="sextortion", wants_help=False)
    assert not Case.objects.exists()
    record = services.record_disclosure(officer, session, harm_type="sextortion",
                                        wants_help=True, contact_preference="phone",
                                        contact_detail="010-1111-2222", note="threatened")
    session.refresh_from_db()
    assert session.disclosures == 2
    case = Case.objects.get()
    assert record.case == case
    assert case.person.name == "" and case.person.phone == "010-1111-2222"
    assert set(case.harm_types) == {"sextortion"}
    assert case.risk_level  # triaged with the hotline's rules


def test_prevention_officer_cannot_read_the_case_it_created(officer: Any, school: Any,
                                                            module: Module,
                                                            facilitator: Facilitator,
                                                            login_client: Any) -> None:
    session = services.schedule_session(officer, _plan(school, module, facilitator,
                                                       _at(2, 15)))
    record = services.record_disclosure(officer, session, harm_type="grooming",
                                        wants_help=True)
    c = login_client(officer)
    assert c.get(f"/staff/cases/{record.case.code}/").status_code == 403


def test_published_versions_are_immutable_and_edits_make_new_versions(
        officer: Any, published: SurveyVersion, class_session: Any, good_answers: dict) -> None:
    published.definition = {**published.definition, "title": "changed"}
    with pytest.raises(ImmutableVersion):
        published.save()
    with pytest.raises(services.AlreadyPublished):
        services.publish_version(officer, SurveyVersion.objects.get(pk=published.pk))
    services.submit_response(class_session.short_code, "k" * 20, good_answers)
    v2 = services.upload_version(officer, published.survey, content=kobo_style_form(),
                                 filename="v2.xlsx")
    assert v2.number == 2 and v2.published_at is None
    services.publish_version(officer, v2)
    cs2 = services.open_class_session(officer, v2, school=class_session.school, grade=9)
    services.submit_response(cs2.short_code, "k" * 20, good_answers)
    assert sorted(Response.objects.values_list("version__number", flat=True)) == [1, 2]


def test_invalid_upload_is_a_typed_error(officer: Any) -> None:
    with pytest.raises(services.InvalidForm) as info:
        services.create_survey(officer, title="x", content=b"garbage", filename="x.xlsx")
    assert "not an Excel workbook" in info.value.text


def test_scores_and_paired_analysis(officer: Any, module: Module) -> None:
    test = services.create_test(officer, name="Quiz", module=module, max_score=10)
    pre = services.parse_score_lines("지0317 4\nJ 05-2-1, 6\nh1101 5\nK0120 3", 10)
    assert [s.code for s in pre][:2] == ["지0317", "J0521"]
    services.add_scores(officer, test, wave="pre", taken_on=timezone.localdate(), lines=pre)
    post = services.parse_score_lines("지0317 7\nJ0521 8\nH1101 6\nX0999 9", 10)
    services.add_scores(officer, test, wave="post", taken_on=timezone.localdate(), lines=post)
    (comparison,) = analysis.test_results(KnowledgeTest.objects.get())
    report = comparison.report
    assert report is not None
    assert report.overall.n_pairs == 3
    assert report.overall.mean_change == pytest.approx((3 + 2 + 1) / 3)
    assert report.linkage.unmatched_before == ("K0120",)
    assert report.linkage.unmatched_after == ("X0999",)


@pytest.mark.parametrize("text", ["nocode", "지1317 5", "지0317 11", "지0317 five", ""])
def test_bad_score_lines(text: str) -> None:
    with pytest.raises(services.InvalidInput):
        services.parse_score_lines(text, 10)


def _fill(officer: Any, published: SurveyVersion, school: Any, n: int, good: dict) -> Any:
    cs = services.open_class_session(officer, published, school=school, grade=8, expected=n)
    for i in range(n):
        services.submit_response(cs.short_code, f"device-{i:04d}-abcdefghijkl", {
            **good, "sex": "female" if i % 2 else "male", "story": f"free text {i}",
            "apps": ["kakao"] if i % 3 else ["kakao", "insta"]})
    return cs


def test_exports_deidentified_and_full(officer: Any, published: SurveyVersion, school: Any,
                                       good_answers: dict) -> None:
    import pandas as pd
    import pyreadstat

    from anshim.security.models import AuditEntry

    _fill(officer, published, school, 12, good_answers)
    survey = published.survey
    deid = services.export_survey(officer, survey, "csv", "deidentified")
    text = deid.content.decode("utf-8-sig")
    header = text.splitlines()[0].split(",")
    assert "story" not in header and "free text" not in text  # no free text
    assert "2026-05" in text and "2026-05-01" not in text  # dates coarsened
    assert "apps_kakao" in header and "apps_insta" in header
    full = services.export_survey(officer, survey, "csv", "full").content.decode("utf-8-sig")
    assert "free text 3" in full and "2026-05-01" in full
    sav = services.export_survey(officer, survey, "sav", "deidentified")
    frame, meta = pyreadstat.read_sav(io.BytesIO(sav.content))
    assert len(frame) == 12
    assert meta.column_names_to_labels["sex"] == "성별"
    assert meta.variable_value_labels["sex"] == {1.0: "여", 2.0: "남"}
    assert isinstance(frame, pd.DataFrame)
    xlsx = services.export_survey(officer, survey, "xlsx", "deidentified")
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["data", "codebook"] and book["data"].max_row == 13
    codebook = services.export_survey(officer, survey, "codebook", "full").content.decode(
        "utf-8-sig")
    assert "sex" in codebook and "1=여" in codebook
    assert AuditEntry.objects.filter(action=services.Event.EXPORTED).count() == 5
    with pytest.raises(services.InvalidInput):
        services.export_survey(officer, survey, "pdf", "full")


def test_small_groups_are_suppressed_in_results(officer: Any, published: SurveyVersion,
                                                school: Any, good_answers: dict) -> None:
    from anshim import stats

    _fill(officer, published, school, 40, good_answers)
    results = analysis.survey_results(published.survey, dim="sex")
    table = next(t for t in results.tables if t.question == "apps")
    # 40 answers: 20 per sex (under 30: suppressed), the overall column is published.
    insta = next(r for r in table.rows if r.label == "인스타그램")
    assert [c.suppressed for c in insta.cells] == [True, True, False]
    assert insta.cells[-1].percent == pytest.approx(100 * 14 / 40)
    assert insta.cells[-1].n == 40
    # The masks leave nothing derivable from the margins (the engine's own check).
    import numpy as np

    counts = np.array([[3, 25, 40], [12, 8, 31], [30, 2, 60]])
    mask = analysis._protect(counts)
    assert mask.any()
    assert stats.derivable_cells(stats.with_margins(counts), mask) == []


def test_weights_from_the_sampling_design(officer: Any, published: SurveyVersion,
                                          school: Any, good_answers: dict) -> None:
    from anshim.prevention.models import School

    other = School.objects.create(name="Other", level="middle", district="가람구")
    dropped = School.objects.create(name="Dropped", level="middle", district="가람구")
    _fill(officer, published, school, 10, good_answers)
    _fill(officer, published, other, 10, good_answers)
    services.save_design(officer, published.survey, sample=[
        services.SampleRow(school, "middle", 0.5, 20, True),
        services.SampleRow(other, "middle", 0.25, 10, True),
        services.SampleRow(dropped, "middle", 0.5, 15, False),
    ], margins=[], schools_invited=4)
    frame = analysis.load_frame(published.survey)
    by_school = dict(zip(frame.school, frame.weights, strict=True))
    # School weights 2 and 4, the dropped school's 2 shared in the stratum (x 8/6), then
    # students sampled / responding (2 and 1).
    assert by_school[school.pk] == pytest.approx(2 * 8 / 6 * 2)
    assert by_school[other.pk] == pytest.approx(4 * 8 / 6 * 1)
    rates = services.response_rates(published.survey)
    assert (rates.schools_sampled, rates.schools_participating) == (4, 2)
    assert (rates.students_eligible, rates.students_responding) == (30, 20)
    # Post-stratified to grade x sex margins: the weights add up to the population.
    services.save_design(officer, published.survey, sample=[
        services.SampleRow(school, "middle", 0.5, 20, True),
        services.SampleRow(other, "middle", 0.25, 10, True)],
        margins=[{"grade": 8, "sex": "female", "count": 300},
                 {"grade": 8, "sex": "male", "count": 100}], schools_invited=2)
    frame = analysis.load_frame(published.survey)
    assert frame.weights.sum() == pytest.approx(400)
    # The estimates use the calibrated design itself (its SEs account for the
    # post-stratification, as R's survey does), not a design rebuilt from the new weights.
    design = analysis.design_for(frame)
    assert design is frame.calibrated and design.calibration
    # Raked to grade and sex totals instead.
    services.save_design(officer, published.survey, sample=[
        services.SampleRow(school, "middle", 0.5, 20, True),
        services.SampleRow(other, "middle", 0.25, 10, True)],
        margins=[{"grade": 8, "sex": "*", "count": 500},
                 {"grade": "*", "sex": "female", "count": 200},
                 {"grade": "*", "sex": "male", "count": 300}], schools_invited=2)
    frame = analysis.load_frame(published.survey)
    assert not frame.notes
    female = frame.weights[[s == "female" for s in frame.sex]].sum()
    assert frame.weights.sum() == pytest.approx(500)
    assert female == pytest.approx(200)
    with pytest.raises(services.InvalidInput):  # cells and totals mixed
        services.save_design(officer, published.survey, sample=[], schools_invited=0,
                             margins=[{"grade": 8, "sex": "*", "count": 5},
                                      {"grade": 8, "sex": "male", "count": 5}])


def test_booking_form_validation(db: Any) -> None:
    with pytest.raises(services.InvalidInput):
        services.request_booking(services.BookingData(
            school_name="x", level="university", district="d", contact_name="c",
            class_count=1, grades=[1], preferred_dates=[timezone.localdate()]))
    assert not BookingRequest.objects.exists()


def test_demo_reproduces_the_founding_survey(officer: Any) -> None:
    from anshim import stats
    from anshim.prevention import demo
    from anshim.prevention.models import Survey

    demo.load(officer)
    demo.load(officer)  # idempotent
    survey = Survey.objects.get(title=demo.SURVEY_TITLE)
    assert Response.objects.filter(version__survey=survey).count() == 4012
    results = analysis.survey_results(survey)

    def share(question: str, choice_label_start: str) -> float:
        table = next(t for t in results.tables if t.question == question)
        row = next(r for r in table.rows if r.label.startswith(choice_label_start))
        assert not row.cells[-1].suppressed
        return round(row.cells[-1].percent or 0, 1)

    assert share("exposed", "예") == 21.3
    assert share("harm_types", "원하지 않는") == 56.4
    assert share("harm_types", "계속되는") == 27.2
    assert share("harm_types", "내 사진") == 4.8
    assert share("harm_types", "돈을") == 4.3
    assert share("action", "아무것도") == 27.5
    assert share("action", "계정 차단") == 25.9
    assert share("action", "서비스 이용") == 15.0
    assert share("reasons", "어디에") == 78.5
    assert share("reasons", "대응 체계") == 11.7
    # Deletion measures among female respondents, and among female high-school students.
    frame = analysis.load_frame(survey)
    design = analysis.design_for(frame)
    import numpy as np

    wants = np.array([float("delete_footage" in a.get("measures", [])) for a in frame.answers])
    female = np.array(frame.sex) == "female"
    by = {"group": np.where(female, np.where(np.array(frame.level) == "high", "fh", "fo"),
                            "m")}
    female_share = stats.prevalence(design, np.where(female, wants, np.nan))[0]
    assert round(100 * female_share.estimate, 1) == 47.6
    groups = {e.by["group"]: e for e in stats.prevalence(design, wants, by=by)[1:]}
    assert round(100 * groups["fh"].estimate, 1) == 51.0
    # The pre/post test shows a realistic gain.
    post, follow_up = analysis.test_results(KnowledgeTest.objects.get())
    assert follow_up.report is not None and follow_up.after == "follow_up"
    assert post.report is not None and 0.8 < post.report.overall.mean_change < 2.0
    assert 0.3 < post.report.overall.cohens_dz < 1.3
    assert post.report.unmatched > 0
