"""Prevention domain actions: plain functions, each its own durable transaction.

Staff actions ask the access policy first and write one structured audit row (an `Event`
constant; the reason field carries only codes and counts). Student submissions are never
audited: an audit row has an exact timestamp and would undo the anonymity of the answer sheet.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from anshim import stats
from anshim.cases.models import ContactPreference, HarmType
from anshim.prevention import stamp, xlsform
from anshim.prevention.models import (
    SLOT_MINUTES,
    Attendance,
    BookingRequest,
    BookingStatus,
    ClassSession,
    Disclosure,
    Facilitator,
    KnowledgeTest,
    Module,
    ProgrammeSession,
    Response,
    SampledSchool,
    School,
    SchoolLevel,
    SessionStatus,
    Sex,
    Survey,
    SurveyVersion,
    TestScore,
    Wave,
)
from anshim.prevention.models import (
    FacilitatorSlot as Slot,
)
from anshim.prevention.models import (
    HelpRequest as HelpRequestRow,
)
from anshim.security.audit import record as audit_record
from anshim.security.policy import Action, require

SLOT = dt.timedelta(minutes=SLOT_MINUTES)
MAX_SESSION_MINUTES = 8 * 60
# Answers made offline may arrive a little after the class session closes.
SUBMIT_GRACE = dt.timedelta(minutes=30)
CLASS_SESSION_MINUTES = 45
SHORT_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
SHORT_CODE_LENGTH = 6
_KEY = re.compile(r"\A[A-Za-z0-9_-]{16,128}\Z")
FIDELITY_ITEMS = ("objectives", "all_activities", "discussion", "help_card", "evaluation",
                  "on_time")
MAX_XLSFORM_BYTES = 5_000_000


class Event(StrEnum):
    SCHOOL_SAVED = "prevention.school.save"
    MODULE_SAVED = "prevention.module.save"
    FACILITATOR_SAVED = "prevention.facilitator.save"
    BOOKING_SCHEDULED = "prevention.booking.schedule"
    BOOKING_DECLINED = "prevention.booking.decline"
    SESSION_SCHEDULED = "prevention.session.schedule"
    SESSION_CANCELLED = "prevention.session.cancel"
    SESSION_REPORTED = "prevention.session.report"
    DISCLOSURE_RECORDED = "prevention.disclosure.record"
    TEST_CREATED = "prevention.test.create"
    SCORES_ADDED = "prevention.test.scores"
    SURVEY_CREATED = "prevention.survey.create"
    VERSION_UPLOADED = "prevention.version.upload"
    VERSION_PUBLISHED = "prevention.version.publish"
    DESIGN_SAVED = "prevention.design.save"
    CLASS_OPENED = "prevention.class.open"
    CLASS_CLOSED = "prevention.class.close"
    EXPORTED = "prevention.export"
    TABLE_PUBLISHED = "prevention.results.table"
    RESULTS_VIEWED = "prevention.results.view"
    HELP_REQUESTS_VIEWED = "prevention.help.view"


# --- Errors ------------------------------------------------------------------------------


class PreventionError(ValidationError):
    """A refused prevention operation (a form error in the UI, a 4xx JSON answer on the
    student endpoints with `code`). The message is translated when rendered."""

    default_message: Any = _("This operation is not possible.")
    default_code = "invalid"
    http_status = 422

    def __init__(self, message: Any = None, *, params: dict[str, Any] | None = None) -> None:
        super().__init__(message or self.default_message, code=self.default_code, params=params)

    @property
    def text(self) -> str:
        return str(self.messages[0])


class DoubleBooking(PreventionError):
    default_message = _("The facilitator already has a session at this time.")
    default_code = "double_booking"
    http_status = 409


class NotAligned(PreventionError):
    default_message = _("Sessions start and end on a quarter hour and last at most 8 hours.")
    default_code = "not_aligned"


class InThePast(PreventionError):
    default_message = _("The session time has already passed.")
    default_code = "in_the_past"


class InactiveChoice(PreventionError):
    default_message = _("This facilitator or programme is not active.")
    default_code = "inactive"


class BookingHandled(PreventionError):
    default_message = _("This booking request has already been handled.")
    default_code = "booking_handled"
    http_status = 409


class SessionNotOpen(PreventionError):
    default_message = _("This session is cancelled.")
    default_code = "session_cancelled"
    http_status = 409


class StaleEdit(PreventionError):
    default_message = _("Someone else saved this session's report. Reload the page; your input "
                        "has been kept.")
    default_code = "stale_edit"
    http_status = 409


class InvalidForm(PreventionError):
    default_message = _("The file is not a usable XLSForm: %(problems)s")
    default_code = "invalid_xlsform"


class AlreadyPublished(PreventionError):
    default_message = _("This version is published and cannot change. Upload a new version.")
    default_code = "already_published"
    http_status = 409


class NotPublished(PreventionError):
    default_message = _("Publish this version before opening a class session.")
    default_code = "not_published"
    http_status = 409


class ClassClosed(PreventionError):
    default_message = _("This class survey is closed. Thank you!")
    default_code = "class_closed"
    http_status = 410


class UnknownClass(PreventionError):
    default_message = _("There is no open class survey with this code.")
    default_code = "unknown_class"
    http_status = 404


class BadKey(PreventionError):
    default_message = _("The page is out of date. Reload it and submit again.")
    default_code = "bad_key"
    http_status = 400


class InvalidAnswers(PreventionError):
    default_message = _("Some answers are missing or not valid.")
    default_code = "invalid_answers"

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__()
        self.errors = errors


class InvalidInput(PreventionError):
    default_message = _("%(problem)s")
    default_code = "invalid_input"


# --- Helpers -----------------------------------------------------------------------------


def _audit(actor: Any, event: Event, target: models.Model | None = None,
           request: Any = None, **data: Any) -> None:
    audit_record(actor=actor, action=str(event), target=target, request=request,
                 reason=json.dumps(data, sort_keys=True, default=str) if data else "")


LOCK_RETRIES = 25


def retry_when_locked[F: Callable[..., Any]](func: F) -> F:
    """Retry when SQLite reports a lock (only outside an enclosing transaction)."""

    @functools.wraps(func)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, LOCK_RETRIES + 1):
            try:
                return func(*args, **kwargs)
            except OperationalError as exc:
                if ("locked" not in str(exc) or connection.in_atomic_block
                        or attempt == LOCK_RETRIES):
                    raise
                time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    return wrapped  # type: ignore[return-value]


def _durable() -> transaction.Atomic:
    return transaction.atomic(durable=True)


def save_record(actor: Any, obj: models.Model, *, m2m: Callable[[], None] | None = None,
                request: Any = None) -> models.Model:
    """Save a school, programme or facilitator edited in the staff UI."""
    require(actor, Action.MANAGE_PREVENTION)
    event = {School: Event.SCHOOL_SAVED, Module: Event.MODULE_SAVED,
             Facilitator: Event.FACILITATOR_SAVED}[type(obj)]
    with _durable():
        obj.save()
        if m2m is not None:
            m2m()
        _audit(actor, event, obj, request)
    return obj


# --- Bookings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingData:
    school_name: str
    level: str
    district: str
    contact_name: str
    class_count: int
    grades: list[int]
    preferred_dates: list[dt.date]
    contact_phone: str = ""
    contact_email: str = ""
    module: Module | None = None
    message: str = ""


@retry_when_locked
def request_booking(data: BookingData) -> BookingRequest:
    """The public form: a school asks for a programme. Not audited with an address."""
    if data.level not in SchoolLevel.values:
        raise InvalidInput(params={"problem": _("Choose a school level.")})
    if not 1 <= data.class_count <= 60:
        raise InvalidInput(params={"problem": _("Between 1 and 60 classes.")})
    if not data.preferred_dates:
        raise InvalidInput(params={"problem": _("Give at least one preferred date.")})
    with _durable():
        booking = BookingRequest.objects.create(
            school_name=data.school_name.strip()[:200], level=data.level,
            district=data.district.strip()[:100], contact_name=data.contact_name.strip(),
            contact_phone=data.contact_phone.strip(), contact_email=data.contact_email.strip(),
            class_count=data.class_count, grades=sorted(set(data.grades)),
            preferred_dates=[d.isoformat() for d in sorted(set(data.preferred_dates))],
            module=data.module, message=data.message.strip(),
        )
    return booking


def slot_range(starts_at: dt.datetime, ends_at: dt.datetime) -> list[dt.datetime]:
    slots = []
    slot = starts_at
    while slot < ends_at:
        slots.append(slot)
        slot += SLOT
    return slots


@dataclass(frozen=True)
class SessionPlan:
    school: School
    module: Module
    facilitator: Facilitator
    starts_at: dt.datetime
    grade: int
    classes: int = 1
    duration_minutes: int = 0  # 0: the module's duration, rounded up to a quarter hour


def _check_plan(plan: SessionPlan, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    minutes = plan.duration_minutes or plan.module.duration_minutes
    minutes = -(-minutes // SLOT_MINUTES) * SLOT_MINUTES
    start = plan.starts_at
    if timezone.is_naive(start):
        raise NotAligned()
    local = timezone.localtime(start)
    if local.minute % SLOT_MINUTES or local.second or local.microsecond or not (
            0 < minutes <= MAX_SESSION_MINUTES):
        raise NotAligned()
    if start <= now:
        raise InThePast()
    if not plan.facilitator.active or not plan.module.active:
        raise InactiveChoice()
    if not 1 <= plan.grade <= 12 or not 1 <= plan.classes <= 60:
        raise InvalidInput(params={"problem": _("Grades 1 to 12, 1 to 60 classes.")})
    return start, start + dt.timedelta(minutes=minutes)


def _create_session(plan: SessionPlan, booking: BookingRequest | None,
                    now: dt.datetime) -> ProgrammeSession:
    start, end = _check_plan(plan, now)
    session = ProgrammeSession.objects.create(
        school=plan.school, module=plan.module, facilitator=plan.facilitator, booking=booking,
        starts_at=start, ends_at=end, grade=plan.grade, classes=plan.classes,
    )
    try:
        with transaction.atomic():
            Slot.objects.bulk_create(
                Slot(facilitator=plan.facilitator, session=session, slot_start=s)
                for s in slot_range(start, end))
    except IntegrityError:
        raise DoubleBooking() from None
    return session


@retry_when_locked
def schedule_session(actor: Any, plan: SessionPlan, *, request: Any = None,
                     now: dt.datetime | None = None) -> ProgrammeSession:
    require(actor, Action.MANAGE_PREVENTION)
    with _durable():
        session = _create_session(plan, None, now or timezone.now())
        _audit(actor, Event.SESSION_SCHEDULED, session, request,
               facilitator=plan.facilitator.pk)
    return session


@retry_when_locked
def schedule_booking(actor: Any, booking: BookingRequest, plan: SessionPlan, *,
                     request: Any = None, now: dt.datetime | None = None) -> ProgrammeSession:
    """Turn a queued request into a session (more sessions may follow for more classes)."""
    require(actor, Action.MANAGE_PREVENTION)
    with _durable():
        locked = BookingRequest.objects.select_for_update().get(pk=booking.pk)
        if locked.status == BookingStatus.DECLINED:
            raise BookingHandled()
        session = _create_session(plan, locked, now or timezone.now())
        locked.status = BookingStatus.SCHEDULED
        locked.school = plan.school
        locked.handled_by = actor
        locked.save(update_fields=["status", "school", "handled_by"])
        _audit(actor, Event.BOOKING_SCHEDULED, locked, request, session=session.pk)
    booking.refresh_from_db()
    return session


@retry_when_locked
def decline_booking(actor: Any, booking: BookingRequest, reason: str, *,
                    request: Any = None) -> BookingRequest:
    require(actor, Action.MANAGE_PREVENTION)
    with _durable():
        locked = BookingRequest.objects.select_for_update().get(pk=booking.pk)
        if locked.status != BookingStatus.PENDING:
            raise BookingHandled()
        locked.status = BookingStatus.DECLINED
        locked.decline_reason = reason.strip()[:300]
        locked.handled_by = actor
        locked.save(update_fields=["status", "decline_reason", "handled_by"])
        _audit(actor, Event.BOOKING_DECLINED, locked, request)
    booking.refresh_from_db()
    return booking


@retry_when_locked
def cancel_session(actor: Any, session: ProgrammeSession, *, request: Any = None
                   ) -> ProgrammeSession:
    require(actor, Action.MANAGE_PREVENTION)
    with _durable():
        locked = ProgrammeSession.objects.select_for_update().get(pk=session.pk)
        if locked.status != SessionStatus.SCHEDULED:
            raise SessionNotOpen()
        locked.status = SessionStatus.CANCELLED
        locked.version = F("version") + 1
        locked.save(update_fields=["status", "version"])
        Slot.objects.filter(session=locked).delete()  # the facilitator is free again
        _audit(actor, Event.SESSION_CANCELLED, locked, request)
    session.refresh_from_db()
    return session


@dataclass(frozen=True)
class SessionReport:
    attendance: Mapping[tuple[int, str], int]  # (grade, sex) -> students
    fidelity: Mapping[str, bool]
    satisfaction: Mapping[int, int]  # score 1..5 -> number of students
    expected_version: int


@retry_when_locked
def report_session(actor: Any, session: ProgrammeSession, report: SessionReport, *,
                   request: Any = None) -> ProgrammeSession:
    """Attendance counts by grade and sex, the fidelity checklist and satisfaction: the
    session is delivered. Refused when someone else saved in between."""
    require(actor, Action.MANAGE_PREVENTION)
    for (grade, sex), count in report.attendance.items():
        if sex not in Sex.values or not 1 <= grade <= 12 or not 0 <= count <= 2000:
            raise InvalidInput(params={"problem": _("Attendance: grades 1 to 12, counts 0 to "
                                                    "2000.")})
    if set(report.fidelity) - set(FIDELITY_ITEMS):
        raise InvalidInput(params={"problem": _("Unknown fidelity item.")})
    if set(report.satisfaction) - {1, 2, 3, 4, 5} or any(
            n < 0 for n in report.satisfaction.values()):
        raise InvalidInput(params={"problem": _("Satisfaction is scored 1 to 5.")})
    with _durable():
        updated = ProgrammeSession.objects.filter(
            pk=session.pk, version=report.expected_version,
            status__in=[SessionStatus.SCHEDULED, SessionStatus.DELIVERED],
        ).update(
            version=F("version") + 1, status=SessionStatus.DELIVERED,
            fidelity={k: bool(report.fidelity.get(k, False)) for k in FIDELITY_ITEMS},
            satisfaction={str(k): int(v) for k, v in sorted(report.satisfaction.items()) if v},
        )
        if not updated:
            session.refresh_from_db()
            if session.status == SessionStatus.CANCELLED:
                raise SessionNotOpen()
            raise StaleEdit()
        Attendance.objects.filter(session=session).delete()
        Attendance.objects.bulk_create(
            Attendance(session=session, grade=g, sex=s, count=n)
            for (g, s), n in sorted(report.attendance.items()) if n)
        _audit(actor, Event.SESSION_REPORTED, session, request,
               students=sum(report.attendance.values()))
    session.refresh_from_db()
    return session


def _intake_for_child(*, harm_types: list[str], contact_preference: str, contact_detail: str,
                      summary: str, language: str) -> Any:
    """A counselor intake for a child who asked for help: the platform's anonymous intake
    (the same triage rules as the hotline, no name needed), inside the caller's transaction."""
    from anshim.portal.services import submit_report

    # No request is passed on: the intake must not record the child's address.
    new = submit_report({
        "harm_types": [h for h in harm_types if h in HarmType.values] or [HarmType.OTHER],
        "in_danger": "no", "age_group": "unknown",
        "contact_preference": contact_preference, "contact_detail": contact_detail,
        "summary": summary, "urls": [], "consent_keep_data": True,
    }, request=None)
    person = new.case.person
    if person.preferred_language != language:
        person.preferred_language = language
        person.save(update_fields=["preferred_language"])
    return new.case


@retry_when_locked
def record_disclosure(actor: Any, session: ProgrammeSession, *, harm_type: str,
                      wants_help: bool, contact_preference: str = ContactPreference.NONE,
                      contact_detail: str = "", note: str = "", request: Any = None
                      ) -> Disclosure:
    """A child disclosed after the session. Counted; if they asked for help, the counselors
    get an intake (no name: the child's contact wish and what the facilitator noted)."""
    require(actor, Action.MANAGE_PREVENTION)
    if harm_type not in HarmType.values:
        raise InvalidInput(params={"problem": _("Choose a harm type.")})
    if contact_preference not in ContactPreference.values:
        raise InvalidInput(params={"problem": _("Choose how the child wants to be contacted.")})
    with _durable():
        locked = ProgrammeSession.objects.select_for_update().select_related(
            "module", "school").get(pk=session.pk)
        case = None
        if wants_help:
            summary = (f"Disclosure after a school prevention session ({locked.module.name}, "
                       f"{locked.school.name}, grade {locked.grade}, "
                       f"{timezone.localdate(locked.starts_at).isoformat()}).")
            if note.strip():
                summary += "\n\n" + note.strip()
            case = _intake_for_child(harm_types=[harm_type],
                                     contact_preference=contact_preference,
                                     contact_detail=contact_detail, summary=summary,
                                     language="ko")
        disclosure = Disclosure.objects.create(session=locked, harm_type=harm_type,
                                               wants_help=wants_help, case=case,
                                               recorded_by=actor)
        ProgrammeSession.objects.filter(pk=locked.pk).update(disclosures=F("disclosures") + 1)
        _audit(actor, Event.DISCLOSURE_RECORDED, disclosure, request, routed=case is not None)
    session.refresh_from_db()
    return disclosure


# --- Knowledge tests ---------------------------------------------------------------------


def normalize_short_code(text: str) -> str:
    return re.sub(r"[\s\-_.]", "", text).upper()


@dataclass(frozen=True)
class ScoreLine:
    code: str
    score: float


def parse_score_lines(text: str, max_score: int) -> list[ScoreLine]:
    """'CODE SCORE' per line (a comma, tab or spaces between); every bad line is named."""
    lines: list[ScoreLine] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        # The score is the last field; the code may itself contain spaces or hyphens.
        match = re.fullmatch(r"(.+?)[\s,;]+(\S+)", raw.strip())
        if match is None:
            problems.append(str(number))
            continue
        parts = [match.group(1), match.group(2)]
        try:
            score = float(parts[1])
        except ValueError:
            problems.append(str(number))
            continue
        # The engine owns the self-generated code scheme (docs/stats.md).
        if not stats.is_scheme_code(parts[0]) or not 0 <= score <= max_score:
            problems.append(str(number))
            continue
        lines.append(ScoreLine(stats.normalise_code(parts[0]), score))
    if problems:
        raise InvalidInput(params={"problem": _(
            "These lines are not 'CODE SCORE' with a valid code and a score from 0 to the "
            "maximum: %(lines)s") % {"lines": ", ".join(problems[:20])}})
    if not lines:
        raise InvalidInput(params={"problem": _("Enter at least one score.")})
    return lines


@retry_when_locked
def create_test(actor: Any, *, name: str, module: Module, max_score: int,
                request: Any = None) -> KnowledgeTest:
    require(actor, Action.MANAGE_PREVENTION)
    if not name.strip() or not 1 <= max_score <= 1000:
        raise InvalidInput(params={"problem": _("Name the test; the maximum score is 1 to "
                                                "1000.")})
    with _durable():
        test = KnowledgeTest.objects.create(name=name.strip()[:200], module=module,
                                            max_score=max_score)
        _audit(actor, Event.TEST_CREATED, test, request)
    return test


@retry_when_locked
def add_scores(actor: Any, test: KnowledgeTest, *, wave: str, taken_on: dt.date,
               lines: Iterable[ScoreLine], session: ProgrammeSession | None = None,
               request: Any = None) -> int:
    require(actor, Action.MANAGE_PREVENTION)
    if wave not in Wave.values:
        raise InvalidInput(params={"problem": _("Choose the wave.")})
    rows = [TestScore(test=test, session=session, wave=wave, code=line.code, score=line.score,
                      taken_on=taken_on) for line in lines]
    with _durable():
        TestScore.objects.bulk_create(rows)
        stamp.renew()  # bulk_create sends no post_save
        _audit(actor, Event.SCORES_ADDED, test, request, wave=wave, scores=len(rows))
    return len(rows)


# --- Surveys -----------------------------------------------------------------------------


def _parse_form(content: bytes, filename: str) -> xlsform.FormDefinition:
    if len(content) > MAX_XLSFORM_BYTES:
        raise InvalidForm(params={"problems": _("the file is larger than 5 MB")})
    try:
        return xlsform.parse(content, filename)
    except xlsform.XLSFormError as exc:
        raise InvalidForm(params={"problems": "; ".join(exc.problems)}) from exc


@retry_when_locked
def create_survey(actor: Any, *, title: str, description: str = "", content: bytes,
                  filename: str, request: Any = None) -> Survey:
    require(actor, Action.MANAGE_PREVENTION)
    form = _parse_form(content, filename)
    with _durable():
        survey = Survey.objects.create(title=(title.strip() or form.title)[:200],
                                       description=description, created_by=actor)
        SurveyVersion.objects.create(survey=survey, number=1, xlsform=content,
                                     filename=filename[:200], definition=form.to_json(),
                                     uploaded_by=actor)
        _audit(actor, Event.SURVEY_CREATED, survey, request)
    return survey


@retry_when_locked
def upload_version(actor: Any, survey: Survey, *, content: bytes, filename: str,
                   request: Any = None) -> SurveyVersion:
    """Editing a survey: a new draft version (published ones never change)."""
    require(actor, Action.MANAGE_PREVENTION)
    form = _parse_form(content, filename)
    with _durable():
        Survey.objects.select_for_update().get(pk=survey.pk)
        number = (survey.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = SurveyVersion.objects.create(
            survey=survey, number=number, xlsform=content, filename=filename[:200],
            definition=form.to_json(), uploaded_by=actor)
        _audit(actor, Event.VERSION_UPLOADED, version, request, number=number)
    return version


@retry_when_locked
def publish_version(actor: Any, version: SurveyVersion, *, request: Any = None,
                    now: dt.datetime | None = None) -> SurveyVersion:
    require(actor, Action.MANAGE_PREVENTION)
    with _durable():
        locked = SurveyVersion.objects.select_for_update().get(pk=version.pk)
        if locked.published_at is not None:
            raise AlreadyPublished()
        locked.published_at = now or timezone.now()
        locked.save(update_fields=["published_at"])
        _audit(actor, Event.VERSION_PUBLISHED, locked, request, number=locked.number)
    version.refresh_from_db()
    return version


@dataclass(frozen=True)
class SampleRow:
    school: School
    stratum: str
    selection_probability: float
    students_sampled: int
    participated: bool


@retry_when_locked
def save_design(actor: Any, survey: Survey, *, sample: list[SampleRow],
                margins: list[dict[str, Any]], schools_invited: int,
                request: Any = None) -> Survey:
    """The sampling design: sampled schools (stratum, PSU = school, selection probability,
    participation) and the population margins (grade x sex) to calibrate to."""
    require(actor, Action.MANAGE_PREVENTION)
    seen: set[int] = set()
    for row in sample:
        if not 0 < row.selection_probability <= 1 or not row.stratum.strip() or (
                row.school.pk in seen):
            raise InvalidInput(params={"problem": _(
                "Each school once, with a stratum and a selection probability in (0, 1].")})
        seen.add(row.school.pk)
    clean_margins: list[dict[str, Any]] = []
    for m in margins:
        # Joint cells (grade, sex) post-stratify; totals per grade ("grade, *") and per sex
        # ("*, sex") rake.
        try:
            raw_grade, sex, count = str(m["grade"]).strip(), str(m["sex"]).strip(), int(
                m["count"])
            grade: int | str = "*" if raw_grade == "*" else int(raw_grade)
        except (KeyError, TypeError, ValueError):
            raise InvalidInput(params={"problem": _("Margins are grade, sex and count.")}
                               ) from None
        if (sex not in (*Sex.values, "*") or (grade != "*" and not 1 <= int(grade) <= 12)
                or count <= 0 or grade == sex == "*"):
            raise InvalidInput(params={"problem": _("Margins are grade, sex and count.")})
        clean_margins.append({"grade": grade, "sex": sex, "count": count})
    kinds = {"joint" if "*" not in (m["grade"], m["sex"]) else "total" for m in clean_margins}
    if len(kinds) > 1:
        raise InvalidInput(params={"problem": _(
            "Give either grade x sex cells or grade and sex totals, not both.")})
    with _durable():
        locked = Survey.objects.select_for_update().get(pk=survey.pk)
        SampledSchool.objects.filter(survey=locked).delete()
        SampledSchool.objects.bulk_create(
            SampledSchool(survey=locked, school=r.school, stratum=r.stratum.strip()[:100],
                          selection_probability=r.selection_probability,
                          students_sampled=r.students_sampled, participated=r.participated)
            for r in sample)
        stamp.renew()  # bulk_create sends no post_save
        locked.population_margins = clean_margins
        locked.schools_invited = max(schools_invited, len(sample))
        locked.save(update_fields=["population_margins", "schools_invited"])
        _audit(actor, Event.DESIGN_SAVED, locked, request, schools=len(sample),
               margins=len(clean_margins))
    survey.refresh_from_db()
    return survey


def _short_code() -> str:
    return "".join(secrets.choice(SHORT_CODE_ALPHABET) for _ in range(SHORT_CODE_LENGTH))


@retry_when_locked
def open_class_session(actor: Any, version: SurveyVersion, *, school: School, grade: int,
                       label: str = "", expected: int = 0,
                       minutes: int = CLASS_SESSION_MINUTES, request: Any = None,
                       now: dt.datetime | None = None) -> ClassSession:
    require(actor, Action.MANAGE_PREVENTION)
    if version.published_at is None:
        raise NotPublished()
    if not 1 <= grade <= 12 or not 5 <= minutes <= 240 or not 0 <= expected <= 200:
        raise InvalidInput(params={"problem": _(
            "Grade 1 to 12, open for 5 to 240 minutes, up to 200 students.")})
    now = now or timezone.now()
    for attempt in range(5):
        try:
            with _durable():
                cs = ClassSession.objects.create(
                    version=version, school=school, grade=grade, label=label.strip()[:40],
                    expected=expected, short_code=_short_code(), opens_at=now,
                    closes_at=now + dt.timedelta(minutes=minutes), opened_by=actor)
                _audit(actor, Event.CLASS_OPENED, cs, request, minutes=minutes)
            return cs
        except IntegrityError:
            if attempt == 4:  # five short-code collisions in a row: not chance
                raise
    raise AssertionError("unreachable")  # pragma: no cover


@retry_when_locked
def close_class_session(actor: Any, cs: ClassSession, *, request: Any = None,
                        now: dt.datetime | None = None) -> ClassSession:
    require(actor, Action.MANAGE_PREVENTION)
    now = now or timezone.now()
    with _durable():
        locked = ClassSession.objects.select_for_update().get(pk=cs.pk)
        if locked.closes_at > now:
            locked.closes_at = now
            locked.save(update_fields=["closes_at"])
        _audit(actor, Event.CLASS_CLOSED, locked, request)
    cs.refresh_from_db()
    return cs


def class_session_for(short_code: str, now: dt.datetime | None = None,
                      grace: dt.timedelta = dt.timedelta(0)) -> ClassSession:
    """The class session a student's code names, if it is open (plus `grace`)."""
    now = now or timezone.now()
    code = normalize_short_code(short_code)[:SHORT_CODE_LENGTH + 2]
    cs = ClassSession.objects.select_related("version").filter(short_code=code).first()
    if cs is None:
        raise UnknownClass()
    if cs.opens_at > now or cs.closes_at + grace < now:
        raise ClassClosed()
    return cs


def _key_hash(scope: str, key: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise BadKey()
    return hashlib.sha256(f"{scope}:{key}".encode()).hexdigest()


@dataclass(frozen=True)
class Submitted:
    created: bool  # False: this device's answers were already in (a resend): nothing doubled


@retry_when_locked
def submit_response(short_code: str, key: str, raw_answers: Mapping[str, Any], *,
                    now: dt.datetime | None = None) -> Submitted:
    """A student's answers. Stores the date and the class session only; one sheet per device
    key per class session, so a resend after a network drop is acknowledged, not doubled."""
    now = now or timezone.now()
    cs = class_session_for(short_code, now, grace=SUBMIT_GRACE)
    key_hash = _key_hash(cs.short_code, key)
    if Response.objects.filter(class_session=cs, key_hash=key_hash).exists():
        return Submitted(created=False)
    form = xlsform.FormDefinition.from_json(cs.version.definition)
    if not isinstance(raw_answers, Mapping):
        raise InvalidAnswers({})
    try:
        answers = xlsform.clean_answers(form, dict(raw_answers))
    except xlsform.AnswerError as exc:
        raise InvalidAnswers(exc.errors) from exc
    try:
        with _durable():
            Response.objects.create(class_session=cs, version=cs.version,
                                    submitted_on=timezone.localdate(now), key_hash=key_hash,
                                    answers=answers)
    except IntegrityError:
        # The same device's resend raced its first attempt: that one is stored.
        return Submitted(created=False)
    return Submitted(created=True)


@dataclass(frozen=True)
class HelpRequestData:
    key: str
    contact_preference: str
    contact_detail: str = ""
    message: str = ""
    language: str = "ko"


@dataclass(frozen=True)
class HelpResult:
    created: bool  # False: a resend of a request already made


@retry_when_locked
def request_help(data: HelpRequestData, *, now: dt.datetime | None = None) -> HelpResult:
    """'I want someone to contact me': a counselor intake with no link to any answers (its own
    table and request, no class session, the date only)."""
    key_hash = _key_hash("help", data.key)
    allowed = (ContactPreference.PHONE, ContactPreference.SMS, ContactPreference.EMAIL)
    if data.contact_preference not in allowed:
        raise InvalidInput(params={"problem": _("Choose how we may contact you.")})
    detail = data.contact_detail.strip()[:200]
    if not detail:
        raise InvalidInput(params={"problem": _("Enter a phone number or an e-mail address.")})
    if data.contact_preference == ContactPreference.EMAIL and "@" not in detail:
        raise InvalidInput(params={"problem": _("Enter an e-mail address.")})
    if data.contact_preference != ContactPreference.EMAIL and len(
            re.sub(r"\D", "", detail)) < 8:
        raise InvalidInput(params={"problem": _("Enter a phone number.")})
    if HelpRequestRow.objects.filter(key_hash=key_hash).exists():
        return HelpResult(created=False)
    language = data.language if data.language in ("ko", "en") else "ko"
    try:
        with _durable():
            summary = "A student asked to be contacted (help card at the end of a school survey)."
            if data.message.strip():
                summary += "\n\n" + data.message.strip()[:2000]
            case = _intake_for_child(harm_types=[], contact_preference=data.contact_preference,
                                     contact_detail=detail, summary=summary, language=language)
            HelpRequestRow.objects.create(
                created_on=timezone.localdate(now or timezone.now()),
                contact_preference=data.contact_preference, contact_detail=detail,
                message=data.message.strip()[:2000], language=language, case=case,
                key_hash=key_hash)
    except IntegrityError:
        return HelpResult(created=False)  # a resend raced the first attempt: that one counts
    return HelpResult(created=True)


# --- Reading -----------------------------------------------------------------------------


def response_rates(survey: Survey) -> stats.ResponseRates:
    """School and student response rates (from the sample, else from the class sessions:
    schools invited vs. schools with a class session, class sizes vs. responses)."""
    sample = list(survey.sample.all())
    responses = Response.objects.filter(version__survey=survey).count()
    if sample:
        invited = max(survey.schools_invited, len(sample))
        participating = sum(1 for s in sample if s.participated)
        eligible = sum(s.students_sampled for s in sample if s.participated)
    else:
        sessions = ClassSession.objects.filter(version__survey=survey)
        participating = sessions.values("school").distinct().count()
        invited = max(survey.schools_invited, participating)
        eligible = sum(sessions.values_list("expected", flat=True))
    return stats.response_rates(schools_sampled=invited, schools_participating=participating,
                                students_eligible=max(eligible, responses),
                                students_responding=responses)


def response_counts(class_sessions: Iterable[ClassSession]) -> dict[int, int]:
    """Responses per class session, in one query."""
    ids = [cs.pk for cs in class_sessions]
    rows = Response.objects.filter(class_session_id__in=ids).values(
        "class_session_id").annotate(n=models.Count("id"))
    return {r["class_session_id"]: r["n"] for r in rows}


def export_survey(actor: Any, survey: Survey, kind: str, profile: str, *,
                  language: str = "ko", request: Any = None) -> Any:
    """A researcher export (`anshim.prevention.exports`); audited with format and profile."""
    from anshim.prevention import exports

    require(actor, Action.EXPORT_SURVEY_DATA)
    try:
        export_kind, export_profile = exports.ExportKind(kind), exports.Profile(profile)
    except ValueError:
        raise InvalidInput(params={"problem": _("Choose a format and a profile.")}) from None
    result = exports.export(survey, export_kind, export_profile, language=language)
    with _durable():
        _audit(actor, Event.EXPORTED, survey, request, kind=export_kind.value,
               profile=export_profile.value, rows=result.rows)
    return result


def record_help_view(actor: Any, shown: int, *, request: Any = None) -> None:
    """Reading the list of help requests is audited (it shows which cases they opened)."""
    require(actor, Action.VIEW_HELP_REQUESTS)
    with _durable():
        _audit(actor, Event.HELP_REQUESTS_VIEWED, None, request, shown=shown)


def record_published_table(actor: Any, survey: Survey, breakdown: str, *,
                           request: Any = None) -> None:
    require(actor, Action.VIEW_PREVENTION)
    with _durable():
        _audit(actor, Event.TABLE_PUBLISHED, survey, request, by=breakdown)
