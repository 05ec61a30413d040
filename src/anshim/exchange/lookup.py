"""Lookup: which entries of the partner's shared banks match each submitted hash.

PDQ goes through the process-wide bank matcher (anshim.erasure.matcher), which applies each
bank's own threshold and stays current with the change log; MD5 is an exact match on the
fingerprint table's (kind, value) index. Answers carry entry ids, bank names and distances only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError

from anshim.erasure.models import Bank, BankPurpose, Fingerprint, FingerprintKind
from anshim.exchange.models import Partner
from anshim.matching.errors import MatchingError


class MatcherUnavailable(RuntimeError):
    """The PDQ matcher cannot answer right now (not built, or failed to load)."""


@dataclass(frozen=True, slots=True)
class Match:
    entry_id: int
    bank: str
    distance: int


def _md5_matches(bank_ids: list[int], values: list[str]) -> dict[str, list[tuple[int, int]]]:
    """value -> [(entry_id, bank_id)]; a value on any enabled allow-list matches nothing."""
    wanted = set(values)
    allowed = set(
        Fingerprint.objects.filter(
            kind=FingerprintKind.MD5, value__in=wanted, bank__enabled=True,
            bank__purpose=BankPurpose.ALLOW_LIST,
        ).values_list("value", flat=True)
    )
    found: dict[str, list[tuple[int, int]]] = defaultdict(list)
    rows = (
        Fingerprint.objects.filter(
            kind=FingerprintKind.MD5, value__in=wanted - allowed, bank_id__in=bank_ids,
        ).values_list("value", "entry_id", "bank_id").distinct()
    )
    for value, entry_id, bank_id in rows:
        found[value].append((entry_id, bank_id))
    return found


def _search(states: list[Any], values: list[str], max_distance: int | None,
            ) -> list[dict[int, int]]:
    """Per query: Fingerprint pk -> distance, over the image-PDQ indexes of `states`."""
    hits: list[dict[int, int]] = [{} for _ in values]
    for state in states:
        if not len(state.pdq):
            continue
        threshold = state.threshold if max_distance is None else min(state.threshold, max_distance)
        for per_query, found in zip(hits, state.pdq.search(values, threshold), strict=True):
            for fp_id, distance in found:
                per_query[int(fp_id)] = int(distance)
    return hits


def _pdq_matches(
    bank_ids: list[int], values: list[str], max_distance: int | None
) -> list[list[tuple[int, int, int]]]:
    """Per query: (entry_id, bank_id, distance), best distance per entry, within the bank's
    current threshold (and `max_distance`). Queries near an allow-listed hash match nothing.

    Uses the process-wide bank matcher's per-bank PDQ indexes (its `_banks`, `_lock`,
    `refresh()`): the matcher has no public per-hash, per-bank search yet. Hits are resolved
    through the database like the matcher does, so withdrawn fingerprints never come back.
    """
    from anshim.erasure.matcher import get_matcher

    matcher = get_matcher()
    try:
        with matcher._lock:
            matcher.refresh()
            banks = dict(matcher._banks or {})
            allow = [s for s in banks.values() if s.is_allow_list]
            wanted = [banks[b] for b in bank_ids if b in banks and not banks[b].is_allow_list]
            allow_hits = _search(allow, values, None) if allow else [{} for _ in values]
            hits = _search(wanted, values, max_distance)
    except (DatabaseError, MatchingError) as exc:  # pragma: no cover - depends on the engine
        raise MatcherUnavailable(str(exc)) from exc

    fp_ids = {fp for per_query in (*hits, *allow_hits) for fp in per_query}
    if not fp_ids:
        return [[] for _ in values]
    live = {
        fp_id: (entry_id, bank_id, threshold, purpose)
        for fp_id, entry_id, bank_id, threshold, purpose in Fingerprint.objects.filter(
            pk__in=fp_ids, bank__enabled=True,
        ).values_list("id", "entry_id", "bank_id", "bank__threshold", "bank__purpose")
    }
    out: list[list[tuple[int, int, int]]] = []
    for per_query, allowed in zip(hits, allow_hits, strict=True):
        if any(fp in live and d <= live[fp][2] for fp, d in allowed.items()):
            out.append([])  # a known false positive: never report it
            continue
        best: dict[int, tuple[int, int]] = {}
        for fp_id, distance in per_query.items():
            row = live.get(fp_id)
            if row is None or distance > row[2] or row[1] not in bank_ids:
                continue
            entry_id, bank_id = row[0], row[1]
            if entry_id not in best or distance < best[entry_id][1]:
                best[entry_id] = (bank_id, distance)
        out.append([(e, b, d) for e, (b, d) in best.items()])
    return out


def lookup(
    partner: Partner, hashes: list[tuple[str, str]], max_distance: int | None = None
) -> list[list[Match]]:
    """One list of matches per (kind, value), in input order, best (smallest distance) first."""
    names = dict(
        Bank.objects.filter(shares__partner=partner, enabled=True)
        .exclude(purpose=BankPurpose.ALLOW_LIST).values_list("pk", "name")
    )
    bank_ids = list(names)
    out: list[list[Match]] = [[] for _ in hashes]
    if not bank_ids:
        return out

    md5_positions = [i for i, (kind, _) in enumerate(hashes) if kind == "md5"]
    if md5_positions:
        found = _md5_matches(bank_ids, [hashes[i][1] for i in md5_positions])
        for i in md5_positions:
            out[i] = [Match(e, names[b], 0) for e, b in sorted(found.get(hashes[i][1], []))]

    pdq_positions = [i for i, (kind, _) in enumerate(hashes) if kind == "pdq"]
    if pdq_positions:
        per_query = _pdq_matches(bank_ids, [hashes[i][1] for i in pdq_positions], max_distance)
        for i, matches in zip(pdq_positions, per_query, strict=True):
            ordered = sorted(matches, key=lambda m: (m[2], m[0]))
            out[i] = [Match(e, names[b], d) for e, b, d in ordered]
    return out
