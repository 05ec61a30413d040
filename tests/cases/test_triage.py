from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from anshim.cases.models import AgeGroup, HarmType, RiskLevel
from anshim.cases.triage import RESPONSE_TIME, TriageFactors, assess, reason_messages

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)

CASES = [
    # (factors, expected level, expected reason codes)
    (TriageFactors(), RiskLevel.LOW, ["no_risk_factor"]),
    (TriageFactors(threat_to_spread=True), RiskLevel.URGENT, ["threat_to_spread"]),
    (TriageFactors(content_spreading=True), RiskLevel.URGENT, ["content_spreading"]),
    (TriageFactors(self_harm_risk=True), RiskLevel.URGENT, ["self_harm_risk"]),
    (TriageFactors(offline_meeting_planned=True), RiskLevel.URGENT, ["offline_meeting_planned"]),
    (TriageFactors(age_group=AgeGroup.UNDER_14), RiskLevel.HIGH, ["under_14"]),
    (TriageFactors(content_exists=True), RiskLevel.HIGH, ["content_exists"]),
    (TriageFactors(offender_known=True), RiskLevel.HIGH, ["offender_known"]),
    (TriageFactors(repeated_contact=True), RiskLevel.MEDIUM, ["repeated_contact"]),
    (TriageFactors(harm_types=(HarmType.SEXTORTION,)), RiskLevel.MEDIUM, ["image_harm"]),
    (TriageFactors(harm_types=(HarmType.UNSOLICITED,)), RiskLevel.LOW, ["no_risk_factor"]),
    (TriageFactors(age_group=AgeGroup.ADULT, repeated_contact=True), RiskLevel.MEDIUM,
     ["repeated_contact"]),
    (TriageFactors(age_group=AgeGroup.UNDER_14, self_harm_risk=True, repeated_contact=True),
     RiskLevel.URGENT, ["self_harm_risk", "under_14", "repeated_contact"]),
    (TriageFactors(threat_to_spread=True, content_spreading=True,
                   harm_types=(HarmType.DISTRIBUTION,)),
     RiskLevel.URGENT, ["threat_to_spread", "content_spreading", "image_harm"]),
]


@pytest.mark.parametrize(("factors", "level", "reasons"), CASES)
def test_rules(factors: TriageFactors, level: str, reasons: list[str]) -> None:
    result = assess(factors, now=NOW)
    assert result.level == level
    assert result.reason_codes == reasons
    assert result.deadline == NOW + RESPONSE_TIME[level]


def test_deadlines_are_documented_values() -> None:
    assert RESPONSE_TIME[RiskLevel.URGENT] == dt.timedelta(hours=2)
    assert RESPONSE_TIME[RiskLevel.HIGH] == dt.timedelta(hours=24)
    assert RESPONSE_TIME[RiskLevel.MEDIUM] == dt.timedelta(hours=72)
    assert RESPONSE_TIME[RiskLevel.LOW] == dt.timedelta(days=7)


def test_factors_round_trip_json() -> None:
    f = TriageFactors(threat_to_spread=True, age_group=AgeGroup.UNDER_14,
                      harm_types=(HarmType.GROOMING,))
    assert TriageFactors.from_json(f.to_json()) == f
    assert TriageFactors.from_json({"unknown": 1, "self_harm_risk": True}).self_harm_risk


def test_reasons_translated() -> None:
    result = assess(TriageFactors(self_harm_risk=True), now=NOW)
    with translation.override("en"):
        assert result.messages == ["Risk of self-harm"]
    with translation.override("ko"):
        assert result.messages[0] != "Risk of self-harm"
    assert reason_messages(["nope"]) == ["nope"]
