"""`anshim demo --volume N`: N fictitious cases over 24 months with a realistic mix (harm types,
ages, contacts, referrals, sightings on a dozen fictitious platforms with long-tailed removal
times, re-uploads, takedown notices (the slow ones often escalated to the regulator), a pool
of fictitious experts with assignments and appointments), written with bulk_create in a few
statements per table.

Everything is fictitious and benign: no media, no names (victims are anonymous)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from anshim.cases.models import (
    AgeGroup,
    Case,
    CaseHarm,
    CaseStatus,
    Channel,
    Contact,
    HarmType,
    OffenderRelationship,
    Person,
    Referral,
    ReferralStatus,
    ReferralTarget,
    Region,
    RiskLevel,
    Sex,
)
from anshim.erasure.models import (
    EscalationTarget,
    Jurisdiction,
    Platform,
    PlatformKind,
    Sighting,
    SightingStatus,
    TakedownChannel,
    TakedownItem,
    TakedownRequest,
    TakedownState,
    UnblurRecord,
)
from anshim.experts.models import (
    SPECIALTY_KIND,
    Appointment,
    AppointmentMode,
    AppointmentSlot,
    AppointmentStatus,
    Assignment,
    AssignmentStatus,
    Expert,
    ExpertKind,
)
from anshim.reports import summary

#: Code prefix of generated cases: a re-run replaces them, the hand-made demo cases stay.
PREFIX = "V-"
BATCH = 2000

PLATFORMS = [  # name, kind, jurisdiction, channel, median hours to removal
    ("데모 소셜 A", PlatformKind.SOCIAL, Jurisdiction.OVERSEAS, TakedownChannel.PARTNER_API, 20),
    ("데모 소셜 B", PlatformKind.SOCIAL, Jurisdiction.DOMESTIC, TakedownChannel.EMAIL, 30),
    ("데모 웹하드 1", PlatformKind.WEBHARD, Jurisdiction.DOMESTIC, TakedownChannel.EMAIL, 12),
    ("데모 웹하드 2", PlatformKind.WEBHARD, Jurisdiction.DOMESTIC, TakedownChannel.WEB_FORM, 40),
    ("Demo Forum X", PlatformKind.FORUM, Jurisdiction.OVERSEAS, TakedownChannel.EMAIL, 90),
    ("Demo Forum Y", PlatformKind.FORUM, Jurisdiction.OVERSEAS, TakedownChannel.WEB_FORM, 200),
    ("Demo Adult 1", PlatformKind.ADULT, Jurisdiction.OVERSEAS, TakedownChannel.EMAIL, 60),
    ("Demo Adult 2", PlatformKind.ADULT, Jurisdiction.OVERSEAS, TakedownChannel.EMAIL, 300),
    ("Demo Search", PlatformKind.SEARCH, Jurisdiction.OVERSEAS, TakedownChannel.PARTNER_API, 24),
    ("데모 메신저", PlatformKind.MESSENGER, Jurisdiction.DOMESTIC, TakedownChannel.EMAIL, 48),
    ("Demo Messenger", PlatformKind.MESSENGER, Jurisdiction.OVERSEAS, TakedownChannel.EMAIL, 120),
    ("Demo Other", PlatformKind.OTHER, Jurisdiction.OVERSEAS, TakedownChannel.WEB_FORM, 500),
]
HARMS = [(HarmType.DISTRIBUTION, 30), (HarmType.SEXTORTION, 20), (HarmType.GROOMING, 15),
         (HarmType.SYNTHETIC, 12), (HarmType.UNSOLICITED, 10), (HarmType.SOLICITATION, 6),
         (HarmType.HIDDEN_CAMERA, 4), (HarmType.OTHER, 3)]
AGES = [(AgeGroup.UNDER_14, 25), (AgeGroup.AGE_14_17, 55), (AgeGroup.ADULT, 12),
        (AgeGroup.UNKNOWN, 8)]
# roughly the national center's published mix (mostly girls; Seoul and Gyeonggi largest;
# the offender mostly unknown or met online; a quarter of deleted items with personal data)
SEXES = [(Sex.FEMALE, 72), (Sex.MALE, 21), (Sex.OTHER, 2), (Sex.UNKNOWN, 5)]
REGIONS = [(Region.SEOUL, 19), (Region.GYEONGGI, 26), (Region.INCHEON, 6), (Region.BUSAN, 6),
           (Region.DAEGU, 4), (Region.GWANGJU, 3), (Region.DAEJEON, 3), (Region.ULSAN, 2),
           (Region.SEJONG, 1), (Region.GANGWON, 3), (Region.CHUNGBUK, 3), (Region.CHUNGNAM, 4),
           (Region.JEONBUK, 3), (Region.JEONNAM, 3), (Region.GYEONGBUK, 4),
           (Region.GYEONGNAM, 5), (Region.JEJU, 1), (Region.ABROAD, 1), (Region.UNKNOWN, 3)]
RELATIONSHIPS = [(OffenderRelationship.UNKNOWN, 38), (OffenderRelationship.ONLINE, 27),
                 (OffenderRelationship.STRANGER, 12), (OffenderRelationship.SOCIAL, 13),
                 (OffenderRelationship.INTIMATE, 8), (OffenderRelationship.FAMILY, 2)]
CO_LEAK_SHARE = 0.26
#: the share of notices unanswered for over a week that were escalated to the regulator
ESCALATED_SHARE = 0.4
#: reviewer exposure: the share of reviewed sightings a specialist unblurred, the median
#: seconds a picture stayed on screen (log-normal: most a glance, a long tail of minutes) and
#: the share of viewings whose page sent no report (closed first: the default counts)
UNBLUR_SHARE = 0.35
VIEW_MEDIAN_SECONDS = 25.0
UNREPORTED_SHARE = 0.05
#: the generated experts (the center's 100 external experts: lawyers and therapists), whose
#: accounts cannot sign in (no password); a re-run reuses them
EXPERT_PREFIX = "demo-expert-"
EXPERTS = 100
#: the share of cases with expert support, and the sessions of one assignment (weekly)
EXPERT_SHARE = 0.25
SESSIONS = (1, 6)


def _experts() -> list[Expert]:
    """The generated expert pool, created once: half legal, half therapy, each with the
    specialties of its kind."""
    from django.contrib.auth.hashers import make_password

    from anshim.security.models import User

    existing = list(Expert.objects.filter(user__username__startswith=EXPERT_PREFIX)
                    .order_by("user__username"))
    if len(existing) >= EXPERTS:
        return existing
    have = {e.user.username for e in existing}
    users = []
    for i in range(EXPERTS):
        name = f"{EXPERT_PREFIX}{i:03d}"
        if name not in have:
            kind = "변호사" if i % 2 == 0 else "치료사"
            users.append(User(username=name, role="expert", password=make_password(None),
                              display_name=f"데모 {kind} {i:03d}"))
    experts = []
    for user in User.objects.bulk_create(users):
        i = int(user.username[len(EXPERT_PREFIX):])
        kind = ExpertKind.LEGAL if i % 2 == 0 else ExpertKind.THERAPY
        experts.append(Expert(
            user=user, kind=kind, organization="데모 전문가단",
            specialties=[s for s, k in SPECIALTY_KIND.items() if k == kind],
            languages=["ko", "en"] if i % 5 == 0 else ["ko"],
            regions=[REGIONS[i % len(REGIONS)][0]]))
    Expert.objects.bulk_create(experts)
    return list(Expert.objects.filter(user__username__startswith=EXPERT_PREFIX)
                .order_by("user__username"))


def _expert_support(rng: random.Random, now: dt.datetime, cases: Sequence[Case],
                    experts: Sequence[Expert], booked: set[tuple[int, dt.datetime]]) -> None:
    """Assignments for a share of the cases (one or two needs, an expert of the need's kind),
    active while the case is open, and weekly sessions from a few days after intake: past
    ones done, cancelled or missed, upcoming ones scheduled with their calendar slots
    (`booked`: the experts' occupied slots so far, so no generated session double-books)."""
    from anshim.experts.services import slot_range

    by_kind: dict[str, list[Expert]] = {}
    for e in experts:
        by_kind.setdefault(e.kind, []).append(e)
    assignments: list[Assignment] = []
    for case in cases:
        if rng.random() >= EXPERT_SHARE:
            continue
        for specialty in rng.sample(list(SPECIALTY_KIND), rng.choice([1, 1, 1, 2])):
            active = case.status != CaseStatus.CLOSED
            assignments.append(Assignment(
                case=case, expert=rng.choice(by_kind[SPECIALTY_KIND[specialty]]),
                specialty=specialty,
                status=AssignmentStatus.ACTIVE if active else AssignmentStatus.ENDED,
                ended_at=None if active else min(case.closed_at or now, now)))
    assignments = Assignment.objects.bulk_create(assignments)
    appointments: list[Appointment] = []
    for a in assignments:
        first = a.case.created_at + dt.timedelta(days=rng.randint(2, 10))
        end = a.ended_at or now + dt.timedelta(days=21)
        for k in range(rng.randint(*SESSIONS)):
            day = timezone.localtime(first + dt.timedelta(weeks=k))
            starts = day.replace(hour=rng.randint(9, 17), minute=rng.choice([0, 30]),
                                 second=0, microsecond=0)
            if starts >= end:
                break
            # whole slots, as the booking service requires of every appointment
            ends = starts + dt.timedelta(minutes=rng.choice([45, 60]))
            slots = slot_range(starts, ends)
            if starts > now:
                if any((a.expert_id, s) in booked for s in slots):
                    continue  # that hour is taken: the session is left out
                booked.update((a.expert_id, s) for s in slots)
                status: str = AppointmentStatus.SCHEDULED
            else:
                status = _pick(rng, [(AppointmentStatus.DONE, 82),
                                     (AppointmentStatus.CANCELLED, 10),
                                     (AppointmentStatus.NO_SHOW, 8)])
            mode = _pick(rng, [(AppointmentMode.IN_PERSON, 50), (AppointmentMode.VIDEO, 30),
                               (AppointmentMode.PHONE, 20)])
            appointments.append(Appointment(
                assignment=a, expert_id=a.expert_id, starts_at=starts, ends_at=ends,
                mode=mode, status=status,
                location="데모 상담실" if mode == AppointmentMode.IN_PERSON else ""))
    appointments = Appointment.objects.bulk_create(appointments)
    AppointmentSlot.objects.bulk_create([
        AppointmentSlot(expert_id=ap.expert_id, appointment=ap, slot_start=slot)
        for ap in appointments if ap.status == AppointmentStatus.SCHEDULED
        for slot in slot_range(ap.starts_at, ap.ends_at)])


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _w in weighted], [w for _v, w in weighted])[0]


def _platforms() -> list[tuple[Platform, float]]:
    out = []
    for name, kind, juris, channel, median in PLATFORMS:
        platform, _new = Platform.objects.get_or_create(
            name=name, defaults={"domains": f"{abs(hash(name)) % 10**6}.demo.invalid",
                                 "kind": kind, "jurisdiction": juris, "channel": channel,
                                 "contact_email": "takedown@demo.invalid"})
        out.append((platform, float(median)))
    return out


def generate(volume: int, seed: int = 14) -> int:
    """Replace the generated cases with `volume` new ones; returns how many were written."""
    rng = random.Random(seed)
    now = timezone.now()
    platforms = _platforms()
    reviewers = _reviewers()
    # its own streams: the viewings and the experts' work leave every other generated figure
    # as it was
    view_rng = random.Random(seed + 1)
    expert_rng = random.Random(seed + 2)
    experts = _experts()
    booked: set[tuple[int, dt.datetime]] = set()
    # bulk writes: the summary's per-row invalidation is off and every closed month is
    # rebuilt once at the end (in the same transaction: no reader sees a stale month)
    with transaction.atomic(), summary.suspended():
        generated = Case.objects.filter(code__startswith=PREFIX)
        people = list(generated.values_list("person_id", flat=True))
        generated.delete()
        # only the generated victims, and only those no other case points to
        Person.objects.filter(pk__in=people, cases__isnull=True).delete()
        for start in range(0, volume, BATCH):
            cases = _batch(rng, now, platforms, start, min(volume, start + BATCH), reviewers,
                           view_rng)
            _expert_support(expert_rng, now, cases, experts, booked)
        summary.rebuild_all()
    return volume


def _reviewers() -> list[Any]:
    """Who unblurs the generated sightings: the erasure specialists (the demo's own one at
    least)."""
    from anshim.cases import demo as cases_demo
    from anshim.security.models import User

    reviewers = list(User.objects.filter(role="erasure", is_active=True).order_by("pk"))
    if not reviewers:
        name = dict((s[0], s[2]) for s in cases_demo.STAFF)["erasure"]
        reviewers = [cases_demo.ensure_user("erasure", "erasure", name)]
    return reviewers


def _viewings(rng: random.Random, now: dt.datetime, sightings: list[Sighting],
              reviewers: list[Any]) -> None:
    """Unblurred views of reviewed sightings with long-tailed viewing times (the reviewer
    exposure table); `at` is kept as generated (auto_now_add is off for this insert)."""
    from anshim.erasure.exposure import MAX_VIEWING_SECONDS

    records = []
    for s in sightings:
        if s.status == SightingStatus.NEW or rng.random() >= UNBLUR_SHARE:
            continue
        at = s.first_seen + dt.timedelta(hours=rng.random() * 48)
        if at >= now:
            continue
        seconds = min(MAX_VIEWING_SECONDS,
                      round(rng.lognormvariate(0, 1.1) * VIEW_MEDIAN_SECONDS))
        records.append(UnblurRecord(
            sighting=s, actor=rng.choice(reviewers), at=at,
            seconds_viewed=None if rng.random() < UNREPORTED_SHARE else seconds))
    field = UnblurRecord._meta.get_field("at")
    saved = field.auto_now_add  # type: ignore[union-attr]
    field.auto_now_add = False  # type: ignore[union-attr]
    try:
        UnblurRecord.objects.bulk_create(records)
    finally:
        field.auto_now_add = saved  # type: ignore[union-attr]


def _insert_with_dates(cases: list[Case]) -> list[Case]:
    """bulk_create keeping the generated intake dates: `created_at` is auto_now_add (it would
    stamp "now" on every row); switched off for this insert only, instead of an UPDATE of
    every row afterwards (which took most of the generator's time at 100,000 cases)."""
    created = Case._meta.get_field("created_at")
    saved = created.auto_now_add  # type: ignore[union-attr]
    created.auto_now_add = False  # type: ignore[union-attr]
    try:
        return Case.objects.bulk_create(cases)
    finally:
        created.auto_now_add = saved  # type: ignore[union-attr]


def _batch(rng: random.Random, now: dt.datetime, platforms: list[tuple[Platform, float]],
           start: int, stop: int, reviewers: Sequence[Any] = (),
           view_rng: random.Random | None = None) -> list[Case]:
    n = stop - start
    persons = Person.objects.bulk_create(
        [Person(age_group=_pick(rng, AGES), sex=_pick(rng, SEXES), region=_pick(rng, REGIONS))
         for _ in range(n)])
    cases = []
    opened_at: list[dt.datetime] = []
    for i, person in enumerate(persons):
        opened = now - dt.timedelta(days=rng.random() * 730)
        closed = rng.random() < (0.85 if (now - opened).days > 90 else 0.3)
        cases.append(Case(
            code=f"{PREFIX}{start + i:07d}", person=person,
            status=CaseStatus.CLOSED if closed else rng.choice(
                [CaseStatus.NEW, CaseStatus.TRIAGED, CaseStatus.IN_SUPPORT, CaseStatus.ERASURE,
                 CaseStatus.ON_HOLD]),
            risk_level=rng.choice([RiskLevel.URGENT, RiskLevel.HIGH, RiskLevel.MEDIUM,
                                   RiskLevel.LOW]),
            channel=rng.choice([c for c, _l in Channel.choices]),
            offender_relationship=_pick(rng, RELATIONSHIPS),
            response_due=opened + dt.timedelta(hours=rng.choice([4, 24, 72])),
            closed_at=opened + dt.timedelta(days=rng.randint(7, 90)) if closed else None,
        ))
        opened_at.append(opened)
    for case, opened in zip(cases, opened_at, strict=True):
        case.created_at = opened
    cases = _insert_with_dates(cases)
    harms: list[CaseHarm] = []
    contacts: list[Contact] = []
    referrals: list[Referral] = []
    sightings: list[Sighting] = []
    requests: list[TakedownRequest] = []
    for case in cases:
        for harm in {_pick(rng, HARMS) for _ in range(rng.choice([1, 1, 1, 2, 3]))}:
            harms.append(CaseHarm(case=case, harm_type=harm))
        for _ in range(rng.randint(1, 4)):
            contacts.append(Contact(
                case=case, channel=case.channel, duration_minutes=rng.randint(5, 60),
                started_at=case.created_at + dt.timedelta(days=rng.random() * 30)))
        if rng.random() < 0.3:
            referrals.append(Referral(case=case, target=rng.choice(ReferralTarget.values),
                                      organization="데모 기관",
                                      status=rng.choice(ReferralStatus.values)))
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            platform, median = rng.choice(platforms)
            seen = case.created_at + dt.timedelta(hours=rng.random() * 72)
            # log-normal removal times: most within days, a long tail of weeks
            hours = rng.lognormvariate(0, 1.2) * median
            removed_at = seen + dt.timedelta(hours=hours)
            removed = removed_at < now and rng.random() < 0.9
            sightings.append(Sighting(
                page_url=f"https://{platform.pk}.demo.invalid/p/{case.code}/{len(sightings)}",
                media_url=f"https://{platform.pk}.demo.invalid/m/{case.code}/{len(sightings)}",
                platform=platform, entry_id=0, bank_name="demo", case=case, match_kind="pdq",
                distance=rng.randint(0, 30), is_reupload=rng.random() < 0.15,
                leaks_personal_info=rng.random() < CO_LEAK_SHARE,
                status=SightingStatus.REMOVED if removed else rng.choice(
                    [SightingStatus.NEW, SightingStatus.CONFIRMED, SightingStatus.REJECTED]),
                first_seen=seen, last_seen=seen, removed_at=removed_at if removed else None))
            sent = seen + dt.timedelta(hours=rng.random() * 12)
            # a notice a platform sat on for over a week: often escalated to the regulator
            escalated = hours > 168 and rng.random() < ESCALATED_SHARE
            requests.append(TakedownRequest(
                case=case, platform=platform, subject="데모 삭제 요청", body="데모",
                state=TakedownState.REMOVED if removed else (
                    TakedownState.ESCALATED if escalated else TakedownState.SENT),
                escalation=EscalationTarget.REGULATOR if escalated else "",
                sent_at=sent, last_sent_at=sent, send_count=1,
                closed_at=removed_at if removed else None))
    CaseHarm.objects.bulk_create(harms)
    Contact.objects.bulk_create(contacts)
    Referral.objects.bulk_create(referrals)
    sightings = Sighting.objects.bulk_create(sightings)
    requests = TakedownRequest.objects.bulk_create(requests)
    TakedownItem.objects.bulk_create([TakedownItem(request=r, sighting=s)
                                      for r, s in zip(requests, sightings, strict=True)])
    if reviewers:
        _viewings(view_rng or rng, now, sightings, list(reviewers))
    return cases
