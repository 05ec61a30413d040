"""Lookup: which entries of the partner's shared banks match each submitted hash.

PDQ goes through the process-wide bank matcher's public `match_pdq_hashes`
(anshim.erasure.matcher): it applies each bank's own threshold and the allow-lists, and
resolves every hit through the database before reporting it, so a withdrawn entry or a
disabled bank never comes back, from any process, however recently its index was updated.
MD5 and SHA-256 are exact matches on the fingerprint table's (kind, value) index. A vPDQ
signal (threatexchange's serialisation: a JSON list of "pdq,quality,timestamp") goes through the
same matcher's video path with Meta's vPDQ rules. Answers carry entry ids, bank names and
distances (vPDQ: match percentages) only.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass

from django.db import DatabaseError

from anshim.erasure.models import Bank, BankPurpose, Fingerprint, FingerprintKind
from anshim.exchange.models import Partner
from anshim.exchange.tokens import CACHE_SECONDS
from anshim.matching.errors import MalformedHashError, MatchingError


class MatcherUnavailable(RuntimeError):
    """The PDQ matcher cannot answer right now (not built, or failed to load)."""


@dataclass(frozen=True, slots=True)
class Match:
    entry_id: int
    bank: str
    distance: int
    query_percent: float | None = None
    compared_percent: float | None = None


class BadSignal(ValueError):
    """A vPDQ signal that is not threatexchange's serialisation; says which frame."""


# partner pk -> ({bank pk: bank name} of its shared, enabled, non-allow-list banks, deadline).
# Dropped on every bank change and share change in this process (signals.py); other processes
# see a share removed within CACHE_SECONDS. A bank disabled elsewhere never matches meanwhile:
# both searches below only report rows of enabled banks.
_shared: dict[int, tuple[dict[int, str], float]] = {}


def forget_shared_banks() -> None:
    _shared.clear()


def shared_banks(partner: Partner) -> dict[int, str]:
    """{bank pk: name} of the banks `partner` may look up, cached for CACHE_SECONDS."""
    cached = _shared.get(partner.pk)
    if cached is not None and time.monotonic() < cached[1]:
        return cached[0]
    names = dict(
        Bank.objects.filter(shares__partner=partner, enabled=True)
        .exclude(purpose=BankPurpose.ALLOW_LIST).values_list("pk", "name")
    )
    _shared[partner.pk] = (names, time.monotonic() + CACHE_SECONDS)
    return names


def _exact_matches(bank_ids: list[int], values: list[str], kind: str = FingerprintKind.MD5,
                   ) -> dict[str, list[tuple[int, int]]]:
    """value -> [(entry_id, bank_id)]; a value on any enabled allow-list matches nothing."""
    wanted = set(values)
    allowed = set(
        Fingerprint.objects.filter(
            kind=kind, value__in=wanted, bank__enabled=True,
            bank__purpose=BankPurpose.ALLOW_LIST,
        ).values_list("value", flat=True)
    )
    found: dict[str, list[tuple[int, int]]] = defaultdict(list)
    rows = (
        Fingerprint.objects.filter(
            kind=kind, value__in=wanted - allowed, bank_id__in=bank_ids,
            bank__enabled=True,
        ).values_list("value", "entry_id", "bank_id").distinct()
    )
    for value, entry_id, bank_id in rows:
        found[value].append((entry_id, bank_id))
    return found


def _pdq_matches(
    bank_ids: list[int], values: list[str], max_distance: int | None
) -> list[list[tuple[int, str, int]]]:
    """Per query: (entry_id, bank name, distance), best distance per entry, within the bank's
    current threshold (and `max_distance`). Queries near an allow-listed hash match nothing."""
    from anshim.erasure.matcher import get_matcher

    try:
        found = get_matcher().match_pdq_hashes(
            values, bank_ids=set(bank_ids), max_distance=max_distance)
    except MalformedHashError:  # the schema admits only well-formed hashes: a bug if reached
        raise
    except (DatabaseError, MatchingError) as exc:  # pragma: no cover - depends on the engine
        raise MatcherUnavailable(str(exc)) from exc
    return [[(m.entry_id, m.bank, m.distance) for m in per_query] for per_query in found]


def parse_vpdq(signal: str) -> list[tuple[str, int, float]]:
    """threatexchange's VPDQSignal string -> [(pdq hex, quality, timestamp)]; BadSignal."""
    try:
        frames = json.loads(signal)
    except ValueError as exc:
        raise BadSignal("a vPDQ signal is a JSON list of \"pdq,quality,timestamp\"") from exc
    if not isinstance(frames, list) or not frames:
        raise BadSignal("a vPDQ signal is a non-empty JSON list of \"pdq,quality,timestamp\"")
    out: list[tuple[str, int, float]] = []
    for n, frame in enumerate(frames):
        parts = frame.split(",") if isinstance(frame, str) else []
        try:
            pdq, quality, timestamp = parts
            value, q, ts = pdq.lower(), int(quality), float(timestamp)
            int(value, 16)
        except ValueError:
            raise BadSignal(f"frame {n}: expected \"pdq,quality,timestamp\"") from None
        if len(value) != 64 or not 0 <= q <= 100 or not ts >= 0 or ts == float("inf"):
            raise BadSignal(f"frame {n}: 64 hex digits, quality 0-100, timestamp >= 0")
        out.append((value, q, ts))
    return out


def _vpdq_matches(bank_ids: set[int], signals: list[str]) -> list[list[Match]]:
    """Per signal: the videos of `bank_ids` that match, by the matcher's video rule (the one
    `anshim match` and the crawl use: frames of quality >= 50 within the bank's threshold,
    enough of either side's frames matching), best first."""
    from anshim.erasure.matcher import get_matcher
    from anshim.fingerprint.types import VideoFingerprint, VpdqFrame

    fps = []
    for signal in signals:
        frames = tuple(VpdqFrame(n, q, pdq, ts) for n, (pdq, q, ts) in
                       enumerate(parse_vpdq(signal)))
        fps.append(VideoFingerprint(md5="", sha256="", frames=frames, width=0, height=0,
                                    frame_rate=0.0, duration=0.0, format=""))
    try:
        found = get_matcher().match_fingerprints(fps)
    except (DatabaseError, MatchingError) as exc:  # pragma: no cover - depends on the engine
        raise MatcherUnavailable(str(exc)) from exc
    out: list[list[Match]] = []
    for results in found:
        matches = [
            Match(r.entry_id, r.bank, r.distance, r.query_percent, r.compared_percent)
            for r in results
            if r.bank_id in bank_ids and r.kind == FingerprintKind.VPDQ
        ]
        matches.sort(key=lambda m: (-(m.query_percent or 0.0), m.distance, m.entry_id))
        out.append(matches)
    return out


def lookup(
    partner: Partner, hashes: list[tuple[str, str]], max_distance: int | None = None
) -> list[list[Match]]:
    """One list of matches per (kind, value), in input order, best (smallest distance) first."""
    names = shared_banks(partner)
    bank_ids = list(names)
    out: list[list[Match]] = [[] for _ in hashes]
    if not bank_ids:
        return out

    for exact_kind in (FingerprintKind.MD5, FingerprintKind.SHA256):
        positions = [i for i, (kind, _) in enumerate(hashes) if kind == exact_kind]
        if positions:
            found = _exact_matches(bank_ids, [hashes[i][1] for i in positions], exact_kind)
            for i in positions:
                out[i] = [Match(e, names[b], 0) for e, b in sorted(found.get(hashes[i][1], []))]

    vpdq_positions = [i for i, (kind, _) in enumerate(hashes) if kind == "vpdq"]
    if vpdq_positions:
        per_video = _vpdq_matches(set(bank_ids), [hashes[i][1] for i in vpdq_positions])
        for i, video_matches in zip(vpdq_positions, per_video, strict=True):
            out[i] = video_matches

    pdq_positions = [i for i, (kind, _) in enumerate(hashes) if kind == "pdq"]
    if pdq_positions:
        per_query = _pdq_matches(bank_ids, [hashes[i][1] for i in pdq_positions], max_distance)
        for i, matches in zip(pdq_positions, per_query, strict=True):
            ordered = sorted(matches, key=lambda m: (m[2], m[0]))
            out[i] = [Match(e, b, d) for e, b, d in ordered]
    return out
