"""Demo experts (fictitious people) for `anshim demo`. Idempotent: run it as often as you like.

The user "expert" (password DEMO_PASSWORD) signs in as an expert to try the expert's view.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from anshim.experts.models import Expert, ExpertKind, Specialty, WeeklyAvailability

DEMO_PASSWORD = "anshim-demo-2026"  # noqa: S105 - a published demo credential

T = dt.time
# username, display name, kind, organization, specialties, languages, regions, capacity,
# availability [(weekday, from, until)]
DEMO_EXPERTS: list[tuple[str, str, str, str, list[str], list[str], list[str], int,
                         list[tuple[int, dt.time, dt.time]]]] = [
    ("expert", "김하늘 변호사", ExpertKind.LEGAL, "법무법인 새봄 (가상)",
     [Specialty.CRIMINAL_COMPLAINT, Specialty.COURT_ACCOMPANIMENT], ["ko", "en"],
     ["jongno", "jung"], 6, [(0, T(9), T(12)), (2, T(13), T(18)), (4, T(9), T(12))]),
    ("expert.lee", "이도윤 변호사", ExpertKind.LEGAL, "공익법센터 다온 (가상)",
     [Specialty.CIVIL_DAMAGES, Specialty.CRIMINAL_COMPLAINT], ["ko"], ["gangnam", "seocho"], 5,
     [(1, T(10), T(16)), (3, T(10), T(16))]),
    ("expert.park", "박서연 변호사", ExpertKind.LEGAL, "법률사무소 누리 (가상)",
     [Specialty.COURT_ACCOMPANIMENT, Specialty.CIVIL_DAMAGES], ["ko", "zh"],
     ["yeongdeungpo", "guro"], 4, [(0, T(14), T(18)), (3, T(9), T(13))]),
    ("expert.choi", "최민준 변호사", ExpertKind.LEGAL, "법무법인 한빛 (가상)",
     [Specialty.CRIMINAL_COMPLAINT], ["ko", "vi"], ["gwanak", "dongjak"], 5,
     [(2, T(9), T(17))]),
    ("expert.jung", "정수아 변호사", ExpertKind.LEGAL, "청소년법률지원단 (가상)",
     [Specialty.CRIMINAL_COMPLAINT, Specialty.CIVIL_DAMAGES, Specialty.COURT_ACCOMPANIMENT],
     ["ko", "ja"], ["mapo", "seodaemun"], 8, [(0, T(9), T(18)), (4, T(13), T(18))]),
    ("expert.kang", "강지호 변호사", ExpertKind.LEGAL, "법률사무소 바른길 (가상)",
     [Specialty.CIVIL_DAMAGES], ["ko", "en"], ["songpa", "gangdong"], 3,
     [(5, T(10), T(14))]),
    ("expert.yoon", "윤서진 상담심리사", ExpertKind.THERAPY, "마음숲 심리상담센터 (가상)",
     [Specialty.TRAUMA, Specialty.CHILD_ADOLESCENT], ["ko", "en"], ["jongno", "seongbuk"], 8,
     [(0, T(10), T(18)), (1, T(10), T(18)), (3, T(14), T(20))]),
    ("expert.jang", "장예린 임상심리전문가", ExpertKind.THERAPY, "햇살아동청소년상담소 (가상)",
     [Specialty.CHILD_ADOLESCENT, Specialty.FAMILY], ["ko"], ["nowon", "dobong"], 6,
     [(1, T(13), T(19)), (4, T(13), T(19))]),
    ("expert.lim", "임태윤 정신건강전문요원", ExpertKind.THERAPY, "위기지원센터 온 (가상)",
     [Specialty.CRISIS, Specialty.TRAUMA], ["ko", "zh"], ["jung", "yongsan"], 10,
     [(0, T(8), T(20)), (2, T(8), T(20)), (5, T(10), T(16))]),
    ("expert.han", "한지우 가족치료사", ExpertKind.THERAPY, "가족상담연구소 다움 (가상)",
     [Specialty.FAMILY], ["ko", "vi"], ["gangseo", "yangcheon"], 5,
     [(2, T(10), T(17)), (4, T(10), T(17))]),
    ("expert.oh", "오유나 상담심리사", ExpertKind.THERAPY, "트라우마회복센터 이음 (가상)",
     [Specialty.TRAUMA], ["ko", "ja", "en"], ["mapo", "eunpyeong"], 6,
     [(1, T(9), T(15)), (3, T(9), T(15))]),
    ("expert.seo", "서현우 놀이치료사", ExpertKind.THERAPY, "아이마음 놀이치료실 (가상)",
     [Specialty.CHILD_ADOLESCENT], ["ko"], ["gangnam", "songpa"], 7,
     [(0, T(15), T(19)), (2, T(15), T(19)), (4, T(15), T(19))]),
    ("expert.shin", "신가온 상담심리사", ExpertKind.THERAPY, "다문화가족상담센터 (가상)",
     [Specialty.TRAUMA, Specialty.FAMILY, Specialty.CRISIS], ["ko", "zh", "vi"],
     ["guro", "geumcheon", "yeongdeungpo"], 6, [(1, T(10), T(18)), (5, T(10), T(14))]),
]

# The age groups of the child and youth specialists (the others work with all ages): the
# ranking prefers them for a victim of that age.
DEMO_AGE_GROUPS: dict[str, list[str]] = {
    "expert.jung": ["under14", "14to17"],
    "expert.jang": ["under14", "14to17"],
    "expert.seo": ["under14"],
}
DEMO_MEETING_PLACE = "안심 센터 2층 상담실 (가상)"


@transaction.atomic
def create_demo_experts() -> list[Expert]:
    """Create (or bring back to the demo state) the demo experts and their users."""
    from anshim.security.models import User
    from anshim.security.roles import Role

    experts = []
    for (username, name, kind, org, specialties, languages, regions, capacity,
         windows) in DEMO_EXPERTS:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"role": Role.EXPERT, "display_name": name,
                      "email": f"{username}@experts.anshim.invalid"},
        )
        if created:
            if username == "expert":
                user.set_password(DEMO_PASSWORD)
            else:
                user.set_unusable_password()
            user.save()
        expert, _ = Expert.objects.update_or_create(
            user=user,
            defaults={"kind": kind, "organization": org,
                      "specialties": [str(s) for s in specialties], "languages": languages,
                      "regions": regions, "weekly_capacity": capacity, "active": True,
                      "age_groups": DEMO_AGE_GROUPS.get(username, [])},
        )
        if not expert.availability.exists():
            WeeklyAvailability.objects.bulk_create(
                WeeklyAvailability(expert=expert, weekday=d, start_time=a, end_time=b)
                for d, a, b in windows
            )
        experts.append(expert)
    return experts


@transaction.atomic
def create_demo_assignment() -> list[Any]:
    """Give the demo user "expert" one assignment with an appointment next week, so the
    expert's home is not empty. Idempotent; needs the demo cases (call it after them)."""
    from django.utils import timezone

    from anshim.cases.models import Case
    from anshim.experts.models import Appointment, Assignment, AssignmentStatus

    expert = Expert.objects.filter(user__username="expert").first()
    case = Case.objects.order_by("created_at", "pk").first()
    if expert is None or case is None:
        return []
    assignment, _ = Assignment.objects.get_or_create(
        case=case, expert=expert, specialty=Specialty.CRIMINAL_COMPLAINT,
        status=AssignmentStatus.ACTIVE,
        defaults={"brief": "가상 사례: 형사 고소 절차 안내가 필요합니다. (demo)"},
    )
    if not Appointment.objects.filter(assignment=assignment).exists():
        from anshim.experts import services

        window = expert.availability.order_by("weekday", "start_time").first()
        if window is not None:
            today = timezone.localdate()
            day = today + dt.timedelta(days=(window.weekday - today.weekday()) % 7 + 7)
            start = timezone.make_aware(dt.datetime.combine(day, window.start_time))
            appointment = Appointment.objects.create(
                assignment=assignment, expert=expert, starts_at=start,
                ends_at=start + dt.timedelta(hours=1), location=DEMO_MEETING_PLACE)
            services._occupy(appointment)
    return [assignment]
