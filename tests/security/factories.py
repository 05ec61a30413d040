"""Case data with distinctive plaintext values, for the encryption tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

# Distinctive values: none of them can appear in a database dump by accident.
PLAIN = {
    "name": "Zyxwvut Qplmokn",
    "phone": "010-9753-1864",
    "email": "zyxwvut.secret@example.org",
    "address": "Sejong-daero 99-quxquux, Jung-gu",
    "guardian_name": "Guardianus Wqxzy",
    "guardian_phone": "010-2468-1357",
    "guardian_email": "guardian.wqxzy@example.org",
    "summary": "Summary-ZEBRAFISH-7731",
    "contact_summary": "ContactLog-NARWHAL-4410",
    "note": "CounselingNote-AXOLOTL-9902",
    "referral_reason": "ReferralReason-PANGOLIN-1177",
    "referral_outcome": "ReferralOutcome-OKAPI-3390",
    "brief": "ExpertBrief-QUOKKA-5521",
    "session": "SessionLog-TAPIR-6634",
    "name_ko": "김비밀테스트",
}
BIRTH_DATE = dt.date(2011, 7, 23)


def make_case_data(counselor: Any, expert_user: Any) -> dict[str, Any]:
    from anshim.cases.models import (
        Case,
        Channel,
        Contact,
        Guardian,
        Note,
        Person,
        Referral,
        ReferralTarget,
    )
    from anshim.experts.models import (
        Appointment,
        Assignment,
        Expert,
        ExpertKind,
        SessionLog,
        Specialty,
    )

    person = Person.objects.create(
        name=PLAIN["name"], birth_date=BIRTH_DATE, phone=PLAIN["phone"], email=PLAIN["email"],
        address=PLAIN["address"],
    )
    Person.objects.create(name=PLAIN["name_ko"])
    Guardian.objects.create(person=person, name=PLAIN["guardian_name"],
                            phone=PLAIN["guardian_phone"], email=PLAIN["guardian_email"])
    case = Case.objects.create(code="AS-DUMP-1", person=person, channel=Channel.PHONE,
                               summary=PLAIN["summary"], lead_counselor=counselor)
    Contact.objects.create(case=case, channel=Channel.PHONE, started_at=timezone.now(),
                           counselor=counselor, summary=PLAIN["contact_summary"])
    Note.objects.create(case=case, author=counselor, body=PLAIN["note"])
    Referral.objects.create(case=case, target=ReferralTarget.SHELTER, organization="Shelter",
                            reason=PLAIN["referral_reason"], outcome=PLAIN["referral_outcome"])
    expert = Expert.objects.create(user=expert_user, kind=ExpertKind.THERAPY)
    assignment = Assignment.objects.create(case=case, expert=expert, specialty=Specialty.TRAUMA,
                                           brief=PLAIN["brief"])
    start = timezone.now()
    appointment = Appointment.objects.create(assignment=assignment, expert=expert,
                                             starts_at=start, ends_at=start + dt.timedelta(hours=1))
    SessionLog.objects.create(appointment=appointment, author=expert_user,
                              summary=PLAIN["session"])
    return {"person": person, "case": case}
