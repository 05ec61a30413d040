"""Demo data: staff accounts for every role and a dozen fictitious cases.

Everything here is invented (names, phone numbers, stories). Never run it on a production
database: the accounts share one published password and published second-factor secrets.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from anshim.cases import services
from anshim.cases.models import (
    AgeGroup,
    Case,
    CaseStatus,
    Channel,
    ConsentScope,
    ContactPreference,
    HarmType,
    NoteKind,
    ReferralStatus,
    ReferralTarget,
    TimelineEvent,
)
from anshim.cases.triage import TriageFactors

DEMO_PASSWORD = "anshim-demo-2026"  # noqa: S105 - published on purpose, demo only
DEMO_EVENT = "demo.seeded"

STAFF: list[tuple[str, str, str]] = [
    # username, role, display name
    ("counselor", "counselor", "상담원 문하람"),
    ("counselor2", "counselor", "상담원 이바다"),
    ("erasure", "erasure", "삭제지원 박별"),
    ("prevention", "prevention", "예방교육 최숲"),
    ("expert", "expert", "김하늘 변호사"),  # the demo registry's first expert
    ("supervisor", "supervisor", "팀장 한솔"),
    ("admin", "admin", "관리자 윤빛"),
]


@dataclass
class DemoLogin:
    username: str
    role: str
    totp_secret: str  # base32, for an authenticator app
    backup_code: str  # a static token (django-otp static device)


def _seed(username: str) -> bytes:
    return hashlib.sha256(f"anshim-demo:{username}".encode()).digest()


def totp_key_hex(username: str) -> str:
    return _seed(username)[:20].hex()


def totp_secret_b32(username: str) -> str:
    return base64.b32encode(_seed(username)[:20]).decode()


def backup_code(username: str) -> str:
    # 10 characters from an unambiguous alphabet; static per user so it can be printed.
    alphabet = "23456789abcdefghjkmnpqrstuvwxyz"
    digest = _seed(username + ":static")
    return "".join(alphabet[b % len(alphabet)] for b in digest[:10])


def ensure_user(username: str, role: str, display_name: str) -> Any:
    from anshim.security.models import User

    user, _created = User.objects.get_or_create(
        username=username, defaults={"role": role, "display_name": display_name}
    )
    user.role = role
    # Back to the demo's name as well: an older demo gave two people the same name.
    user.display_name = display_name
    user.is_active = True
    if role == "admin":
        user.is_staff = True
        user.is_superuser = True
    user.set_password(DEMO_PASSWORD)
    user.save()
    return user


def ensure_second_factor(user: Any) -> DemoLogin:
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.update_or_create(
        user=user, name="demo", defaults={"key": totp_key_hex(user.username), "confirmed": True}
    )
    static, _ = StaticDevice.objects.get_or_create(
        user=user, name="demo-backup", defaults={"confirmed": True}
    )
    code = backup_code(user.username)
    # Static tokens are used up on login; put the printed one back on every run.
    StaticToken.objects.get_or_create(device=static, token=code)
    static.throttle_reset()  # a fresh start for the printed code
    return DemoLogin(user.username, user.role, totp_secret_b32(user.username), code)


def current_totp(username: str) -> str:
    from django_otp.oath import totp

    return f"{totp(_seed(username)[:20]):06d}"


def create_staff() -> dict[str, Any]:
    """All demo users except, possibly, the expert (the experts demo makes its own)."""
    return {u: ensure_user(u, r, n) for u, r, n in STAFF if u != "expert"}


# --- Cases ----------------------------------------------------------------------------------


@dataclass
class DemoCase:
    name: str
    age_group: str
    harms: list[str]
    factors: TriageFactors
    channel: str = Channel.PHONE
    status: str = ""
    victim_consents: tuple[str, ...] = ()
    guardian: str = ""
    guardian_consents: tuple[str, ...] = ()
    note: str = ""
    referral: tuple[str, str, str] | None = None  # target, organization, status
    counselor: str = "counselor"
    hours_ago: int = 1


ALL_SCOPES = tuple(ConsentScope.values)

CASES: list[DemoCase] = [
    DemoCase("김서연", AgeGroup.AGE_14_17, [HarmType.SEXTORTION],
             TriageFactors(threat_to_spread=True, content_exists=True),
             victim_consents=ALL_SCOPES, note="(가상) 가해자가 금전을 요구하며 유포를 협박함.",
             referral=(ReferralTarget.POLICE, "서울 사이버수사대", ReferralStatus.SENT)),
    DemoCase("이도윤", AgeGroup.UNDER_14, [HarmType.GROOMING],
             TriageFactors(offline_meeting_planned=True, repeated_contact=True),
             channel=Channel.CHAT, guardian="이어머니",
             victim_consents=(ConsentScope.KEEP_DATA, ConsentScope.SHARE_POLICE),
             guardian_consents=(ConsentScope.KEEP_DATA, ConsentScope.SHARE_POLICE),
             note="(가상) 게임 채팅에서 만난 성인이 주말 만남을 요구.",
             referral=(ReferralTarget.POLICE, "관할 경찰서 여성청소년과", ReferralStatus.ACCEPTED)),
    DemoCase("박지우", AgeGroup.AGE_14_17, [HarmType.DISTRIBUTION],
             TriageFactors(content_spreading=True), channel=Channel.WEB,
             victim_consents=(ConsentScope.KEEP_DATA, ConsentScope.REGISTER_FINGERPRINTS,
                              ConsentScope.CONTACT_PLATFORMS),
             note="(가상) 단체 대화방에 영상이 공유됨."),
    DemoCase("최하은", AgeGroup.ADULT, [HarmType.SYNTHETIC],
             TriageFactors(content_exists=True), channel=Channel.EMAIL,
             status=CaseStatus.IN_SUPPORT, victim_consents=ALL_SCOPES, counselor="counselor2"),
    DemoCase("정민준", AgeGroup.AGE_14_17, [HarmType.UNSOLICITED],
             TriageFactors(repeated_contact=True), channel=Channel.CHAT,
             victim_consents=(ConsentScope.KEEP_DATA,), hours_ago=30),
    DemoCase("강수아", AgeGroup.UNDER_14, [HarmType.SOLICITATION, HarmType.GROOMING],
             TriageFactors(self_harm_risk=True), guardian="강아버지",
             victim_consents=(ConsentScope.KEEP_DATA,),
             guardian_consents=(ConsentScope.KEEP_DATA,),
             note="(가상) 자해 위험 언급, 위기개입 연계 필요.",
             referral=(ReferralTarget.HOSPITAL, "시립 청소년 정신건강센터",
                       ReferralStatus.PROPOSED)),
    DemoCase("윤예준", AgeGroup.ADULT, [HarmType.HIDDEN_CAMERA],
             TriageFactors(content_exists=True), channel=Channel.WALK_IN,
             status=CaseStatus.ON_HOLD, victim_consents=ALL_SCOPES, counselor="counselor2"),
    DemoCase("임지아", AgeGroup.AGE_14_17, [HarmType.OTHER], TriageFactors(),
             status=CaseStatus.CLOSED, victim_consents=(ConsentScope.KEEP_DATA,),
             referral=(ReferralTarget.SCHOOL, "OO중학교 상담실", ReferralStatus.COMPLETED),
             hours_ago=200),
    DemoCase("한서준", AgeGroup.AGE_14_17, [HarmType.DISTRIBUTION, HarmType.SEXTORTION],
             TriageFactors(threat_to_spread=True, offender_known=True), channel=Channel.PHONE,
             victim_consents=(ConsentScope.KEEP_DATA, ConsentScope.CONTACT_PLATFORMS),
             hours_ago=5),
    DemoCase("오유나", AgeGroup.UNKNOWN, [HarmType.UNSOLICITED], TriageFactors(),
             channel=Channel.WEB, counselor="counselor2"),
    DemoCase("서하린", AgeGroup.UNDER_14, [HarmType.SYNTHETIC],
             TriageFactors(content_exists=True), guardian="서할머니",
             victim_consents=(ConsentScope.KEEP_DATA, ConsentScope.REGISTER_FINGERPRINTS),
             guardian_consents=(ConsentScope.KEEP_DATA,),
             referral=(ReferralTarget.SHELTER, "해바라기센터", ReferralStatus.SENT)),
    DemoCase("문시우", AgeGroup.ADULT, [HarmType.GROOMING, HarmType.SOLICITATION],
             TriageFactors(repeated_contact=True, offender_known=True),
             status=CaseStatus.IN_SUPPORT, victim_consents=ALL_SCOPES, hours_ago=80),
]


def _phone(i: int) -> str:
    return f"010-0000-{i:04d}"  # 010-0000-xxxx: not assigned to real subscribers


def create_demo_cases(staff: dict[str, Any]) -> list[Case]:
    if TimelineEvent.objects.filter(kind=DEMO_EVENT).exists():
        return []
    made = []
    now = timezone.now()
    for i, d in enumerate(CASES, start=1):
        actor = staff[d.counselor]
        started = now - dt.timedelta(hours=d.hours_ago)
        with transaction.atomic():
            case = services.intake(actor, services.IntakeData(
                channel=d.channel, started_at=started, duration_minutes=10 + i * 3,
                harm_types=list(d.harms), factors=d.factors, age_group=d.age_group,
                name=d.name, phone=_phone(i), contact_preference=ContactPreference.PHONE,
                guardian=services.GuardianData(name=d.guardian, phone=_phone(100 + i),
                                               relationship="보호자") if d.guardian else None,
                victim_consents=list(d.victim_consents),
                guardian_consents=list(d.guardian_consents),
                summary=f"(가상 사례 {i}) 데모용으로 만든 이야기입니다. 실제 인물과 무관합니다.",
            ))
            # Spread the deadlines out so the list shows overdue and upcoming cases.
            due = case.response_due - dt.timedelta(hours=d.hours_ago) if case.response_due \
                else None
            Case.objects.filter(pk=case.pk).update(response_due=due)
            case.refresh_from_db()
            if d.note:
                services.add_note(actor, case, body=d.note, kind=NoteKind.COUNSELING)
                services.add_note(actor, case, body="(가상) 다음 주 재상담 예정.",
                                  kind=NoteKind.CASE)
            if d.referral:
                target, org, status = d.referral
                referral = services.create_referral(actor, case, target=target,
                                                    organization=org)
                if status != ReferralStatus.PROPOSED:
                    services.update_referral(actor, referral, status=status,
                                             outcome="(가상) 진행 기록" if status ==
                                             ReferralStatus.COMPLETED else "")
            services.add_event(case, DEMO_EVENT, gettext_noop("Demo data"), None)
        if d.status:
            # Staff's own workflow actions are durable transactions: after the block above.
            _demo_status(staff, actor, case, d.status)
        made.append(case)
    # One case shared with a second counselor so "mine" differs per user.
    first = made[0]
    first.counselors.add(staff["counselor2"])
    _demo_portal_messages(made)
    return made


def _demo_status(staff: dict[str, Any], actor: Any, case: Case, status: str) -> None:
    """Move a demo case the way staff would: a closed case was put forward for closure by its
    counselor and approved by the supervisor."""
    from anshim.cases import transitions

    case.refresh_from_db()
    if status == CaseStatus.CLOSED:
        transitions.request_closure(actor, case, expected=case.status, note="(가상) 지원 종료")
        transitions.approve_closure(staff["supervisor"], case)
    elif status != case.status:
        transitions.move(actor, case, status, expected=case.status)


def _demo_portal_messages(made: list[Case]) -> None:
    """Victims' portal messages for the counselors' inbox: one fresh, one past the response
    target (fictitious text)."""
    from anshim.portal import services as portal
    from anshim.portal.models import PortalMessage

    for case, hours_ago, body in (
        (made[0], 1, "(가상) 선생님, 오늘 학교에서 또 그 사진 이야기를 들었어요."),
        (made[1 % len(made)], 30, "(가상) 삭제 요청은 어떻게 되고 있나요?"),
    ):
        msg = portal.send_message(case, body)
        PortalMessage.objects.filter(pk=msg.pk).update(
            created_at=timezone.now() - dt.timedelta(hours=hours_ago))


