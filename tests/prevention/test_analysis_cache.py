"""The analyses kept in the process's cache under the analysis stamp: served from the cache
while nothing they read has changed, recomputed after every kind of change, never poisoned by
a rolled-back transaction, and not kept at all without the stamp row."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from anshim.prevention import analysis, services, stamp
from anshim.prevention.models import (
    AnalysisStamp,
    KnowledgeTest,
    Module,
    Response,
    School,
    Survey,
    SurveyVersion,
)
from anshim.prevention.models import TestScore as ScoreRow  # not a pytest class

from .forms import sheet


def _fill(officer: Any, version: SurveyVersion, school: School, n: int, good: dict,
          *, prefix: str = "device", sex: str = "") -> None:
    cs = services.open_class_session(officer, version, school=school, grade=8, expected=n)
    for i in range(n):
        services.submit_response(cs.short_code, f"{prefix}-{i:04d}-abcdefghijkl", {
            **good, "sex": sex or ("female" if i % 2 else "male"),
            "apps": ["kakao"] if i % 3 else ["kakao", "insta"]})


def _fresh(survey: Survey, **kwargs: Any) -> analysis.Results:
    """The uncached analysis of the survey as the database has it now."""
    return analysis.survey_results(Survey.objects.get(pk=survey.pk), **kwargs)


def _cached(survey: Survey, **kwargs: Any) -> analysis.Results:
    return analysis.cached_survey_results(Survey.objects.get(pk=survey.pk), **kwargs)


@pytest.fixture
def filled(officer: Any, published: SurveyVersion, school: School,
           good_answers: dict) -> Survey:
    _fill(officer, published, school, 12, good_answers)
    return published.survey


@pytest.fixture
def quiz(officer: Any) -> KnowledgeTest:
    module = Module.objects.create(name="Sextortion", topic="sextortion")
    test = services.create_test(officer, name="Quiz", module=module, max_score=10)
    today = timezone.localdate()
    services.add_scores(officer, test, wave="pre", taken_on=today,
                        lines=services.parse_score_lines("A0101 4\nB0202 5\nC0303 3", 10))
    services.add_scores(officer, test, wave="post", taken_on=today,
                        lines=services.parse_score_lines("A0101 7\nB0202 8\nC0303 4", 10))
    return test


def test_second_call_is_one_token_read(filled: Survey, quiz: KnowledgeTest,
                                       django_assert_num_queries: Any) -> None:
    survey = Survey.objects.get(pk=filled.pk)
    first = analysis.cached_survey_results(survey)
    assert first.n == 12 and first.tables
    assert first == analysis.survey_results(survey)
    with django_assert_num_queries(1):
        again = analysis.cached_survey_results(survey)
    assert again == first
    gains = analysis.cached_test_results(quiz)
    assert gains and gains[0].report is not None and gains[0].report.overall.n_pairs == 3
    with django_assert_num_queries(1):
        assert analysis.cached_test_results(quiz) == gains


def test_results_pickle(filled: Survey, quiz: KnowledgeTest) -> None:
    # The process cache pickles what it keeps.
    results = analysis.survey_results(filled, dim="sex")
    assert pickle.loads(pickle.dumps(results)) == results
    comparisons = analysis.test_results(quiz)
    assert pickle.loads(pickle.dumps(comparisons)) == comparisons


def test_a_new_response_through_the_students_service(filled: Survey,
                                                      good_answers: dict) -> None:
    assert _cached(filled).n == 12
    cs = filled.versions.get().class_sessions.get()
    services.submit_response(cs.short_code, "another-device-abcdefgh", good_answers)
    assert _cached(filled).n == 13
    assert _cached(filled) == _fresh(filled)


def test_a_scores_upload(officer: Any, quiz: KnowledgeTest) -> None:
    before = analysis.cached_test_results(quiz)
    assert [c.after for c in before] == ["post"]
    services.add_scores(officer, quiz, wave="follow_up", taken_on=timezone.localdate(),
                        lines=services.parse_score_lines("A0101 6\nB0202 6", 10))
    after = analysis.cached_test_results(quiz)
    assert [c.after for c in after] == ["post", "follow_up"]
    assert after == analysis.test_results(quiz)


def test_a_sample_and_weights_upload(officer: Any, filled: Survey, school: School,
                                     published: SurveyVersion, good_answers: dict) -> None:
    other = School.objects.create(name="Other", level="middle", district="가람구")
    # only girls answered there, and none was contacted: calibrating by sex moves the share
    _fill(officer, published, other, 12, {**good_answers, "contacted": "no"}, prefix="other",
          sex="female")
    plain = _cached(filled)
    assert not plain.notes
    services.save_design(officer, filled, sample=[
        services.SampleRow(school, "middle", 0.5, 12, True),
        services.SampleRow(other, "middle", 0.1, 12, True)], margins=[], schools_invited=2)
    weighted = _cached(filled)
    assert weighted != plain  # the second school now weighs five times the first
    assert weighted == _fresh(filled)
    # The margins alone (the survey row) change the results as well.
    services.save_design(officer, filled, sample=[
        services.SampleRow(school, "middle", 0.5, 12, True),
        services.SampleRow(other, "middle", 0.1, 12, True)],
        margins=[{"grade": 8, "sex": "female", "count": 900},
                 {"grade": 8, "sex": "male", "count": 100}], schools_invited=2)
    calibrated = _cached(filled)
    assert calibrated != weighted
    assert calibrated == _fresh(filled)


def test_a_survey_object_older_than_the_token_is_not_kept_as_new(
        officer: Any, filled: Survey, school: School, published: SurveyVersion,
        good_answers: dict) -> None:
    other = School.objects.create(name="Other", level="middle", district="가람구")
    _fill(officer, published, other, 12, {**good_answers, "contacted": "no"}, prefix="other",
          sex="female")
    sample = [services.SampleRow(school, "middle", 0.5, 12, True),
              services.SampleRow(other, "middle", 0.5, 12, True)]
    services.save_design(officer, filled, sample=sample, margins=[], schools_invited=2)
    stale = Survey.objects.get(pk=filled.pk)  # read before the margins are saved
    services.save_design(officer, filled, sample=sample,
                         margins=[{"grade": 8, "sex": "female", "count": 900},
                                  {"grade": 8, "sex": "male", "count": 100}],
                         schools_invited=2)
    # computed from the old margins although the token read is the new one
    old = analysis.cached_survey_results(stale)
    assert old != _fresh(filled)
    assert _cached(filled) == _fresh(filled)


def test_a_stratum_of_one_school_is_an_error_in_the_results(officer: Any, filled: Survey,
                                                            school: School) -> None:
    # with margins, the design the calibration starts from is refused: a note, no exception
    services.save_design(officer, filled, sample=[services.SampleRow(school, "middle", 0.5,
                                                                     12, True)],
                         margins=[{"grade": 8, "sex": "female", "count": 900},
                                  {"grade": 8, "sex": "male", "count": 100}],
                         schools_invited=1)
    results = analysis.survey_results(filled)
    assert results.error and not results.tables and "one PSU" in results.notes[0]


def test_a_school_level_edited_in_the_staff_view(officer: Any, filled: Survey, school: School,
                                                 login_client: Any) -> None:
    before = _cached(filled, dim="level")
    c = login_client(officer)
    response = c.post(f"/staff/prevention/school/{school.pk}/edit/", {
        "name": school.name, "level": "high", "district": school.district, "students": 300})
    assert response.status_code == 302
    assert School.objects.get(pk=school.pk).level == "high"
    after = _cached(filled, dim="level")
    assert after != before
    assert after == _fresh(filled, dim="level")


def test_a_school_level_changed_by_save(filled: Survey, school: School) -> None:
    before = _cached(filled, dim="level")
    school.level = "elementary"
    school.save()
    after = _cached(filled, dim="level")
    assert after != before and after == _fresh(filled, dim="level")


def test_a_new_published_version(officer: Any, filled: Survey) -> None:
    before = _cached(filled)
    content = sheet([["type", "name", "label"], ["select_one sex", "sex", "Sex"],
                     ["select_one yn", "contacted", "Contacted by a stranger?"]],
                    [["list_name", "name", "label"], ["yn", "yes", "Yes"], ["yn", "no", "No"],
                     ["sex", "female", "Female"], ["sex", "male", "Male"]])
    v2 = services.upload_version(officer, filled, content=content, filename="v2.xlsx")
    assert _cached(filled) == before  # a draft is not what the results read
    services.publish_version(officer, v2)
    after = _cached(filled)
    assert [t.question for t in after.tables] == ["sex", "contacted"] != [
        t.question for t in before.tables]
    assert after == _fresh(filled)


def test_deletions(filled: Survey, quiz: KnowledgeTest) -> None:
    assert _cached(filled).n == 12
    Response.objects.filter(pk__in=list(Response.objects.values_list("pk", flat=True)[:1])
                            ).delete()
    assert _cached(filled).n == 11
    Response.objects.first().delete()  # type: ignore[union-attr]
    assert _cached(filled).n == 10
    before = analysis.cached_test_results(quiz)
    ScoreRow.objects.filter(test=quiz, code="A0101").delete()
    after = analysis.cached_test_results(quiz)
    assert after != before and after == analysis.test_results(quiz)
    token = stamp.token()
    quiz.delete()  # the scores go with it
    assert stamp.token() not in (token, None)


def test_a_rolled_back_change_does_not_poison_the_cache(filled: Survey,
                                                        good_answers: dict) -> None:
    committed = _cached(filled)
    cs = filled.versions.get().class_sessions.get()

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        Response.objects.create(class_session=cs, version=cs.version,
                                submitted_on=timezone.localdate(), key_hash="x" * 64,
                                answers=good_answers)
        # read (and kept) inside the transaction, under its uncommitted token
        assert _cached(filled).n == 13
        raise Undo
    assert _cached(filled) == committed == _fresh(filled)
    # A later change gets a token of its own, never the rolled-back one's.
    services.submit_response(cs.short_code, "another-device-abcdefgh", good_answers)
    assert _cached(filled).n == 13 and _cached(filled) == _fresh(filled)


def test_the_token_changes_with_every_renewal(db: Any) -> None:
    # the migration made the row, unless a transactional test has flushed the tables since
    stamp.renew()
    first = stamp.token()
    assert first is not None
    with transaction.atomic():
        stamp.renew()
        inside = stamp.token()
        transaction.set_rollback(True)
    assert stamp.token() == first
    stamp.renew()
    assert stamp.token() not in (first, inside, None)


def test_no_stamp_row_keeps_nothing(filled: Survey) -> None:
    AnalysisStamp.objects.all().delete()
    assert stamp.token() is None
    survey = Survey.objects.get(pk=filled.pk)
    first = analysis.cached_survey_results(survey)
    with CaptureQueriesContext(connection) as queries:
        again = analysis.cached_survey_results(survey)
    assert len(queries) > 1  # computed again: nothing was kept
    assert again == first
    # The next change creates the row (inside the writer's transaction), and caching resumes.
    School.objects.create(name="New", level="high", district="d")
    assert stamp.token() is not None
    analysis.cached_survey_results(survey)
    with CaptureQueriesContext(connection) as queries:
        analysis.cached_survey_results(survey)
    assert len(queries) == 1


def test_the_active_language_is_part_of_the_identity(filled: Survey) -> None:
    with translation.override("en"):
        english = _cached(filled, dim="sex")
    with translation.override("ko"):
        korean = _cached(filled, dim="sex")
    assert english.tables[0].columns != korean.tables[0].columns
    with translation.override("en"):
        assert _cached(filled, dim="sex") == english


def test_the_dashboard_figures_read_the_cache(filled: Survey, quiz: KnowledgeTest,
                                              django_assert_num_queries: Any) -> None:
    from anshim.reports import figures

    period = figures.year_period(timezone.localdate().year)
    gains = figures.prevention_gains(period)
    prevalence = figures.prevention_prevalence(period)
    assert gains.rows and prevalence.rows
    # the latest tests (one query), then one token read per test; the same for the surveys
    with django_assert_num_queries(2):
        assert figures.prevention_gains(period).rows == gains.rows
    with django_assert_num_queries(2):
        assert figures.prevention_prevalence(period).rows == prevalence.rows


@pytest.mark.django_db(transaction=True)
def test_two_first_renewals_at_once(db: Any) -> None:
    """No row yet and two writers renew at once (PostgreSQL: the second insert waits for the
    first's commit, fails, and updates the row instead; SQLite writes one at a time)."""
    import threading

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    from django.db import connections

    AnalysisStamp.objects.all().delete()
    inserted, errors = threading.Event(), []
    tokens: dict[str, Any] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                stamp.renew()
                tokens["first"] = stamp.token()
                inserted.set()
                threading.Event().wait(0.5)  # hold the uncommitted row while the other waits
        except Exception as exc:  # reported below
            errors.append(exc)
            inserted.set()
        finally:
            connections.close_all()

    def second() -> None:
        inserted.wait(5)
        try:
            with transaction.atomic():
                stamp.renew()
                tokens["second"] = stamp.token()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert AnalysisStamp.objects.count() == 1
    assert stamp.token() == tokens["second"] != tokens["first"]
