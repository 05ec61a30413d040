"""The matching core (issue 15): one implementation of bank matching for the app, the partner
lookup, the crawl and the benchmarks. No Django: it reads banks through a `BankStore`.

Per enabled bank it holds two PDQ indexes (`PDQIndex`) whose ids are the store's fingerprint
ids: one for image PDQ hashes (dihedral rows included) and one for vPDQ video frames. MD5 /
SHA-256 are looked up in the store (the database's (kind, value) index; `ExactIndex` in memory).

Staying current: before answering a batch the core reads the store's latest change-log
sequence number and replays what is new (`refresh`). Besides, every perceptual hit is
re-checked through the store (`BankStore.live`) before it is reported, so a withdrawn
fingerprint is never reported again by any process, even one that has not polled yet.

Allow-list banks suppress matches: a query hash within an allow-list entry's threshold is dropped
before the other banks are searched, and a file whose MD5 or SHA-256 is on an allow-list yields
no matches at all.

The strategy rules (which pairs may match, thresholds, quality gates, ranking) are
`anshim.matching.strategy`'s; this module only applies them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from anshim.matching.bank_snapshot import (
    MappedBank,
    MappedSnapshot,
    current_snapshot,
    open_snapshot,
)
from anshim.matching.errors import CorruptIndexError
from anshim.matching.pdq_codes import parse_pdq_hex
from anshim.matching.pdq_index import PDQIndex
from anshim.matching.store import (
    ADD,
    CONFIG,
    PDQ,
    VPDQ,
    BankInfo,
    BankStore,
    EntryFingerprint,
    LiveFingerprint,
)
from anshim.matching.strategy import (
    DEFAULT_RULES,
    KIND_RANK,
    MIN_QUALITY,
    QueryHash,
    StrategyRules,
    image_strategy,
    rank,
    video_strategy,
)
from anshim.matching.video_index import VideoHits

if TYPE_CHECKING:
    from anshim.fingerprint.types import ImageFingerprint, VideoFingerprint

#: Replaying more changes than this at once is slower than rebuilding from the store.
REBUILD_AFTER_CHANGES = 200_000
#: Entries whose rows are read per store call while replaying additions.
_REPLAY_PAGE = 5_000
#: How often a running core looks for a newer snapshot (reading the ``CURRENT`` pointer).
SNAPSHOT_CHECK_SECONDS = 2.0

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MatchResult:
    """One matched bank entry."""

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


@dataclass
class FileQuery:
    """One file to match: its digests, its image query hashes or its video frames."""

    md5: str = ""
    sha256: str = ""
    #: Image PDQ hashes with the strategy that made them (``original`` first).
    images: list[QueryHash] = field(default_factory=list)
    #: Video frames (strategy ``original`` or ``trim``); a query with frames is a video.
    frames: list[QueryHash] = field(default_factory=list)
    is_video: bool = False


def file_query(fp: ImageFingerprint | VideoFingerprint, extra: Sequence[QueryHash] = (),
               ) -> FileQuery:
    """The query for a fingerprint-engine result plus robust query hashes (an image's other
    orientations, border trim, screenshot; a video's trimmed frames)."""
    from anshim.fingerprint.types import ImageFingerprint  # the caller has it loaded already

    if isinstance(fp, ImageFingerprint):
        images = [QueryHash(fp.pdq, fp.quality, "original")]
        images += [QueryHash(v, fp.quality, f"dihedral-{name}")
                   for name, v in (fp.dihedral or {}).items()]
        return FileQuery(fp.md5, fp.sha256, images=[*images, *extra])
    frames = [QueryHash(f.pdq, f.quality, "original") for f in fp.frames]
    return FileQuery(fp.md5, fp.sha256, frames=[*frames, *extra], is_video=True)


class _EntryMap:
    """entry id -> index ids (fingerprint ids), compact enough for millions of rows."""

    def __init__(self, entry_ids: Sequence[int], fp_ids: Sequence[int]) -> None:
        e = np.asarray(entry_ids, dtype=np.int64)
        f = np.asarray(fp_ids, dtype=np.int64)
        order = np.argsort(e, kind="stable")
        self._entries, self._fps = e[order], f[order]
        self._added: dict[int, list[int]] = {}
        self._gone: set[int] = set()

    @classmethod
    def from_sorted(cls, entry_ids: NDArray[np.int64], fp_ids: NDArray[np.int64]) -> _EntryMap:
        """Over arrays already sorted by entry id (a mapped snapshot's: not copied)."""
        out = cls([], [])
        out._entries, out._fps = entry_ids, fp_ids
        return out

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


def _index(rows: Sequence[EntryFingerprint], threshold: int) -> PDQIndex:
    return PDQIndex.build([r.fp_id for r in rows], [r.value for r in rows], threshold=threshold,
                          durable=False)


@dataclass
class BankState:
    """One bank's indexes in the core."""

    info: BankInfo
    built_seq: int
    pdq: PDQIndex
    vpdq: PDQIndex
    entries: _EntryMap

    @classmethod
    def build(cls, info: BankInfo, rows: Sequence[EntryFingerprint], seq: int) -> BankState:
        pdq = [r for r in rows if r.kind == PDQ]
        vpdq = [r for r in rows if r.kind == VPDQ
                and (r.quality is None or r.quality >= MIN_QUALITY)]
        return cls(info, seq, _index(pdq, info.threshold), _index(vpdq, info.threshold),
                   _EntryMap([r.entry_id for r in rows], [r.fp_id for r in rows]))

    @classmethod
    def mapped(cls, bank: MappedBank, seq: int) -> BankState:
        return cls(bank.info, seq, bank.pdq, bank.vpdq,
                   _EntryMap.from_sorted(bank.entry_ids, bank.fp_ids))

    def add_rows(self, rows: Iterable[EntryFingerprint]) -> None:
        pdq: list[EntryFingerprint] = []
        vpdq: list[EntryFingerprint] = []
        for r in rows:
            if r.fp_id in self.pdq or r.fp_id in self.vpdq:
                continue
            self.entries.add(r.entry_id, r.fp_id)
            if r.kind == PDQ:
                pdq.append(r)
            elif r.quality is None or r.quality >= MIN_QUALITY:
                vpdq.append(r)
        if pdq:
            self.pdq.add([r.fp_id for r in pdq], [r.value for r in pdq])
        if vpdq:
            self.vpdq.add([r.fp_id for r in vpdq], [r.value for r in vpdq])

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
    #: video frame hash -> query strategy (``original``; ``trim``: borders cut).
    frame_meta: dict[str, str] = field(default_factory=dict)
    exact: list[tuple[str, str]] = field(default_factory=list)
    allow_listed: bool = False
    is_video: bool = False


@dataclass(frozen=True, slots=True)
class _Hit:
    fp_id: int
    distance: int
    query_hash: str


@dataclass
class _ImageEntry:
    """The best image hit of one entry so far."""

    row: LiveFingerprint
    best: int
    strategy: str
    variant: str

    def add(self, row: LiveFingerprint, distance: int, strategy: str) -> None:
        if (distance, rank(strategy)) < (self.best, rank(self.strategy)):
            self.strategy, self.variant = strategy, row.variant
        self.best = min(self.best, distance)

    def result(self) -> MatchResult:
        r = self.row
        return MatchResult(r.bank_name, r.bank_id, r.entry_id, r.case_code, self.best, PDQ,
                           r.label, strategy=self.strategy, variant=self.variant)


def best_per_entry(results: Iterable[MatchResult]) -> list[MatchResult]:
    """One result per entry: the most certain kind, then the smallest distance, then the
    simplest strategy; ordered by distance."""
    best: dict[int, MatchResult] = {}
    for r in results:
        current = best.get(r.entry_id)
        if current is None or (KIND_RANK[r.kind], r.distance, rank(r.strategy)) < (
                KIND_RANK[current.kind], current.distance, rank(current.strategy)):
            best[r.entry_id] = r
    return sorted(best.values(), key=lambda r: (r.distance, r.bank, r.entry_id))


class MatchingCore:
    """Matches files and bare hashes against every enabled bank of a `BankStore`. Thread-safe;
    any number may share a store: each replays the change log on its own.

    With `snapshot_root`, the first build maps the newest snapshot there
    (`anshim.matching.bank_snapshot`, built by the worker) and replays only the change log
    after its checkpoint, instead of reading every row from the store; with none built yet
    (or a store whose log went back before the checkpoint, or a damaged snapshot) it reads
    the store. A running core looks for a newer snapshot every `snapshot_interval` seconds
    on its refresh path and switches to it: it maps it, replays the log after its checkpoint
    into the new state and only then swaps it in under the lock, so every search sees one
    complete, current state (the old one or the new one). The old maps go with the last
    reference to the old state; the builder may delete their files meanwhile (a mapped file
    stays readable after it is unlinked).
    """

    def __init__(self, store: BankStore, *, poll_interval: float = 0.0,
                 min_quality: int = MIN_QUALITY, rules: StrategyRules = DEFAULT_RULES,
                 clock: Callable[[], float] = time.monotonic,
                 snapshot_root: Path | None = None,
                 snapshot_interval: float = SNAPSHOT_CHECK_SECONDS) -> None:
        self.store = store
        self.snapshot_root = snapshot_root
        #: The snapshot this core's state was mapped from (None: read from the store).
        self.snapshot: Path | None = None
        self.snapshot_interval = snapshot_interval
        self._snapshot_seq = -1
        self._last_snapshot_check = float("-inf")
        #: The newest snapshot found unusable (damaged, of another store): not opened again.
        self._rejected: Path | None = None
        self.poll_interval = poll_interval
        self.min_quality = min_quality
        self.rules = rules
        self._clock = clock
        self._lock = threading.RLock()
        self._banks: dict[int, BankState] | None = None
        self._seq = 0
        self._last_poll = float("-inf")
        self._force = False

    # --- keeping current ----------------------------------------------------------------------

    def notify(self) -> None:
        """Something changed: poll before the next query even inside the poll interval."""
        self._force = True

    @property
    def seq(self) -> int:
        """The last change-log sequence number this core has applied."""
        return self._seq

    @property
    def banks(self) -> dict[int, BankState]:
        """The loaded banks (built on first access)."""
        with self._lock:
            self.refresh()
            assert self._banks is not None
            return self._banks

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
                if not self._map_snapshot(now):
                    self._build_all()
                return
            if (self.snapshot_root is not None
                    and now - self._last_snapshot_check >= self.snapshot_interval
                    and self._map_snapshot(now)):
                return  # a newer snapshot, caught up to the log's end
            latest = self.store.latest_seq()
            if latest < self._seq:  # the log went backwards: a restored or reset store
                self._build_all()
            elif latest > self._seq:
                self._replay(latest)

    def _map_snapshot(self, now: float) -> bool:
        """Map the newest snapshot when it is not the one in use, catch it up from its
        checkpoint and swap it in; False: none usable (or nothing newer)."""
        if self.snapshot_root is None:
            return False
        self._last_snapshot_check = now
        path: Path | None = None
        try:
            path = current_snapshot(self.snapshot_root)
            if path is None or path in (self.snapshot, self._rejected):  # the pointer only
                return False
            snap = open_snapshot(self.snapshot_root)
        except CorruptIndexError as exc:
            # Keep matching exactly from what this core has (or the store); the builder's
            # next snapshot replaces the damaged one.
            log.warning("matching snapshot not used: %s", exc)
            self._rejected = path
            return False
        if snap is None:
            return False
        if snap.seq < self._snapshot_seq or not self._install(snap):
            self._rejected = snap.path
            return False
        return True

    def _install(self, snap: MappedSnapshot) -> bool:
        latest = self.store.latest_seq()
        if latest < snap.seq or not snap.matches_store(self.store):
            # Another database, or this one restored from a backup: the snapshot is not of it.
            return False
        banks = {b.info.bank_id: BankState.mapped(b, snap.seq) for b in snap.banks}
        # Caught up before it is swapped in: a search never sees a state missing an entry
        # this core had, nor one holding an entry it had already seen withdrawn.
        if latest > snap.seq and not self._catch_up(banks, snap.seq, latest):
            return False  # too far behind the log to be worth replaying
        self._banks, self._seq = banks, latest
        self.snapshot, self._snapshot_seq = snap.path, snap.seq
        return True

    def _build_all(self) -> None:
        loaded = self.store.load()
        self._banks = {b.bank_id: BankState.build(b, loaded.fingerprints.get(b.bank_id, []),
                                                  loaded.seq) for b in loaded.banks}
        self._seq = loaded.seq
        self.snapshot, self._snapshot_seq = None, -1  # (a restored store's log starts again)

    def _reload_bank(self, banks: dict[int, BankState], bank_id: int) -> None:
        loaded = self.store.load([bank_id])
        info = next((b for b in loaded.banks if b.bank_id == bank_id), None)
        current = banks.get(bank_id)
        if info is None:  # gone or disabled
            banks.pop(bank_id, None)
        elif current is None:
            banks[bank_id] = BankState.build(info, loaded.fingerprints.get(bank_id, []),
                                             loaded.seq)
        else:
            # The indexes answer any threshold exactly: no rebuild needed.
            current.info = info

    def _replay(self, latest: int) -> None:
        assert self._banks is not None
        if self._catch_up(self._banks, self._seq, latest):
            self._seq = latest
        else:
            self._build_all()

    def _catch_up(self, banks: dict[int, BankState], since: int, latest: int) -> bool:
        """Apply the change log after `since` up to `latest` to `banks`; False (nothing
        applied): more changes than replaying is worth."""
        changes = self.store.changes_after(since, latest)
        if len(changes) > REBUILD_AFTER_CHANGES:
            return False
        configs: set[int] = set()
        adds: dict[int, list[int]] = defaultdict(list)
        withdraws: dict[int, list[int]] = defaultdict(list)
        for change in changes:
            if change.op == CONFIG:
                configs.add(change.bank_id)
                continue
            state = banks.get(change.bank_id)
            if state is None or change.seq <= state.built_seq or change.entry_id is None:
                continue
            (adds if change.op == ADD else withdraws)[change.bank_id].append(change.entry_id)
        for bank_id, entry_ids in withdraws.items():
            banks[bank_id].remove_entries(entry_ids)
        for bank_id, entry_ids in adds.items():
            for start in range(0, len(entry_ids), _REPLAY_PAGE):
                banks[bank_id].add_rows(
                    self.store.fingerprints_of(bank_id, entry_ids[start:start + _REPLAY_PAGE]))
        for bank_id in configs:
            self._reload_bank(banks, bank_id)
        return True

    # --- matching ---------------------------------------------------------------------------

    def match_files(self, files: Sequence[FileQuery]) -> list[list[MatchResult]]:
        """Match each file against every enabled bank; one result list per input."""
        with self._lock:
            self.refresh()
            assert self._banks is not None
            banks = list(self._banks.values())
            queries = [self._query_of(f) for f in files]
            results: list[list[MatchResult]] = [[] for _ in files]
            self._match_exact(queries, results)
            allow = [b for b in banks if b.info.allow_list]
            others = [b for b in banks if not b.info.allow_list]
            self._drop_allow_listed_hashes(queries, allow)
            self._match_perceptual(queries, others, results)
        return [best_per_entry(r) if not q.allow_listed else []
                for q, r in zip(queries, results, strict=True)]

    def match_pdq_hashes(
        self, hashes: Sequence[str], *, bank_ids: Collection[int] | None = None,
        max_distance: int | None = None,
    ) -> list[list[MatchResult]]:
        """Match bare PDQ hashes (no file) against still-image entries: one list per hash.

        Same rules as files (the query strategy is ``original``, its quality unknown):
        allow-lists suppress, each bank's threshold applies (and `max_distance` when given),
        `bank_ids` restricts the banks searched. The hashes stay one code array from parsing
        to the index searches; only hits cost Python work and the store's re-check. Raises
        `MalformedHashError` (a ValueError naming the position) for a malformed hash.
        """
        values = [h.strip().lower() for h in hashes]
        codes = parse_pdq_hex(values)
        hits: list[list[tuple[int, int]]] = [[] for _ in values]  # per query: (fp id, distance)
        with self._lock:
            self.refresh()
            assert self._banks is not None
            banks = list(self._banks.values())
            blocked = self._allow_listed_hashes(values, [b for b in banks if b.info.allow_list])
            for state in banks:
                if state.info.allow_list or not len(state.pdq) or (
                        bank_ids is not None and state.info.bank_id not in bank_ids):
                    continue
                threshold = (state.info.threshold if max_distance is None
                             else min(state.info.threshold, max_distance))
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
        live = self.store.live({fp_id for found in hits for fp_id, _ in found})
        for qi, found in enumerate(hits):
            if not found or values[qi] in blocked:
                continue
            per_entry: dict[int, _ImageEntry] = {}
            for fp_id, dist in found:
                row = live.get(fp_id)
                if row is None or row.allow_list or dist > row.threshold:
                    continue
                if max_distance is not None and dist > max_distance:
                    continue
                strategy = image_strategy("original", None, row.variant, row.quality, dist,
                                          row.threshold, self.rules)
                if strategy is not None:
                    _image_hit(per_entry, row, dist, strategy)
            results[qi] = best_per_entry(e.result() for e in per_entry.values())
        return results

    def _query_of(self, f: FileQuery) -> _Query:
        q = _Query(exact=[(k, v) for k, v in (("md5", f.md5), ("sha256", f.sha256)) if v])
        if f.is_video or f.frames:
            q.is_video = True
            for fr in f.frames:
                if fr.quality >= self.min_quality and fr.pdq not in q.frame_meta:
                    q.frame_hashes.append(fr.pdq)
                    q.frame_meta[fr.pdq] = fr.strategy
            return q
        for qh in f.images:
            if qh.quality >= self.min_quality and qh.pdq not in q.image_meta:
                q.image_hashes.append(qh.pdq)
                q.image_meta[qh.pdq] = (qh.strategy, qh.quality)
        return q

    def _match_exact(self, queries: list[_Query], results: list[list[MatchResult]]) -> None:
        wanted = {pair for q in queries for pair in q.exact}
        if not wanted:
            return
        by_pair: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for hit in self.store.exact(wanted):
            by_pair[(hit.kind, hit.value)].append(hit)
        for q, out in zip(queries, results, strict=True):
            for pair in q.exact:
                for hit in by_pair[pair]:
                    if hit.allow_list:
                        q.allow_listed = True
                    else:
                        out.append(MatchResult(hit.bank_name, hit.bank_id, hit.entry_id,
                                               hit.case_code, 0, hit.kind, hit.label,
                                               strategy=hit.kind, variant="original"))

    def _drop_allow_listed_hashes(self, queries: list[_Query], allow: list[BankState]) -> None:
        hashes = list({h for q in queries for h in (*q.image_hashes, *q.frame_hashes)})
        suppressed = self._allow_listed_hashes(hashes, allow)
        if not suppressed:
            return
        for q in queries:
            q.image_hashes = [h for h in q.image_hashes if h not in suppressed]
            q.frame_hashes = [h for h in q.frame_hashes if h not in suppressed]

    def _allow_listed_hashes(self, hashes: list[str], allow: list[BankState]) -> set[str]:
        """The hashes within an allow-list entry's threshold (image PDQ or video frames)."""
        if not allow or not hashes:
            return set()
        hits: dict[int, list[tuple[str, int]]] = defaultdict(list)  # fp id -> (hash, distance)
        for state in allow:
            for index in (state.pdq, state.vpdq):
                if len(index):
                    for h, matches in zip(hashes, index.search(hashes, state.info.threshold),
                                          strict=True):
                        for fp_id, dist in matches:
                            hits[fp_id].append((h, dist))
        if not hits:
            return set()
        # Only fingerprints that still exist in an enabled allow-list within its threshold.
        live = self.store.live(list(hits))
        return {h for fp_id, found in hits.items()
                if (row := live.get(fp_id)) is not None and row.allow_list
                for h, dist in found if dist <= row.threshold}

    def _match_perceptual(self, queries: list[_Query], banks: list[BankState],
                          results: list[list[MatchResult]]) -> None:
        hits: dict[tuple[int, str], list[_Hit]] = defaultdict(list)  # (query, kind) -> hits
        # Video frames are searched in the image index too: a still of a registered picture
        # inside a video is a match.
        image_q = [(i, h) for i, q in enumerate(queries) for h in (*q.image_hashes,
                                                                    *q.frame_hashes)]
        frame_q = [(i, h) for i, q in enumerate(queries) for h in q.frame_hashes]
        for state in banks:
            for index, flat, kind in ((state.pdq, image_q, PDQ), (state.vpdq, frame_q, VPDQ)):
                if not flat or not len(index):
                    continue
                searched = index.search([h for _, h in flat], state.info.threshold)
                for (qi, h), matches in zip(flat, searched, strict=True):
                    hits[(qi, kind)].extend(_Hit(fp_id, dist, h) for fp_id, dist in matches)
        fp_ids = {hit.fp_id for found in hits.values() for hit in found}
        if not fp_ids:
            return
        # Re-check through the store: withdrawn fingerprints are gone, disabled banks and
        # lowered thresholds take effect at once.
        live = self.store.live(fp_ids)
        video_entries = {live[h.fp_id].entry_id for (_, kind), found in hits.items()
                         if kind == VPDQ for h in found if h.fp_id in live}
        frames_per_entry = self.store.video_frames(video_entries, MIN_QUALITY)
        for (qi, kind), found in hits.items():
            query = queries[qi]
            images: dict[int, _ImageEntry] = {}
            videos: dict[int, tuple[LiveFingerprint, VideoHits]] = {}
            for hit in found:
                row = live.get(hit.fp_id)
                if row is None or row.allow_list or hit.distance > row.threshold:
                    continue
                if kind == VPDQ:
                    made_by = query.frame_meta.get(hit.query_hash, "original")
                    found_by = video_strategy(made_by, row.variant, hit.distance)
                    if found_by is not None:
                        videos.setdefault(row.entry_id, (row, VideoHits()))[1].add(
                            found_by, made_by, hit.query_hash, row.value, hit.distance,
                            row.variant)
                    continue
                q_strategy, q_quality = query.image_meta.get(hit.query_hash, ("original", None))
                strategy = image_strategy(q_strategy, q_quality, row.variant, row.quality,
                                          hit.distance, row.threshold, self.rules)
                if strategy is not None:
                    _image_hit(images, row, hit.distance, strategy)
            results[qi].extend(e.result() for e in images.values())
            if videos:
                totals = _frames_per_strategy(query)
                for entry_id, (r, v) in videos.items():
                    verdict = v.verdict(totals, frames_per_entry.get(entry_id))
                    if verdict is not None:
                        results[qi].append(MatchResult(
                            r.bank_name, r.bank_id, r.entry_id, r.case_code, verdict.distance,
                            VPDQ, r.label, verdict.query_percent, verdict.compared_percent,
                            strategy=verdict.strategy, variant=verdict.variant))


def _image_hit(per_entry: dict[int, _ImageEntry], row: LiveFingerprint, dist: int,
               strategy: str) -> None:
    e = per_entry.get(row.entry_id)
    if e is None:
        per_entry[row.entry_id] = _ImageEntry(row, dist, strategy, row.variant)
    else:
        e.add(row, dist, strategy)


def _frames_per_strategy(query: _Query) -> dict[str, int]:
    """How many of the query's frames each query strategy made (``original``, ``trim``)."""
    totals: dict[str, int] = defaultdict(int)
    for h in query.frame_hashes:
        totals[query.frame_meta.get(h, "original")] += 1
    return totals
