"""Fictitious prevention data for `anshim demo`: schools, a programme catalogue, facilitators,
bookings, sessions, a pre/post/follow-up test of a few classes, and a survey of 4,012 students
whose weighted results reproduce the centre's founding survey:

21.3% directly exposed; among them 56.4% received sexual images or messages, 27.2% persistent
messages and requests to meet offline, 4.8% distribution or threats to distribute intimate
images, 4.3% requests for images or sex for money; 27.5% took no action, 25.9% blocked the
account, 15.0% stopped using the service; 78.5% named lack of information and resources as a
reason for not seeking help, 11.7% distrust of the response system; 47.6% of female
respondents (51.0% of female high-school students) asked for measures to delete footage.

The design is self-weighting (every school drawn with the same probability, every sampled
student answered, margins equal to the sample's): each weight is the same, so the weighted
shares equal the exact counts generated here. Idempotent: nothing is added twice.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from typing import Any

from django.db import transaction
from django.utils import timezone

from anshim.prevention import stamp
from anshim.prevention.models import (
    Attendance,
    BookingRequest,
    ClassSession,
    Facilitator,
    FacilitatorKind,
    KnowledgeTest,
    Module,
    ProgrammeSession,
    Response,
    SampledSchool,
    School,
    SchoolLevel,
    SessionStatus,
    Survey,
    SurveyVersion,
    TestScore,
    Topic,
    Wave,
)

SURVEY_TITLE = "2026 학생 디지털 성범죄 실태조사 (가상)"
N_STUDENTS = 4012
DISTRICTS = ("가람구", "나래구", "다솜구", "라온구")
GRADES = {SchoolLevel.ELEMENTARY: (4, 5, 6), SchoolLevel.MIDDLE: (7, 8, 9),
          SchoolLevel.HIGH: (10, 11, 12)}
SCHOOL_PROBABILITY = 0.25  # every school drawn with the same probability: self-weighting

# Exact counts (see the module docstring for the shares they give).
EXPOSED = 854
TYPE_COUNTS = {"unsolicited": 482, "grooming": 232, "distribution": 41, "solicitation": 37}
ACTION_COUNTS = {"none": 235, "blocked": 221, "stopped": 128, "reported": 150,
                 "told_adult": 120}
REASON_COUNTS = {"lack_info": 670, "distrust": 100}
FEMALE = 2006
FEMALE_DELETION = 955
FEMALE_HIGH = 500
FEMALE_HIGH_DELETION = 255  # of the FEMALE_HIGH female high-school students: 51.0%

KO, EN = "label::Korean (ko)", "label::English (en)"


def survey_xlsform() -> bytes:
    """The demo questionnaire as an XLSForm workbook (it is imported like any upload)."""
    import openpyxl

    wb = openpyxl.Workbook()
    survey = wb.active
    assert survey is not None
    survey.title = "survey"
    survey.append(["type", "name", KO, EN, "hint::Korean (ko)", "required", "relevant",
                   "constraint", "constraint_message::Korean (ko)",
                   "constraint_message::English (en)"])
    rows = [
        ["note", "intro", "이 설문은 익명입니다. 이름을 쓰지 마세요. 답하기 싫은 질문은 넘어가도 "
         "됩니다.", "This survey is anonymous. Do not write your name. You may skip questions.",
         "", "", "", "", "", ""],
        ["integer", "grade", "몇 학년인가요? (초등 4학년 = 4, 고등 1학년 = 10)",
         "Which grade are you in? (elementary 4 = 4, high school 1 = 10)", "", "yes", "",
         ". >= 1 and . <= 12", "1에서 12 사이로 입력하세요.", "Enter 1 to 12."],
        ["select_one sex", "sex", "성별", "Sex", "", "yes", "", "", "", ""],
        ["select_one yn", "exposed",
         "지난 1년 동안 온라인에서 성적인 괴롭힘이나 피해를 직접 겪은 적이 있나요?",
         "In the past year, did you directly experience sexual harassment or abuse online?",
         "", "yes", "", "", "", ""],
        ["begin_group", "experience", "겪은 일", "What happened", "", "",
         "${exposed} = 'yes'", "", "", ""],
        ["select_multiple harm", "harm_types", "어떤 일을 겪었나요? (모두 고르세요)",
         "What happened? (choose all that apply)", "", "yes", "", "", "", ""],
        ["select_one action", "action", "그때 어떻게 했나요?", "What did you do?", "",
         "yes", "", "", "", ""],
        ["select_multiple reason", "reasons", "도움을 요청하지 않은 이유는? (모두 고르세요)",
         "What kept you from seeking help? (choose all that apply)", "", "", "", "", "", ""],
        ["text", "other_text", "다른 일이 있었다면 적어 주세요 (이름은 쓰지 마세요)",
         "If something else happened, describe it (no names)", "", "",
         "selected(${harm_types}, 'other')", "", "", ""],
        ["end_group", "experience", "", "", "", "", "", "", "", ""],
        ["select_multiple measure", "measures", "어떤 대책이 필요하다고 생각하나요?",
         "Which measures do you think are needed?", "", "", "", "", "", ""],
        ["integer", "hours_online", "하루에 온라인에서 보내는 시간 (시간)",
         "Hours a day you spend online", "", "", "", ". >= 0 and . <= 24",
         "0에서 24 사이로 입력하세요.", "Enter 0 to 24."],
    ]
    for r in rows:
        survey.append(r)
    choices = wb.create_sheet("choices")
    choices.append(["list_name", "name", KO, EN])
    for r in [
        ["sex", "female", "여자", "Female"], ["sex", "male", "남자", "Male"],
        ["yn", "yes", "예", "Yes"], ["yn", "no", "아니요", "No"],
        ["harm", "unsolicited", "원하지 않는 성적인 사진이나 메시지를 받음",
         "Received sexual images or messages"],
        ["harm", "grooming", "계속되는 메시지와 오프라인 만남 요구",
         "Persistent messages and requests to meet offline"],
        ["harm", "distribution", "내 사진이나 영상의 유포 또는 유포 협박",
         "Distribution or threats to distribute intimate images"],
        ["harm", "solicitation", "돈을 줄 테니 사진이나 성관계를 요구함",
         "Requests for images or sex for money"],
        ["harm", "other", "기타", "Something else"],
        ["action", "none", "아무것도 하지 않음", "Took no action"],
        ["action", "blocked", "계정 차단", "Blocked the account"],
        ["action", "stopped", "서비스 이용 중단", "Stopped using the service"],
        ["action", "reported", "신고함", "Reported it"],
        ["action", "told_adult", "어른에게 말함", "Told an adult"],
        ["reason", "lack_info", "어디에 도움을 청할지 몰라서 (정보와 자원 부족)",
         "Did not know where to get help (lack of information and resources)"],
        ["reason", "distrust", "대응 체계를 믿을 수 없어서", "Distrust of the response system"],
        ["reason", "shame", "부끄럽거나 혼날까 봐", "Shame or fear of being blamed"],
        ["measure", "delete_footage", "영상·사진 삭제 지원", "Help deleting footage"],
        ["measure", "punish", "가해자 처벌 강화", "Stronger punishment"],
        ["measure", "education", "예방 교육", "Prevention education"],
        ["measure", "counseling", "상담 지원", "Counseling"],
    ]:
        choices.append(r)
    settings = wb.create_sheet("settings")
    settings.append(["form_title", "form_id", "version", "default_language"])
    settings.append([SURVEY_TITLE, "anshim_demo_2026", "1", "Korean (ko)"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _students(rng: random.Random, schools: list[School]) -> list[dict[str, Any]]:
    """4,012 students spread over the schools, exactly FEMALE of them female."""
    per_school = [N_STUDENTS // len(schools)] * len(schools)
    for i in range(N_STUDENTS - sum(per_school)):
        per_school[i] += 1
    students: list[dict[str, Any]] = []
    for school, n in zip(schools, per_school, strict=True):
        grades = GRADES[SchoolLevel(school.level)]
        for k in range(n):
            students.append({"school": school, "grade": grades[k % len(grades)]})
    high = [s for s in students if s["school"].level == SchoolLevel.HIGH]
    other = [s for s in students if s["school"].level != SchoolLevel.HIGH]
    for group, females in ((high, FEMALE_HIGH), (other, FEMALE - FEMALE_HIGH)):
        sexes = ["female"] * females + ["male"] * (len(group) - females)
        rng.shuffle(sexes)
        for s, sex in zip(group, sexes, strict=True):
            s["sex"] = sex
    return students


def _pick(rng: random.Random, pool: list[int], k: int) -> set[int]:
    return set(rng.sample(pool, k))


def survey_answers(rng: random.Random, students: list[dict[str, Any]]) -> list[dict[str, Any]]:
    idx = list(range(len(students)))
    exposed = _pick(rng, idx, EXPOSED)
    exposed_list = sorted(exposed)
    types = {t: _pick(rng, exposed_list, k) for t, k in TYPE_COUNTS.items()}
    order = exposed_list[:]
    rng.shuffle(order)
    action: dict[int, str] = {}
    pos = 0
    for name, k in ACTION_COUNTS.items():
        for i in order[pos:pos + k]:
            action[i] = name
        pos += k
    for i in order[pos:]:
        action[i] = "told_adult"
    reasons = {r: _pick(rng, exposed_list, k) for r, k in REASON_COUNTS.items()}
    females = [i for i in idx if students[i]["sex"] == "female"]
    female_high = [i for i in females if students[i]["school"].level == SchoolLevel.HIGH]
    female_other = [i for i in females if students[i]["school"].level != SchoolLevel.HIGH]
    deletion = _pick(rng, female_high, FEMALE_HIGH_DELETION) | _pick(
        rng, female_other, FEMALE_DELETION - FEMALE_HIGH_DELETION)
    males = [i for i in idx if students[i]["sex"] == "male"]
    deletion |= _pick(rng, males, round(0.30 * len(males)))
    out = []
    for i, s in enumerate(students):
        a: dict[str, Any] = {"grade": s["grade"], "sex": s["sex"],
                             "exposed": "yes" if i in exposed else "no"}
        if i in exposed:
            harms = [t for t in TYPE_COUNTS if i in types[t]] or ["other"]
            a["harm_types"] = harms
            a["action"] = action[i]
            # Every exposed student answers; those who named neither reason named shame.
            a["reasons"] = [r for r in REASON_COUNTS if i in reasons[r]] or ["shame"]
            if "other" in harms:
                a["other_text"] = "온라인 게임에서 불쾌한 말을 들음"
        measures = ["delete_footage"] if i in deletion else []
        if rng.random() < 0.55:
            measures.append("education")
        if rng.random() < 0.35:
            measures.append("punish")
        a["measures"] = measures or ["counseling"]
        a["hours_online"] = min(24, max(0, round(rng.gauss(3.5 + 0.3 * (s["grade"] - 4), 1.5))))
        out.append(a)
    return out


def _catalogue() -> list[Module]:
    specs = [
        ("그루밍 알아차리기", Topic.GROOMING, ["elementary", "middle"], 40),
        ("몸캠·성착취 협박, 이렇게 대처해요", Topic.SEXTORTION, ["middle", "high"], 45),
        ("디지털 동의와 이미지 공유", Topic.CONSENT, ["middle", "high"], 45),
        ("방관자에서 조력자로", Topic.BYSTANDER, ["elementary", "middle", "high"], 45),
        ("딥페이크, 장난이 아닙니다", Topic.DEEPFAKES, ["middle", "high"], 50),
    ]
    modules = []
    for name, topic, levels, minutes in specs:
        module, _ = Module.objects.get_or_create(name=name, defaults={
            "topic": topic, "target_levels": levels, "duration_minutes": minutes,
            "materials": "슬라이드, 활동지, 도움 카드 (가상)",
            "description": "가상의 예방 교육 모듈입니다."})
        modules.append(module)
    return modules


def _schools() -> list[School]:
    schools = []
    names = {SchoolLevel.ELEMENTARY: "초등학교", SchoolLevel.MIDDLE: "중학교",
             SchoolLevel.HIGH: "고등학교"}
    for d, district in enumerate(DISTRICTS):
        for level in SchoolLevel:
            for k in range(3 if level != SchoolLevel.HIGH else 2):
                name = f"{district[:2]}{'가나다'[k]}{names[level]}"
                school, _ = School.objects.get_or_create(name=name, district=district, defaults={
                    "level": level, "students": 400 + 37 * (d + k),
                    "contact_name": "담당 교사 (가상)", "contact_phone": "02-0000-0000"})
                schools.append(school)
    return schools


def load(officer: Any) -> None:
    """Add the prevention demo data (once)."""
    if Survey.objects.filter(title=SURVEY_TITLE).exists():
        return
    from anshim.prevention import services

    rng = random.Random(13)
    with transaction.atomic():
        modules = _catalogue()
        schools = _schools()
        staff, _ = Facilitator.objects.get_or_create(
            name=str(officer), defaults={"kind": FacilitatorKind.STAFF, "user": officer})
        external, _ = Facilitator.objects.get_or_create(
            name="김하늘 강사 (가상)", defaults={"kind": FacilitatorKind.EXTERNAL,
                                          "organization": "디지털시민교육연구소 (가상)"})
        for f in (staff, external):
            f.modules.set(modules)
        now = timezone.now().replace(minute=0, second=0, microsecond=0)
        # Delivered sessions (with their reports) and upcoming ones.
        sessions = []
        for k in range(3):
            starts = now - dt.timedelta(days=40 - k, hours=-1)
            s = ProgrammeSession.objects.create(
                school=schools[3 + k], module=modules[1], facilitator=staff, starts_at=starts,
                ends_at=starts + dt.timedelta(minutes=45), grade=8, classes=1,
                status=SessionStatus.DELIVERED,
                fidelity={i: True for i in services.FIDELITY_ITEMS} | {"on_time": k != 1},
                satisfaction={"3": 3, "4": 11, "5": 11})
            Attendance.objects.bulk_create([
                Attendance(session=s, grade=8, sex="female", count=12),
                Attendance(session=s, grade=8, sex="male", count=13)])
            sessions.append(s)
        for k, module in enumerate(modules[:4]):
            starts = now + dt.timedelta(days=3 + 2 * k, hours=1)
            services._create_session(services.SessionPlan(
                school=schools[k * 2], module=module, facilitator=external if k % 2 else staff,
                starts_at=starts, grade=GRADES[SchoolLevel(schools[k * 2].level)][0]),
                None, timezone.now())
        BookingRequest.objects.create(
            school_name="마루중학교 (가상)", level=SchoolLevel.MIDDLE, district="가람구",
            contact_name="이선생 (가상)", contact_phone="02-0000-1111", class_count=4,
            grades=[7, 8], preferred_dates=[(timezone.localdate() + dt.timedelta(days=d))
                                            .isoformat() for d in (14, 15)],
            module=modules[4], message="2학년 4개 반 신청합니다 (가상).")
        BookingRequest.objects.create(
            school_name="바다초등학교 (가상)", level=SchoolLevel.ELEMENTARY, district="다솜구",
            contact_name="박선생 (가상)", contact_email="teacher@example.invalid", class_count=2,
            grades=[5], preferred_dates=[(timezone.localdate() + dt.timedelta(days=21))
                                         .isoformat()], module=modules[0])
        _pre_post(rng, modules[1], sessions)
        _survey(rng, officer, schools)


def _pre_post(rng: random.Random, module: Module, sessions: list[ProgrammeSession]) -> None:
    test = KnowledgeTest.objects.create(name="성착취 대처 지식 검사 (가상)", module=module,
                                        max_score=10)
    initials = "가나다라마바사아자차카타파하JKMS"
    rows = []
    for session in sessions:
        day = timezone.localdate(session.starts_at)
        codes: set[str] = set()
        while len(codes) < 25:
            codes.add(f"{rng.choice(initials)}{rng.randint(1, 12):02d}{rng.randint(0, 3)}"
                      f"{rng.randint(0, 9)}")
        for n, code in enumerate(sorted(codes)):
            pre = min(10, max(0, round(rng.gauss(5.2, 1.8))))
            # Realistic: a gain of about 1.3 points (d about 0.7), smaller for the weakest students.
            gain = rng.gauss(0.5 + 0.15 * pre, 1.6)
            post = min(10, max(0, round(pre + gain)))
            follow = min(10, max(0, round(pre + 0.7 * gain + rng.gauss(0, 0.8))))
            rows.append(TestScore(test=test, session=session, wave=Wave.PRE, code=code,
                                  score=pre, taken_on=day))
            if n != 0:  # one student per class missed the post-test
                rows.append(TestScore(test=test, session=session, wave=Wave.POST, code=code,
                                      score=post, taken_on=day))
            if n % 5 != 1:
                rows.append(TestScore(test=test, session=session, wave=Wave.FOLLOW_UP,
                                      code=code, score=follow,
                                      taken_on=day + dt.timedelta(days=30)))
    TestScore.objects.bulk_create(rows)
    stamp.renew()  # bulk_create sends no post_save: the analyses' cache must see the scores


def _survey(rng: random.Random, officer: Any, schools: list[School]) -> None:
    import hashlib

    from anshim.prevention import xlsform

    content = survey_xlsform()
    form = xlsform.parse(content, "demo-survey.xlsx")
    survey = Survey.objects.create(title=SURVEY_TITLE, created_by=officer,
                                   description="가상의 데모 설문입니다 (4,012명).",
                                   schools_invited=len(schools) + 2)
    now = timezone.now()
    version = SurveyVersion.objects.create(
        survey=survey, number=1, xlsform=content, filename="demo-survey.xlsx",
        definition=form.to_json(), uploaded_by=officer, published_at=now - dt.timedelta(days=60))
    students = _students(rng, schools)
    answers = survey_answers(rng, students)
    by_school: dict[int, list[int]] = {}
    for i, s in enumerate(students):
        by_school.setdefault(s["school"].pk, []).append(i)
    responses = []
    margins: dict[tuple[int, str], int] = {}
    weight = 1 / SCHOOL_PROBABILITY
    day = timezone.localdate(now - dt.timedelta(days=45))
    for k, school in enumerate(schools):
        members = by_school.get(school.pk, [])
        for grade in sorted({students[i]["grade"] for i in members}):
            cs = ClassSession.objects.create(
                version=version, school=school, grade=grade, label=f"{grade}-1",
                expected=sum(1 for i in members if students[i]["grade"] == grade),
                short_code=f"D{k:02d}{grade:02d}X"[:8], opens_at=now - dt.timedelta(days=45),
                closes_at=now - dt.timedelta(days=45) + dt.timedelta(minutes=45),
                opened_by=officer)
            for i in members:
                if students[i]["grade"] != grade:
                    continue
                responses.append(Response(
                    class_session=cs, version=version, submitted_on=day,
                    key_hash=hashlib.sha256(f"demo:{i}".encode()).hexdigest(),
                    answers=answers[i]))
                key = (grade, students[i]["sex"])
                margins[key] = margins.get(key, 0) + 1
    Response.objects.bulk_create(responses, batch_size=500)
    SampledSchool.objects.bulk_create(
        SampledSchool(survey=survey, school=school,
                      stratum=f"{school.level}·{school.district}",
                      selection_probability=SCHOOL_PROBABILITY,
                      students_sampled=len(by_school.get(school.pk, [])), participated=True)
        for school in schools)
    stamp.renew()  # the responses and the sample came by bulk_create, which sends no signal
    survey.population_margins = [
        {"grade": g, "sex": s, "count": round(n * weight)} for (g, s), n in sorted(margins.items())]
    survey.save(update_fields=["population_margins"])
