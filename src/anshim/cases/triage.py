"""Triage: the risk level of a case from explicit, documented rules.

The rules are deliberately plain so a counselor can see *why* a case is urgent. Each rule that
fires adds a reason; the highest level among the fired rules wins. A supervisor may override the
level with a recorded reason (`services.override_triage`).

Response deadlines (from the moment of the assessment):

========  ==========  =====================================================================
Level     Respond in  Rules
========  ==========  =====================================================================
URGENT    2 hours     threat of spreading or sextortion under way; content already spreading;
                      risk of self-harm; an offline meeting with the offender is planned
HIGH      24 hours    victim under 14; content exists (not yet spreading); offender known
                      personally (school, family, partner)
MEDIUM    72 hours    repeated contact by the offender; intimate images involved (harm type)
LOW       7 days      none of the above
========  ==========  =====================================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from anshim.cases.models import AgeGroup, HarmType, RiskLevel

RESPONSE_TIME: dict[str, dt.timedelta] = {
    RiskLevel.URGENT: dt.timedelta(hours=2),
    RiskLevel.HIGH: dt.timedelta(hours=24),
    RiskLevel.MEDIUM: dt.timedelta(hours=72),
    RiskLevel.LOW: dt.timedelta(days=7),
}

_RANK = {RiskLevel.URGENT: 4, RiskLevel.HIGH: 3, RiskLevel.MEDIUM: 2, RiskLevel.LOW: 1,
         RiskLevel.UNASSESSED: 0}

# Harm types where intimate images of the victim exist somewhere.
IMAGE_HARMS = frozenset(
    {HarmType.DISTRIBUTION, HarmType.SEXTORTION, HarmType.SYNTHETIC, HarmType.HIDDEN_CAMERA}
)


def rank(level: str) -> int:
    """Sort key: higher is more urgent."""
    return _RANK.get(RiskLevel(level) if level in RiskLevel.values else RiskLevel.UNASSESSED, 0)


@dataclass(frozen=True)
class TriageFactors:
    """What the counselor learned during the call. All booleans default to "no"."""

    threat_to_spread: bool = False  # threat of spreading, or sextortion under way
    content_spreading: bool = False  # content is already online / being shared
    self_harm_risk: bool = False
    offline_meeting_planned: bool = False
    content_exists: bool = False  # the offender holds images, not (yet) spreading
    offender_known: bool = False  # knows the victim personally (school, family, partner)
    repeated_contact: bool = False
    age_group: str = AgeGroup.UNKNOWN
    harm_types: tuple[str, ...] = ()

    @classmethod
    def from_flags(cls, flags: Iterable[str]) -> TriageFactors:
        """Factors with the named boolean flags set (unknown names are ignored)."""
        names = set(cls.flag_names())
        return cls(**{f: True for f in flags if f in names})  # type: ignore[arg-type]

    @classmethod
    def flag_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.type in ("bool", bool)]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["harm_types"] = list(self.harm_types)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TriageFactors:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "harm_types" in kwargs:
            kwargs["harm_types"] = tuple(kwargs["harm_types"])
        return cls(**kwargs)


# Labels for the intake form's checkboxes (the factor flags).
FACTOR_LABELS: dict[str, Promise] = {
    "threat_to_spread": _("Threat of spreading images, or sextortion under way"),
    "content_spreading": _("Content is already spreading"),
    "self_harm_risk": _("Risk of self-harm"),
    "offline_meeting_planned": _("An offline meeting with the offender is planned"),
    "content_exists": _("Intimate content exists (not spreading yet)"),
    "offender_known": _("Offender knows the victim personally"),
    "repeated_contact": _("Repeated contact by the offender"),
}

# Reason code → message. Codes are stored on the assessment; messages are translated on display.
REASONS: dict[str, Promise] = {
    "threat_to_spread": _("Threat of spreading or sextortion under way"),
    "content_spreading": _("Content is already spreading"),
    "self_harm_risk": _("Risk of self-harm"),
    "offline_meeting_planned": _("An offline meeting is planned"),
    "under_14": _("Victim is under 14"),
    "content_exists": _("Intimate content exists and could be spread"),
    "offender_known": _("Offender knows the victim personally"),
    "repeated_contact": _("Repeated contact by the offender"),
    "image_harm": _("Intimate images are involved"),
    "no_risk_factor": _("No risk factor reported"),
}

_URGENT_FLAGS = ("threat_to_spread", "content_spreading", "self_harm_risk",
                 "offline_meeting_planned")
_HIGH_FLAGS = ("content_exists", "offender_known")
_MEDIUM_FLAGS = ("repeated_contact",)


@dataclass(frozen=True)
class Reason:
    code: str
    level: str

    @property
    def message(self) -> str:
        return str(REASONS[self.code])


@dataclass(frozen=True)
class TriageResult:
    level: str
    reasons: tuple[Reason, ...]
    deadline: dt.datetime

    @property
    def reason_codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    @property
    def messages(self) -> list[str]:
        return [r.message for r in self.reasons]


def assess(factors: TriageFactors, now: dt.datetime | None = None) -> TriageResult:
    """Apply the rules; pure apart from reading the clock when `now` is not given."""
    now = now or timezone.now()
    reasons: list[Reason] = []
    for flag in _URGENT_FLAGS:
        if getattr(factors, flag):
            reasons.append(Reason(flag, RiskLevel.URGENT))
    if factors.age_group == AgeGroup.UNDER_14:
        reasons.append(Reason("under_14", RiskLevel.HIGH))
    for flag in _HIGH_FLAGS:
        if getattr(factors, flag):
            reasons.append(Reason(flag, RiskLevel.HIGH))
    for flag in _MEDIUM_FLAGS:
        if getattr(factors, flag):
            reasons.append(Reason(flag, RiskLevel.MEDIUM))
    if IMAGE_HARMS.intersection(factors.harm_types):
        reasons.append(Reason("image_harm", RiskLevel.MEDIUM))
    if not reasons:
        reasons.append(Reason("no_risk_factor", RiskLevel.LOW))
    level = max((r.level for r in reasons), key=rank)
    return TriageResult(level=level, reasons=tuple(reasons), deadline=now + RESPONSE_TIME[level])


def reason_messages(codes: list[str]) -> list[str]:
    """Translate stored reason codes (unknown codes shown as they are)."""
    return [str(REASONS[c]) if c in REASONS else c for c in codes]
