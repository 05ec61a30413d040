"""The bank matcher: one per process, kept current by polling the bank change log.

Per enabled bank it holds two `anshim.matching` PDQ indexes whose ids are `Fingerprint` primary
keys: one for image PDQ hashes (dihedral variants included) and one for vPDQ video frames.
MD5 / SHA-256 are matched by the database's (kind, value) index, which is exact and always
current.

Staying current across processes (web server, task workers): before answering a query batch
the matcher reads `max(seq)` of the change log (one indexed query) and replays what is new.
Besides, every perceptual hit is resolved through the database before it is reported, so a
withdrawn fingerprint (its row deleted) can never be reported again by any process, even one
that has not polled yet; the poll keeps the index tidy and brings in additions.

Allow-list banks suppress matches: a query hash (image PDQ or video frame) that matches an
allow-list entry is dropped before the other banks are searched, and a file whose MD5 or
SHA-256 is on an allow-list yields no matches at all.

Robust re-upload strategies (issue 8, `anshim.fingerprint.robust_strategy`): an entry registered
robustly has extra PDQ rows (variant ``trim`` and crop-grid variants ``crop-…``/``trim-crop-…``).
Every image query hash carries the query strategy that produced it (``original``,
``dihedral-<name>``, ``trim``, ``screenshot``) and each hit is kept only when the (query
strategy, registered variant) pair is allowed: rotated/mirrored queries are never compared with
crop variants, and crop/screenshot pairs need a PDQ quality of at least 50 on both sides. Every
match reports the strategy that found it (``sha256``, ``md5``, ``pdq``, ``dihedral``, ``trim``,
``screenshot``, ``crop``, ``vpdq``) and the registered variant it hit.

Videos (`anshim.fingerprint.robust_video`): a robustly registered video has dense ``original``
frames plus ``trim`` and crop-grid vPDQ rows; a queried video adds its border-trimmed frames
(`robust_video_queries`). Plain frames against ``original`` rows are judged as before (80 % of
either side: ``vpdq``); the robust pairs (``trim``: trimmed frames or ``trim`` rows, ``crop``:
crop-grid rows) need distance < 31 and `ROBUST_VIDEO_QUERY_PERCENT` of the query's frames,
the rule of `robust_video.match_video_strategies`.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max

from anshim.cases.models import Case
from anshim.erasure.changelog import lock_change_log
from anshim.erasure.models import (
    Bank,
    BankChange,
    BankEntry,
    BankPurpose,
    ChangeOp,
    Fingerprint,
    FingerprintKind,
)
from anshim.fingerprint.errors import FingerprintError
from anshim.fingerprint.robust_strategy import (
    RISKY_MIN_QUALITY,
    STRATEGY_THRESHOLDS,
    QueryHash,
    strategy_of,
)
from anshim.fingerprint.types import DIHEDRAL_NAMES, ImageFingerprint, VideoFingerprint
from anshim.matching.pdq_codes import parse_pdq_hex

#: Meta's guidance: PDQ hashes of quality under 50 are unreliable (flat or tiny pictures).
MIN_QUALITY = 50
#: A video matches a banked video when this share of either side's frames match.
VIDEO_MATCH_PERCENT = 80.0
#: A robust video strategy (``trim`` query frames, crop-grid variants) matches when this share
#: of the query's frames match (`robust_video.match_video_strategies`: a trimmed or cropped
#: copy holds only part of the registered video, so the query share decides).
ROBUST_VIDEO_QUERY_PERCENT = 50.0
#: Meta's vPDQ frame rule (distance < 31), the cap for the robust video strategies.
ROBUST_VIDEO_MAX_DISTANCE = 30
#: Replaying more changes than this at once is slower than rebuilding from the database.
REBUILD_AFTER_CHANGES = 200_000
_PAGE = 50_000
#: Fingerprint ids per re-check query (SQLite binds at most 32,766 parameters).
_RECHECK_PAGE = 5_000
_EXACT_KINDS = (FingerprintKind.SHA256, FingerprintKind.MD5)
_PERCEPTUAL_KINDS = (FingerprintKind.PDQ, FingerprintKind.VPDQ)
#: When one entry matches several ways, the most certain kind is reported.
_KIND_RANK = {FingerprintKind.SHA256: 0, FingerprintKind.MD5: 1, FingerprintKind.PDQ: 2,
              FingerprintKind.VPDQ: 3}
#: Among PDQ matches of one entry at the same distance, the simplest strategy is reported.
_STRATEGY_RANK = {"pdq": 0, "dihedral": 1, "trim": 2, "screenshot": 3, "crop": 4}
#: Registered dihedral rows (`hash_values`) are whole pictures, turned.
_DIHEDRAL_VARIANTS = frozenset(DIHEDRAL_NAMES[1:])

Fingerprints = ImageFingerprint | VideoFingerprint


def new_pdq_index(ids: Sequence[int], hashes: Sequence[str], threshold: int) -> Any:
    """A PDQ index from the matching engine (tests may substitute a stand-in)."""
    from anshim.matching.pdq_index import PDQIndex

    return PDQIndex.build(ids, hashes, threshold=threshold, durable=False)


@dataclass(frozen=True, slots=True)
class MatchResult:
    bank: str
    bank_id: int
    entry_id: int
    case_code: str | None
    distance: int
    kind: str
    label: str = ""
    #: vPDQ only: share of the query's / the banked video's frames that matched. For the
    #: robust video strategies (trim, crop) the query share decides; the compared share then
    #: counts the distinct registered rows hit (of any variant) against the plain frames,
    #: capped at 100.
    query_percent: float | None = None
    compared_percent: float | None = None
    #: Which strategy found it (reviewers, metrics): sha256, md5, pdq, dihedral, trim,
    #: screenshot, crop or vpdq; and the registered variant it hit (PDQ only).
    strategy: str = "pdq"
    variant: str = "original"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _EntryMap:
    """entry id -> index ids (Fingerprint pks), compact enough for millions of rows."""

    def __init__(self, entry_ids: list[int], fp_ids: list[int]) -> None:
        e = np.asarray(entry_ids, dtype=np.int64)
        f = np.asarray(fp_ids, dtype=np.int64)
        order = np.argsort(e, kind="stable")
        self._entries, self._fps = e[order], f[order]
        self._added: dict[int, list[int]] = {}
        self._gone: set[int] = set()

    def add(self, entry_id: int, fp_id: int) -> None:
        self._added.setdefault(entry_id, []).append(fp_id)

    def pop(self, entry_id: int) -> list[int]:
        out = self._added.pop(entry_id, [])
        if entry_id not in self._gone:
            lo, hi = np.searchsorted(self._entries, [entry_id, entry_id + 1])
            if hi > lo:
                out.extend(self._fps[lo:hi].tolist())
                self._gone.add(entry_id)
        return out


@dataclass
class _BankState:
    bank_id: int
    name: str
    purpose: str
    threshold: int
    built_seq: int
    pdq: Any
    vpdq: Any
    entries: _EntryMap

    @property
    def is_allow_list(self) -> bool:
        return self.purpose == BankPurpose.ALLOW_LIST

    def add_rows(self, rows: Iterable[tuple[int, int, str, str, int | None]]) -> None:
        pdq_ids: list[int] = []
        pdq_hashes: list[str] = []
        vpdq_ids: list[int] = []
        vpdq_hashes: list[str] = []
        for fp_id, entry_id, kind, value, quality in rows:
            if fp_id in self.pdq or fp_id in self.vpdq:
                continue
            self.entries.add(entry_id, fp_id)
            if kind == FingerprintKind.PDQ:
                pdq_ids.append(fp_id)
                pdq_hashes.append(value)
            elif quality is None or quality >= MIN_QUALITY:
                vpdq_ids.append(fp_id)
                vpdq_hashes.append(value)
        if pdq_ids:
            self.pdq.add(pdq_ids, pdq_hashes)
        if vpdq_ids:
            self.vpdq.add(vpdq_ids, vpdq_hashes)

    def remove_entries(self, entry_ids: Iterable[int]) -> None:
        for entry_id in entry_ids:
            ids = self.entries.pop(entry_id)
            in_pdq = [i for i in ids if i in self.pdq]
            in_vpdq = [i for i in ids if i in self.vpdq]
            if in_pdq:
                self.pdq.remove(in_pdq)
            if in_vpdq:
                self.vpdq.remove(in_vpdq)


@dataclass
class _Query:
    """One file being matched: its perceptual query hashes and what they hit."""

    image_hashes: list[str] = field(default_factory=list)
    #: image hash -> (query strategy, PDQ quality or None when unknown: bare hashes).
    image_meta: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    frame_hashes: list[str] = field(default_factory=list)
    #: video frame hash -> query strategy (``original`` when absent; ``trim``: borders cut).
    frame_meta: dict[str, str] = field(default_factory=dict)
    exact: list[tuple[str, str]] = field(default_factory=list)
    allow_listed: bool = False
    is_video: bool = False


def _perceptual_rows(bank_id: int, entry_ids: Sequence[int] | None = None,
                     ) -> list[tuple[Any, ...]]:
    """(id, entry id, kind, value, quality) of a bank's PDQ and vPDQ rows, read in pages by id
    (keyset pagination: no long-lived server-side cursor, constant cost per page)."""
    qs = Fingerprint.objects.filter(bank_id=bank_id, kind__in=_PERCEPTUAL_KINDS)
    if entry_ids is not None:
        qs = qs.filter(entry_id__in=entry_ids)
    rows: list[tuple[Any, ...]] = []
    last = 0
    while True:
        page = list(qs.filter(id__gt=last).order_by("id").values_list(
            "id", "entry_id", "kind", "value", "quality")[:_PAGE])
        rows.extend(page)
        if len(page) < _PAGE:
            return rows
        last = page[-1][0]


def _max_seq() -> int:
    return int(BankChange.objects.aggregate(m=Max("seq"))["m"] or 0)


class BankMatcher:
    """Matches fingerprints against every enabled bank. Thread-safe; one per process is enough
    (see `get_matcher`), but any number may exist: each polls the change log on its own."""

    def __init__(self, *, poll_interval: float | None = None, min_quality: int = MIN_QUALITY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if poll_interval is None:
            poll_interval = float(getattr(settings, "ANSHIM_MATCHER_POLL_SECONDS", 0.0))
        self.poll_interval = poll_interval
        self.min_quality = min_quality
        self._clock = clock
        self._lock = threading.RLock()
        self._banks: dict[int, _BankState] | None = None
        self._seq = 0
        self._last_poll = float("-inf")
        self._force = False

    # --- keeping current ----------------------------------------------------------------------

    def notify(self) -> None:
        """Something changed: poll before the next query even inside the poll interval."""
        self._force = True

    @property
    def seq(self) -> int:
        """The last change-log sequence number this matcher has applied."""
        return self._seq

    def refresh(self, *, force: bool = False) -> None:
        """Build on first use, then replay the change log if it moved."""
        with self._lock:
            now = self._clock()
            if (self._banks is not None and not force and not self._force
                    and now - self._last_poll < self.poll_interval):
                return
            self._force = False
            self._last_poll = now
            if self._banks is None:
                self._build_all()
                return
            latest = _max_seq()
            if latest < self._seq:  # the log went backwards: a restored or reset database
                self._build_all()
            elif latest > self._seq:
                self._replay(latest)

    def _build_bank(self, bank: Bank, seq: int) -> _BankState:
        rows = _perceptual_rows(bank.pk)
        state = _BankState(
            bank_id=bank.pk, name=bank.name, purpose=bank.purpose, threshold=bank.threshold,
            built_seq=seq, pdq=new_pdq_index([], [], bank.threshold),
            vpdq=new_pdq_index([], [], bank.threshold),
            entries=_EntryMap([], []),
        )
        pdq = [(r[0], r[3]) for r in rows if r[2] == FingerprintKind.PDQ]
        vpdq = [(r[0], r[3]) for r in rows if r[2] == FingerprintKind.VPDQ
                and (r[4] is None or r[4] >= MIN_QUALITY)]
        if pdq:
            state.pdq = new_pdq_index([i for i, _ in pdq], [h for _, h in pdq], bank.threshold)
        if vpdq:
            state.vpdq = new_pdq_index([i for i, _ in vpdq], [h for _, h in vpdq],
                                       bank.threshold)
        state.entries = _EntryMap([r[1] for r in rows], [r[0] for r in rows])
        return state

    def _build_all(self) -> None:
        # One consistent snapshot: no writer can commit between reading max(seq) and loading.
        with transaction.atomic():
            lock_change_log(shared=True)
            seq = _max_seq()
            self._banks = {b.pk: self._build_bank(b, seq)
                           for b in Bank.objects.filter(enabled=True)}
        self._seq = seq

    def _reload_bank(self, bank_id: int) -> None:
        assert self._banks is not None
        with transaction.atomic():
            lock_change_log(shared=True)
            seq = _max_seq()
            bank = Bank.objects.filter(pk=bank_id).first()
            current = self._banks.get(bank_id)
            if bank is None or not bank.enabled:
                self._banks.pop(bank_id, None)
            elif current is None:
                self._banks[bank_id] = self._build_bank(bank, seq)
            else:
                # The indexes answer any threshold exactly: no rebuild needed.
                current.name, current.purpose = bank.name, bank.purpose
                current.threshold = bank.threshold

    def _replay(self, latest: int) -> None:
        assert self._banks is not None
        changes = list(
            BankChange.objects.filter(seq__gt=self._seq, seq__lte=latest)
            .order_by("seq").values_list("seq", "bank_id", "entry_id", "op")
        )
        if len(changes) > REBUILD_AFTER_CHANGES:
            self._build_all()
            return
        configs: set[int] = set()
        adds: dict[int, list[int]] = defaultdict(list)
        withdraws: dict[int, list[int]] = defaultdict(list)
        for seq, bank_id, entry_id, op in changes:
            if op == ChangeOp.CONFIG:
                configs.add(bank_id)
                continue
            state = self._banks.get(bank_id)
            if state is None or seq <= state.built_seq or entry_id is None:
                continue
            (adds if op == ChangeOp.ADD else withdraws)[bank_id].append(entry_id)
        for bank_id, entry_ids in withdraws.items():
            self._banks[bank_id].remove_entries(entry_ids)
        for bank_id, entry_ids in adds.items():
            for start in range(0, len(entry_ids), 5000):
                self._banks[bank_id].add_rows(
                    _perceptual_rows(bank_id, entry_ids[start:start + 5000]))
        for bank_id in configs:
            self._reload_bank(bank_id)
        self._seq = latest

    # --- matching ---------------------------------------------------------------------------

    def match_fingerprint(self, fp: Fingerprints) -> list[MatchResult]:
        return self.match_fingerprints([fp])[0]

    def match_fingerprints(
        self, fps: Sequence[Fingerprints],
        extra: Sequence[Sequence[QueryHash]] | None = None,
    ) -> list[list[MatchResult]]:
        """Match each fingerprint against every enabled bank; one result list per input.

        `extra` (one list per input) adds robust query hashes of images (`robust_queries`:
        border trim, screenshot) and of videos (`robust_video_queries`: border-trimmed
        frames), searched with the same rules.
        """
        with self._lock:
            self.refresh()
            assert self._banks is not None
            banks = list(self._banks.values())
            queries = [self._query_of(fp) for fp in fps]
            for q, more in zip(queries, extra or [[] for _ in fps], strict=True):
                for qh in more:
                    if q.is_video:
                        if qh.quality >= self.min_quality and qh.pdq not in q.frame_meta:
                            q.frame_hashes.append(qh.pdq)
                            q.frame_meta[qh.pdq] = qh.strategy
                        continue
                    if qh.quality >= self.min_quality and qh.pdq not in q.image_meta:
                        q.image_hashes.append(qh.pdq)
                        q.image_meta[qh.pdq] = (qh.strategy, qh.quality)
            results: list[list[MatchResult]] = [[] for _ in fps]
            self._match_exact(queries, results)
            allow = [b for b in banks if b.is_allow_list]
            others = [b for b in banks if not b.is_allow_list]
            self._drop_allow_listed_hashes(queries, allow)
            self._match_perceptual(queries, others, results)
        return [_best_per_entry(r) if not q.allow_listed else []
                for q, r in zip(queries, results, strict=True)]

    def match_pdq_hashes(
        self, hashes: Sequence[str], *, bank_ids: Collection[int] | None = None,
        max_distance: int | None = None,
    ) -> list[list[MatchResult]]:
        """Match bare PDQ hashes (no file) against still-image entries: one list per hash.

        Same rules as files: allow-lists suppress, each bank's threshold applies (and
        `max_distance` when given), `bank_ids` restricts the banks searched. The partner
        lookup's path: the hashes stay one code array from parsing to the index searches,
        and only hits cost Python work and the database re-check. Raises
        `MalformedHashError` (a ValueError naming the position) for a malformed hash.
        """
        values = [h.strip().lower() for h in hashes]
        codes = parse_pdq_hex(values)
        hits: list[list[tuple[int, int]]] = [[] for _ in values]  # per query: (fp id, distance)
        with self._lock:
            self.refresh()
            assert self._banks is not None
            banks = list(self._banks.values())
            blocked = self._allow_listed_hashes(values, [b for b in banks if b.is_allow_list])
            for state in banks:
                if state.is_allow_list or not len(state.pdq) or (
                        bank_ids is not None and state.bank_id not in bank_ids):
                    continue
                threshold = (state.threshold if max_distance is None
                             else min(state.threshold, max_distance))
                counts, fp_ids, dists = state.pdq.search_codes(codes, threshold)
                if not fp_ids.size:
                    continue
                query_of = np.repeat(np.arange(len(values)), counts).tolist()
                for qi, fp_id, dist in zip(query_of, fp_ids.tolist(), dists.tolist(),
                                           strict=True):
                    hits[qi].append((fp_id, dist))
        results: list[list[MatchResult]] = [[] for _ in values]
        if not any(hits):
            return results
        live = _live_fingerprints({fp_id for found in hits for fp_id, _ in found})
        for qi, found in enumerate(hits):
            if not found or values[qi] in blocked:
                continue
            per_entry: dict[int, dict[str, Any]] = {}
            for fp_id, dist in found:
                row = live.get(fp_id)
                if row is None or dist > row[3]:
                    continue
                strategy = _image_strategy(None, row[7], row[8], dist, row[3])
                if strategy is not None:
                    _image_hit(per_entry, row, values[qi], dist, strategy)
            results[qi] = _best_per_entry(_image_results(per_entry))
        return results

    def _query_of(self, fp: Fingerprints) -> _Query:
        q = _Query(exact=[(FingerprintKind.MD5, fp.md5), (FingerprintKind.SHA256, fp.sha256)])
        if isinstance(fp, ImageFingerprint):
            if fp.quality >= self.min_quality:
                q.image_meta[fp.pdq] = ("original", fp.quality)
                for name, value in (fp.dihedral or {}).items():
                    q.image_meta.setdefault(value, (f"dihedral-{name}", fp.quality))
                q.image_hashes = list(q.image_meta)
        else:
            q.is_video = True
            q.frame_hashes = list(dict.fromkeys(
                f.pdq for f in fp.frames if f.quality >= self.min_quality))
            q.frame_meta = dict.fromkeys(q.frame_hashes, "original")
        return q

    def _match_exact(self, queries: list[_Query], results: list[list[MatchResult]]) -> None:
        wanted = {pair for q in queries for pair in q.exact}
        if not wanted:
            return
        rows = Fingerprint.objects.filter(
            kind__in=_EXACT_KINDS, value__in={v for _, v in wanted}, bank__enabled=True,
        ).values_list("kind", "value", "entry_id", "bank_id", "bank__name",
                      "bank__purpose", "entry__case__code", "entry__label")
        by_hash: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
        for kind, value, *rest in rows:
            by_hash[(kind, value)].append(tuple(rest))
        for q, out in zip(queries, results, strict=True):
            for pair in q.exact:
                for entry_id, bank_id, bank_name, purpose, case_code, label in by_hash[pair]:
                    if purpose == BankPurpose.ALLOW_LIST:
                        q.allow_listed = True
                    else:
                        out.append(MatchResult(bank_name, bank_id, entry_id, case_code, 0,
                                               pair[0], label, strategy=pair[0]))

    def _drop_allow_listed_hashes(self, queries: list[_Query], allow: list[_BankState]) -> None:
        hashes = list({h for q in queries for h in (*q.image_hashes, *q.frame_hashes)})
        suppressed = self._allow_listed_hashes(hashes, allow)
        if not suppressed:
            return
        for q in queries:
            q.image_hashes = [h for h in q.image_hashes if h not in suppressed]
            q.frame_hashes = [h for h in q.frame_hashes if h not in suppressed]

    def _allow_listed_hashes(self, hashes: list[str], allow: list[_BankState]) -> set[str]:
        """The hashes within an allow-list entry's threshold (image PDQ or video frames)."""
        if not allow or not hashes:
            return set()
        hits: dict[int, list[tuple[str, int, int]]] = defaultdict(list)  # fp id -> (hash, d, bank)
        for state in allow:
            for index in (state.pdq, state.vpdq):
                if len(index):
                    for h, matches in zip(hashes, index.search(hashes, state.threshold),
                                          strict=True):
                        for fp_id, dist in matches:
                            hits[fp_id].append((h, dist, state.bank_id))
        if not hits:
            return set()
        # Only fingerprints that still exist in an enabled bank within its current threshold.
        live = {row[0]: row[1] for row in Fingerprint.objects.filter(
            pk__in=list(hits), bank__enabled=True,
            bank__purpose=BankPurpose.ALLOW_LIST,
        ).values_list("id", "bank__threshold")}
        return {h for fp_id, found in hits.items() if fp_id in live
                for h, dist, _ in found if dist <= live[fp_id]}

    def _match_perceptual(self, queries: list[_Query], banks: list[_BankState],
                          results: list[list[MatchResult]],
                          max_distance: int | None = None) -> None:
        # hits[(query index, kind)] = list of (fp id, distance, query hash)
        hits: dict[tuple[int, str], list[tuple[int, int, str]]] = defaultdict(list)
        image_q = [(i, h) for i, q in enumerate(queries) for h in (*q.image_hashes,
                                                                    *q.frame_hashes)]
        frame_q = [(i, h) for i, q in enumerate(queries) for h in q.frame_hashes]
        for state in banks:
            searches: tuple[tuple[Any, list[tuple[int, str]], str], ...] = (
                (state.pdq, image_q, FingerprintKind.PDQ),
                (state.vpdq, frame_q, FingerprintKind.VPDQ))
            for index, flat, index_kind in searches:
                if not flat or not len(index):
                    continue
                threshold = (state.threshold if max_distance is None
                             else min(state.threshold, max_distance))
                found = index.search([h for _, h in flat], threshold)
                for (qi, h), matches in zip(flat, found, strict=True):
                    hits[(qi, index_kind)].extend((fp_id, dist, h) for fp_id, dist in matches)
        fp_ids = {fp_id for found in hits.values() for fp_id, _, _ in found}
        if not fp_ids:
            return
        # Resolve through the database: withdrawn fingerprints are gone, disabled banks and
        # lowered thresholds take effect at once.
        live = _live_fingerprints(fp_ids)
        video_entries = {live[f][0] for (_, kind), found in hits.items()
                         if kind == FingerprintKind.VPDQ for f, _, _ in found if f in live}
        frames_per_entry = _frames_per_entry(video_entries)
        for (qi, kind), found in hits.items():
            per_entry: dict[int, dict[str, Any]] = {}
            for fp_id, dist, h in found:
                row = live.get(fp_id)
                if row is None or dist > row[3] or (max_distance is not None
                                                    and dist > max_distance):
                    continue
                (entry_id, bank_id, bank_name, _threshold, case_code, label, value, variant,
                 quality) = row
                if kind == FingerprintKind.VPDQ:
                    made_by = queries[qi].frame_meta.get(h, "original")
                    found_by = _video_strategy(made_by, variant, dist)
                    if found_by is None:
                        continue
                    _video_hit(per_entry, entry_id, found_by, made_by, h, value, dist, variant,
                               (bank_name, bank_id, entry_id, case_code, label))
                    continue
                strategy = _image_strategy(queries[qi].image_meta.get(h), variant, quality,
                                           dist, row[3])
                if strategy is not None:
                    _image_hit(per_entry, row, h, dist, strategy)
            if kind == FingerprintKind.PDQ:
                results[qi].extend(_image_results(per_entry))
                continue
            totals = _frames_per_strategy(queries[qi])  # once per query, not per entry
            for entry_id, e in per_entry.items():
                found_video = _video_result(e, totals, frames_per_entry.get(entry_id))
                if found_video is not None:
                    results[qi].append(found_video)


def _live_fingerprints(fp_ids: Collection[int]) -> dict[int, tuple[Any, ...]]:
    """fp id -> (entry id, bank id, bank name, bank threshold, case code, label, value,
    variant, quality) of the fingerprints that still exist in an enabled, non-allow-list bank.

    The re-check behind every perceptual hit (withdrawals and disabled banks take effect at
    once, from any process). Plain SQL: through the ORM the same query cost about 0.5 ms of
    CPU a partner lookup (mostly compiling it), as plain SQL 0.06 ms.
    """
    if not fp_ids:
        return {}
    fp, bank = Fingerprint._meta.db_table, Bank._meta.db_table
    entry, case = BankEntry._meta.db_table, Case._meta.db_table
    ids = list(fp_ids)
    live: dict[int, tuple[Any, ...]] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(ids), _RECHECK_PAGE):
            page = ids[start:start + _RECHECK_PAGE]
            cursor.execute(
                f"SELECT f.id, f.entry_id, f.bank_id, b.name, b.threshold, c.code, e.label, "  # noqa: S608 - table names from the models, values bound
                f"f.value, f.variant, f.quality FROM {fp} f JOIN {bank} b ON b.id = f.bank_id "
                f"JOIN {entry} e ON e.id = f.entry_id LEFT JOIN {case} c ON c.id = e.case_id "
                f"WHERE f.id IN ({', '.join(['%s'] * len(page))}) AND b.enabled = %s "
                f"AND b.purpose <> %s",
                [*page, True, BankPurpose.ALLOW_LIST.value],
            )
            live.update((row[0], tuple(row[1:])) for row in cursor.fetchall())
    return live


def _image_hit(per_entry: dict[int, dict[str, Any]], row: tuple[Any, ...], h: str, dist: int,
               strategy: str) -> None:
    """Record one image PDQ hit (query hash ``h``, a `_live_fingerprints` row) of an entry:
    its best distance, and the simplest strategy at that distance."""
    entry_id, bank_id, bank_name, _threshold, case_code, label, value, variant, _q = row
    e = per_entry.setdefault(entry_id, {
        "row": (bank_name, bank_id, entry_id, case_code, label),
        "best": dist, "query": set(), "compared": set(),
        "strategy": strategy, "variant": variant})
    if (dist, _STRATEGY_RANK.get(strategy, 9)) < (
            e["best"], _STRATEGY_RANK.get(e["strategy"], 9)):
        e["strategy"], e["variant"] = strategy, variant
    e["best"] = min(e["best"], dist)
    e["query"].add(h)
    e["compared"].add(value)


def _image_results(per_entry: dict[int, dict[str, Any]]) -> list[MatchResult]:
    out = []
    for entry_id, e in per_entry.items():
        bank_name, bank_id, _, case_code, label = e["row"]
        out.append(MatchResult(bank_name, bank_id, entry_id, case_code, e["best"],
                               FingerprintKind.PDQ, label, strategy=e["strategy"],
                               variant=e["variant"]))
    return out


def _video_strategy(query_strategy: str, variant: str, distance: int) -> str | None:
    """The strategy behind a video frame hit (`robust_video.match_video_strategies`' pairs):
    whole-picture rows (``original``, ``trim``) answer ``vpdq`` (plain frames) or ``trim``
    (border-trimmed query frames); crop-grid rows answer ``crop``. Robust pairs keep Meta's
    frame rule (distance < 31) whatever the bank's threshold."""
    if variant in ("original", "trim"):
        strategy = "vpdq" if query_strategy == "original" and variant == "original" else "trim"
    elif "crop-" in variant:
        strategy = "crop"
    else:
        return None
    if strategy != "vpdq" and distance > ROBUST_VIDEO_MAX_DISTANCE:
        return None
    return strategy


def _video_hit(per_entry: dict[int, dict[str, Any]], entry_id: int, strategy: str,
               query_strategy: str, h: str, value: str, dist: int, variant: str,
               row: tuple[Any, ...]) -> None:
    """Record one frame hit of a video entry, per strategy (each strategy is judged alone);
    `query_strategy` made the query frame ``h`` (``original`` or ``trim``)."""
    e = per_entry.setdefault(entry_id, {"row": row, "video": {}})
    s = e["video"].setdefault(strategy, {"best": dist, "query": set(), "compared": set(),
                                         "variant": variant, "made_by": set()})
    if dist < s["best"]:
        s["best"], s["variant"] = dist, variant
    s["query"].add(h)
    s["made_by"].add(query_strategy)
    s["compared"].add(value)


def _frames_per_strategy(query: _Query) -> dict[str, int]:
    """How many of the query's frames each query strategy made (``original``, ``trim``)."""
    totals: dict[str, int] = defaultdict(int)
    for h in query.frame_hashes:
        totals[query.frame_meta.get(h, "original")] += 1
    return totals


def _video_result(e: dict[str, Any], totals: dict[str, int], registered_frames: int | None,
                  ) -> MatchResult | None:
    """The match of a video entry, if any: plain vPDQ when either side's share reaches
    `VIDEO_MATCH_PERCENT`; else the robust strategy whose query share is highest and reaches
    `ROBUST_VIDEO_QUERY_PERCENT` (the query's frames of that strategy: plain or trimmed;
    `totals` from `_frames_per_strategy`)."""
    bank_name, bank_id, entry_id, case_code, label = e["row"]
    c_total = registered_frames or 1
    best: MatchResult | None = None
    for strategy, s in e["video"].items():
        q_total = sum(totals[x] for x in s["made_by"]) or 1
        q_pct = round(100.0 * len(s["query"]) / q_total, 1)
        c_pct = round(100.0 * min(len(s["compared"]), c_total) / c_total, 1)
        if strategy == "vpdq":
            ok = max(q_pct, c_pct) >= VIDEO_MATCH_PERCENT
        else:
            ok = q_pct >= ROBUST_VIDEO_QUERY_PERCENT
        if not ok:
            continue
        found = MatchResult(bank_name, bank_id, entry_id, case_code, s["best"],
                            FingerprintKind.VPDQ, label, q_pct, c_pct, strategy=strategy,
                            variant=s["variant"])
        if strategy == "vpdq":
            return found
        if best is None or (q_pct, -s["best"]) > (best.query_percent or 0.0, -best.distance):
            best = found
    return best


def robust_video_queries(data: bytes) -> list[QueryHash]:
    """The robust query frames of a video file (its uniform borders trimmed: strategy
    ``trim``), decoded in memory; the plain frames come from the fingerprint engine. Anything
    without borders, or not decodable, gives none."""
    from anshim.fingerprint.robust_video import video_query_frames

    try:
        trimmed = video_query_frames(data).get("trim", [])
    except (FingerprintError, ValueError):
        return []
    return [QueryHash(f.pdq, f.quality, "trim") for f in trimmed]


def _image_strategy(meta: tuple[str, int | None] | None, variant: str, quality: int | None,
                    distance: int, bank_threshold: int) -> str | None:
    """The strategy behind an image hit (None: a pair the rules do not allow).

    The rules of `robust_strategy.match_with_strategies`; the plain pairs (pdq, dihedral) keep
    the bank's own threshold, the robust ones are capped by `STRATEGY_THRESHOLDS` too.
    """
    query_strategy, query_quality = meta or ("original", None)
    if variant in _DIHEDRAL_VARIANTS:
        # A registered turned copy is a whole picture: same rules as `original`.
        plain = strategy_of(query_strategy, "original")
        strategy = "dihedral" if plain == "pdq" else plain
    else:
        strategy = strategy_of(query_strategy, variant)
    if strategy is None:
        return None
    if strategy not in ("pdq", "dihedral") and distance > min(bank_threshold,
                                                              STRATEGY_THRESHOLDS[strategy]):
        return None
    if strategy in ("crop", "screenshot"):
        qualities = [x for x in (query_quality, quality) if x is not None]
        if not qualities or min(qualities) < RISKY_MIN_QUALITY:
            return None
    return strategy


def robust_queries(data: bytes) -> list[QueryHash]:
    """The robust query hashes of an image file (its 7 other orientations, border trim,
    screenshot), decoded in memory. The plain hash comes from the fingerprint engine; anything
    that is not a decodable still image gives none.
    """
    from anshim.fingerprint.robust_strategy import query_fingerprints

    try:
        return [q for q in query_fingerprints(data) if q.strategy != "original"]
    except (FingerprintError, ValueError):
        return []


def _frames_per_entry(entry_ids: set[int]) -> dict[int, int]:
    """Distinct good-quality vPDQ frames per banked video (Meta's vPDQ deduplicates frames)."""
    if not entry_ids:
        return {}
    # Whole-video frames only: robust variants (trim, crop grids) are other views of them.
    rows = (Fingerprint.objects.filter(entry_id__in=entry_ids, kind=FingerprintKind.VPDQ,
                                       variant="original")
            .exclude(quality__lt=MIN_QUALITY).values("entry_id")
            .annotate(n=Count("value", distinct=True)).values_list("entry_id", "n"))
    return dict(rows)


def _best_per_entry(results: list[MatchResult]) -> list[MatchResult]:
    """One result per (bank, entry): the most certain kind, then the smallest distance."""
    best: dict[int, MatchResult] = {}
    for r in results:
        current = best.get(r.entry_id)
        if current is None or (_KIND_RANK[FingerprintKind(r.kind)], r.distance,
                               _STRATEGY_RANK.get(r.strategy, 9)) < (
                _KIND_RANK[FingerprintKind(current.kind)], current.distance,
                _STRATEGY_RANK.get(current.strategy, 9)):
            best[r.entry_id] = r
    return sorted(best.values(), key=lambda r: (r.distance, r.bank, r.entry_id))


# --- the process-wide matcher ---------------------------------------------------------------

_process_matcher: BankMatcher | None = None
_process_lock = threading.Lock()


def get_matcher() -> BankMatcher:
    """This process's matcher (built lazily from the database on its first query)."""
    global _process_matcher
    with _process_lock:
        if _process_matcher is None:
            _process_matcher = BankMatcher()
        return _process_matcher


def notify_process_matcher() -> None:
    if _process_matcher is not None:
        _process_matcher.notify()


def reset_process_matcher() -> None:
    """Forget this process's matcher (tests: each test database starts empty)."""
    global _process_matcher
    with _process_lock:
        _process_matcher = None


def match_fingerprints(fps: Sequence[Fingerprints]) -> list[list[MatchResult]]:
    return get_matcher().match_fingerprints(fps)


def match_bytes(data: bytes) -> list[MatchResult]:
    """Fingerprint `data` (raises FingerprintError) and match it against every enabled bank."""
    from anshim.fingerprint.engine import fingerprint_bytes

    fp = fingerprint_bytes(data)
    extra = robust_queries(data) if isinstance(fp, ImageFingerprint) else robust_video_queries(data)
    return get_matcher().match_fingerprints([fp], [extra])[0]
