"""PDQIndex: exact Hamming range search over PDQ hashes, mutable without rebuilds.

State = an immutable *base* segment (multi-index, usually memory-mapped from a
snapshot) + a few smaller immutable *runs* + a *delta* of entries added since (scanned
linearly) + *tombstones* (a byte per segment row, checked while verifying candidates).
``add`` and ``remove`` touch only the delta and the tombstones, so a change is visible
to the very next query. The delta is bounded, LSM-style: when it reaches
`DELTA_LIMIT` entries it is frozen into a run, merged with the runs (and, for an index
not attached to a snapshot, the base) no larger than `MERGE_FANOUT` times it, so run
sizes fall geometrically and a search probes a logarithmic number of segments and
scans at most `DELTA_LIMIT` entries, however the index was filled. ``compact`` folds
everything into a new base. When the index is attached to a
directory (``save``/``load``), every change is first appended to the change log, and
``refresh`` lets other processes replay what the writer appended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from anshim.matching import changelog, snapshot
from anshim.matching.errors import (
    CorruptIndexError,
    DuplicateIdError,
    MatchingError,
    NotAttachedError,
    UnknownIdError,
)
from anshim.matching.layout import ChunkLayout, chunk_bits_for, plan_layout, sketches_for
from anshim.matching.pdq_codes import PDQ_BITS, Codes, as_codes, format_pdq_hex, parse_pdq_hex
from anshim.matching.segment import Segment, run_range_search

DEFAULT_THRESHOLD = 31
#: Entries the linearly scanned delta holds at most. Scanning 2,048 codes costs about a
#: tenth of one multi-index probe of a million-entry base, so the delta never dominates.
DELTA_LIMIT = 2048
#: A frozen delta absorbs the trailing segments no larger than this many times the
#: entries gathered so far (a binary-counter merge: each entry is rebuilt about
#: log2(n / DELTA_LIMIT) times in all, and at most that many runs are searched).
MERGE_FANOUT = 1
_MISSING = -1
_DELTA = -2
Match = tuple[int, int]
"""``(id, distance)``."""


class InvalidThresholdError(MatchingError, ValueError):
    """A threshold outside ``0..256``."""


def _as_ids(ids: Iterable[int]) -> NDArray[np.int64]:
    values = list(ids) if not isinstance(ids, np.ndarray) else ids
    arr = np.asarray(values)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise MatchingError(f"ids must be a flat sequence of integers, got {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise MatchingError("ids must fit in a signed 64-bit integer")
    return arr.astype(np.int64)


def _first_duplicate(ids: NDArray[np.int64]) -> int | None:
    if ids.size < 2:
        return None
    s = np.sort(ids)
    dup = np.nonzero(s[1:] == s[:-1])[0]
    return int(s[dup[0]]) if dup.size else None


@dataclass
class _Part:
    """One immutable segment and its tombstones."""

    segment: Segment
    deleted: NDArray[np.uint8]
    n_deleted: int = 0

    @classmethod
    def of(cls, segment: Segment) -> _Part:
        return cls(segment, np.zeros(len(segment), dtype=np.uint8))

    @property
    def live(self) -> int:
        return len(self.segment) - self.n_deleted

    def live_arrays(self) -> tuple[NDArray[np.int64], Codes]:
        if not self.n_deleted:
            return np.asarray(self.segment.ids, dtype=np.int64), np.asarray(self.segment.codes)
        keep = np.nonzero(self.deleted == 0)[0]
        return np.asarray(self.segment.ids[keep], dtype=np.int64), self.segment.codes[keep]


class PDQIndex:
    """Exact range search of PDQ hashes (ids: integers, hashes: 64-hex strings).

    ``threshold`` is the bank's default match threshold; the multi-index is laid out
    so that every search up to ``max_threshold`` (default: ``threshold``) is exact
    through the index; larger thresholds are answered, exactly too, by a linear scan.
    ``chunk_bits`` fixes the chunk width (default: `layout.chunk_bits_for` the size).
    ``sketches`` keeps 128-bit sketches of every entry in the posting tables (fast, about
    344 bytes an entry); ``False`` keeps row numbers only (compact, about 85 bytes an entry);
    default: sketches below `layout.SKETCHES_BELOW` entries, so the index stays under 1 GiB.
    """

    def __init__(
        self,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        max_threshold: int | None = None,
        chunk_bits: int | None = None,
        sketches: bool | None = None,
        durable: bool = True,
    ) -> None:
        _check_threshold(threshold)
        self.threshold = threshold
        self.max_threshold = threshold if max_threshold is None else max_threshold
        _check_threshold(self.max_threshold)
        self.chunk_bits = chunk_bits
        self.sketches = sketches
        self.durable = durable
        self._lock = threading.RLock()
        self._set_base(Segment.empty(self._layout_for(0)))
        self._clear_delta()
        self._root: Path | None = None
        self._mmap = True
        self._generation = 0
        self._log_offset = 0
        self.refresh_interval: float | None = None
        self._last_refresh = 0.0

    # ------------------------------------------------------------------ building
    @classmethod
    def from_codes(
        cls, ids: Iterable[int], codes: Codes, **options: Any
    ) -> PDQIndex:
        """Bulk-build an index from ids and a ``(n, 4) uint64`` code array."""
        index = cls(**options)
        id_arr = _as_ids(ids)
        codes = as_codes(codes)
        if id_arr.shape[0] != codes.shape[0]:
            raise MatchingError("ids and codes differ in length")
        dup = _first_duplicate(id_arr)
        if dup is not None:
            raise DuplicateIdError(f"id {dup} appears twice")
        index._set_base(index._build_segment(id_arr, codes))
        return index

    @classmethod
    def build(cls, ids: Iterable[int], hashes: Iterable[str], **options: Any) -> PDQIndex:
        """Bulk-build an index from ids and 64-hex hashes."""
        return cls.from_codes(ids, parse_pdq_hex(hashes), **options)

    def _sketched(self, size: int) -> bool:
        return sketches_for(size) if self.sketches is None else self.sketches

    def _build_segment(self, ids: NDArray[np.int64], codes: Codes) -> Segment:
        return Segment.build(ids, codes, self._layout_for(ids.size),
                             sketches=self._sketched(ids.size))

    def _layout_for(self, size: int) -> ChunkLayout:
        bits = (self.chunk_bits if self.chunk_bits is not None
                else chunk_bits_for(size, sketches=self._sketched(size)))
        try:
            return plan_layout(self.max_threshold, bits)
        except ValueError:
            # Too wide a threshold for exact probing: index for 31, scan above it.
            return plan_layout(min(self.max_threshold, DEFAULT_THRESHOLD), bits)

    def _set_base(self, base: Segment) -> None:
        """Make ``base`` the only segment (runs are dropped: callers fold them in first)."""
        self._parts: list[_Part] = [_Part.of(base)]

    @property
    def _base(self) -> Segment:
        return self._parts[0].segment

    @property
    def _n_deleted(self) -> int:
        return sum(part.n_deleted for part in self._parts)

    def _flush_delta(self) -> None:
        """Freeze a full delta into a run, merged with the trailing segments that are
        no larger than it (one build). A base mapped from a snapshot is never rebuilt
        here: it stays shared through the page cache until ``compact``."""
        if self._dn < DELTA_LIMIT:
            return
        first = 1 if self._root is not None else 0
        total = self._dn
        j = len(self._parts)
        while j - 1 >= first and self._parts[j - 1].live <= MERGE_FANOUT * total:
            j -= 1
            total += self._parts[j].live
        arrays = [part.live_arrays() for part in self._parts[j:]]
        ids = np.concatenate([a[0] for a in arrays] + [self._dids[: self._dn]])
        codes = np.concatenate([a[1] for a in arrays] + [self._dcodes[: self._dn]])
        del arrays
        merged = _Part.of(self._build_segment(ids, codes))
        self._parts = [*self._parts[:j], merged]
        self._clear_delta()

    def _clear_delta(self) -> None:
        self._dcodes = np.zeros((64, 4), dtype=np.uint64)
        self._dids = np.zeros(64, dtype=np.int64)
        self._dn = 0
        self._dpos: dict[int, int] = {}

    # ------------------------------------------------------------------ size
    def __len__(self) -> int:
        return sum(part.live for part in self._parts) + self._dn

    def __contains__(self, ident: object) -> bool:
        if not isinstance(ident, int | np.integer):
            return False
        return bool(self._locate(np.array([ident], dtype=np.int64))[0][0] != _MISSING)

    def stats(self) -> dict[str, Any]:
        """Sizes and memory of the parts of the index."""
        return {
            "entries": len(self),
            "base_entries": len(self._base),
            "tombstones": self._n_deleted,
            "delta_entries": self._dn,
            "runs": [part.live for part in self._parts[1:]],
            "base_bytes": self._base.nbytes,
            "layout": self._base.layout.to_json(),
            "generation": self._generation,
            "path": str(self._root) if self._root else None,
        }

    def _locate(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``(part, row)`` of each live id: part indexes ``_parts``, or is ``_DELTA``
        (row: position in the delta) or ``_MISSING``."""
        part = np.full(ids.shape, _MISSING, dtype=np.int64)
        row = np.full(ids.shape, -1, dtype=np.int64)
        for k, seg in enumerate(self._parts):
            if not len(seg.segment):
                continue
            rows = seg.segment.find_rows(ids)
            hit = rows >= 0
            hit[hit] = seg.deleted[rows[hit]] == 0
            hit &= part == _MISSING
            part[hit] = k
            row[hit] = rows[hit]
        if self._dpos:
            for i, ident in enumerate(ids.tolist()):
                pos = self._dpos.get(ident)
                if pos is not None:
                    part[i], row[i] = _DELTA, pos
        return part, row

    # ------------------------------------------------------------------ mutation
    def add(self, ids: Iterable[int], hashes: Iterable[str]) -> None:
        """Add entries; raises DuplicateIdError if an id is held already (nothing added)."""
        hash_list = list(hashes) if not isinstance(hashes, list | tuple) else hashes
        codes = parse_pdq_hex(hash_list)
        id_arr = _as_ids(ids)
        if id_arr.shape[0] != codes.shape[0]:
            raise MatchingError(f"{id_arr.shape[0]} ids but {codes.shape[0]} hashes")
        with self._lock:
            self._check_new(id_arr)
            if self._root is not None:
                payload = changelog.encode_adds(id_arr.tolist(), [h.lower() for h in hash_list])
                self._append_log(payload)
            self._apply_add(id_arr, codes)

    def add_codes(self, ids: Iterable[int], codes: Codes) -> None:
        """Like ``add`` with a ``(n, 4) uint64`` code array."""
        codes = as_codes(codes)
        if self._root is not None:
            self.add(ids, format_pdq_hex(codes))
            return
        id_arr = _as_ids(ids)
        if id_arr.shape[0] != codes.shape[0]:
            raise MatchingError(f"{id_arr.shape[0]} ids but {codes.shape[0]} hashes")
        with self._lock:
            self._check_new(id_arr)
            self._apply_add(id_arr, codes)

    def _check_new(self, id_arr: NDArray[np.int64]) -> None:
        dup = _first_duplicate(id_arr)
        if dup is not None:
            raise DuplicateIdError(f"id {dup} appears twice in the batch")
        held = self._locate(id_arr)[0] != _MISSING
        if held.any():
            raise DuplicateIdError(f"id {int(id_arr[held][0])} is already in the index")

    def _apply_add(self, id_arr: NDArray[np.int64], codes: Codes) -> None:
        n = id_arr.shape[0]
        need = self._dn + n
        if need > self._dids.shape[0]:
            cap = max(need, 2 * self._dids.shape[0])
            grown_codes = np.zeros((cap, 4), dtype=np.uint64)
            grown_codes[: self._dn] = self._dcodes[: self._dn]
            grown_ids = np.zeros(cap, dtype=np.int64)
            grown_ids[: self._dn] = self._dids[: self._dn]
            self._dcodes, self._dids = grown_codes, grown_ids
        self._dcodes[self._dn : need] = codes
        self._dids[self._dn : need] = id_arr
        for k, ident in enumerate(id_arr.tolist()):
            self._dpos[ident] = self._dn + k
        self._dn = need
        self._flush_delta()

    def remove(self, ids: Iterable[int]) -> None:
        """Forget entries at once; raises UnknownIdError if one is not held (nothing removed)."""
        id_arr = _as_ids(ids)
        with self._lock:
            dup = _first_duplicate(id_arr)
            if dup is not None:
                raise DuplicateIdError(f"id {dup} appears twice in the batch")
            where = self._locate(id_arr)
            missing = where[0] == _MISSING
            if missing.any():
                raise UnknownIdError(f"id {int(id_arr[missing][0])} is not in the index")
            if self._root is not None:
                self._append_log(changelog.encode_removes(id_arr.tolist()))
            self._apply_remove(id_arr, where)

    def _apply_remove(
        self, id_arr: NDArray[np.int64], where: tuple[NDArray[np.int64], NDArray[np.int64]]
    ) -> None:
        part, rows = where
        for k, seg in enumerate(self._parts):
            hit = rows[part == k]
            if hit.size:
                seg.deleted[hit] = 1
                seg.n_deleted += int(hit.size)
        for ident in id_arr[part == _DELTA].tolist():
            pos = self._dpos.pop(ident)
            last = self._dn - 1
            if pos != last:
                moved = int(self._dids[last])
                self._dcodes[pos] = self._dcodes[last]
                self._dids[pos] = moved
                self._dpos[moved] = pos
            self._dn = last

    def hashes_of(self, ids: Iterable[int]) -> list[str]:
        """The hash held for each id; raises UnknownIdError."""
        id_arr = _as_ids(ids)
        with self._lock:
            part, rows = self._locate(id_arr)
            missing = part == _MISSING
            if missing.any():
                raise UnknownIdError(f"id {int(id_arr[missing][0])} is not in the index")
            out = np.zeros((id_arr.size, 4), dtype=np.uint64)
            for k, seg in enumerate(self._parts):
                hit = part == k
                if hit.any():
                    out[hit] = seg.segment.codes[rows[hit]]
            hit = part == _DELTA
            if hit.any():
                out[hit] = self._dcodes[rows[hit]]
        return format_pdq_hex(out)

    # ------------------------------------------------------------------ search
    def search(
        self, hashes: Iterable[str], threshold: int | None = None
    ) -> list[list[Match]]:
        """All entries within ``threshold`` (default: the bank's) of each query.

        One list per query, in query order, each sorted by (distance, id).
        """
        counts, ids, dists = self.search_codes(parse_pdq_hex(hashes), threshold)
        return _split(counts, ids, dists)

    def search_codes(
        self, queries: Codes, threshold: int | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int32]]:
        """Array form of ``search``: ``(counts, ids, distances)``, matches query after query."""
        t = self.threshold if threshold is None else threshold
        _check_threshold(t)
        queries = as_codes(queries)
        if (
            self.refresh_interval is not None
            and time.monotonic() - self._last_refresh >= self.refresh_interval
        ):
            self.refresh()
        nq = queries.shape[0]
        all_counts: list[NDArray[np.int64]] = []
        all_ids: list[NDArray[np.int64]] = []
        all_dists: list[NDArray[np.int32]] = []
        with self._lock:
            for part in self._parts:
                if not len(part.segment) and len(self._parts) > 1:
                    continue
                cb, rb, db = part.segment.search(queries, t, part.deleted)
                all_counts.append(cb)
                all_ids.append(np.asarray(part.segment.ids[rb], dtype=np.int64))
                all_dists.append(db)
            if self._dn:
                cd, rd, dd = run_range_search(
                    "scan_search", queries, t, self._dcodes, self._dn,
                    np.zeros(self._dn, dtype=np.uint8),
                )
                all_counts.append(cd)
                all_ids.append(self._dids[rd])
                all_dists.append(dd)
        if len(all_counts) == 1:  # the usual case: one segment, already sorted
            counts, ids, dists = all_counts[0], all_ids[0], all_dists[0]
        else:
            counts = np.sum(all_counts, axis=0)
            ids = np.concatenate(all_ids)
            dists = np.concatenate(all_dists)
        qidx = np.concatenate([np.repeat(np.arange(nq), c) for c in all_counts])
        order = np.lexsort((ids, dists, qidx))
        return counts, ids[order], dists[order]

    def search_any(
        self, variant_groups: Sequence[Sequence[str]], threshold: int | None = None
    ) -> list[list[Match]]:
        """Dihedral search: each query is a group of variant hashes (e.g. the 8 PDQ
        rotations/flips); an entry matches if any variant is within ``threshold`` and
        is reported once with its best distance. One sorted list per group."""
        flat: list[str] = []
        group_of: list[int] = []
        for g, variants in enumerate(variant_groups):
            if isinstance(variants, str):
                raise MatchingError("each dihedral query is a sequence of variant hashes")
            flat.extend(variants)
            group_of.extend([g] * len(variants))
        counts, ids, dists = self.search_codes(parse_pdq_hex(flat), threshold)
        groups = np.repeat(np.asarray(group_of, dtype=np.int64), counts)
        order = np.lexsort((dists, ids, groups))
        groups, ids, dists = groups[order], ids[order], dists[order]
        keep = np.ones(ids.size, dtype=bool)
        keep[1:] = (groups[1:] != groups[:-1]) | (ids[1:] != ids[:-1])
        groups, ids, dists = groups[keep], ids[keep], dists[keep]
        order = np.lexsort((ids, dists, groups))
        per_group = np.bincount(groups, minlength=len(variant_groups)).astype(np.int64)
        return _split(per_group, ids[order], dists[order])

    # ------------------------------------------------------------------ persistence
    def compact(self) -> None:
        """Fold the delta and tombstones into a new base (a new snapshot when attached)."""
        with self._lock:
            if self._root is not None:
                self._write_generation(self._root, self._generation + 1)
                return
            ids, codes = self._live_arrays()
            self._set_base(self._build_segment(ids, codes))
            self._clear_delta()

    def _live_arrays(self) -> tuple[NDArray[np.int64], Codes]:
        arrays = [part.live_arrays() for part in self._parts]
        ids = np.concatenate([a[0] for a in arrays] + [self._dids[: self._dn]])
        codes = np.concatenate([a[1] for a in arrays] + [self._dcodes[: self._dn]])
        return ids, codes

    def save(self, path: str | Path) -> None:
        """Write a compacted snapshot to directory ``path`` and attach the index to it:
        later changes are appended to its change log. The base is re-opened mmapped."""
        root = Path(path)
        with self._lock:
            number = 1
            if (root / snapshot.CURRENT).exists():
                number = snapshot.read_current(root)[0] + 1
            self._write_generation(root, number)

    def _write_generation(self, root: Path, number: int) -> None:
        ids, codes = self._live_arrays()
        segment = self._build_segment(ids, codes)
        del ids, codes
        directory = snapshot.write_generation(
            root, segment, number, {"threshold": self.threshold}
        )
        del segment
        self._set_base(snapshot.read_generation(directory, mmap=True))
        self._clear_delta()
        self._root, self._generation, self._log_offset = root, number, 0

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        mmap: bool = True,
        verify: bool = False,
        threshold: int | None = None,
        durable: bool = True,
        refresh_interval: float | None = None,
    ) -> PDQIndex:
        """Open a saved index: map the snapshot (shared between processes through the
        page cache) and replay its change log. ``verify`` checks every file's SHA-256.
        ``threshold`` defaults to the one the bank was saved with.

        With ``refresh_interval`` (seconds), a search first calls ``refresh()`` when the
        last one is older than that: changes another process made show up within it.
        """
        root = Path(path)
        number, directory = snapshot.read_current(root)
        base = snapshot.read_generation(directory, mmap=mmap, verify=verify)
        if threshold is None:
            saved = snapshot.read_settings(directory).get("threshold", DEFAULT_THRESHOLD)
            threshold = saved if isinstance(saved, int) else DEFAULT_THRESHOLD
        index = cls(
            threshold=threshold,
            max_threshold=max(threshold, base.layout.max_threshold),
            durable=durable,
        )
        index._set_base(base)
        index._root, index._generation, index._mmap = root, number, mmap
        index._replay()
        index.refresh_interval = refresh_interval
        index._last_refresh = time.monotonic()
        return index

    @classmethod
    def write_new(cls, path: str | Path, ids: Iterable[int], codes: Codes, *,
                  threshold: int = DEFAULT_THRESHOLD) -> None:
        """Build an index of ``ids``/``codes`` straight into a new saved directory ``path``
        (one build; `open_detached` or `load` it afterwards)."""
        index = cls(threshold=threshold)
        id_arr = _as_ids(ids)
        codes = as_codes(codes)
        if id_arr.shape[0] != codes.shape[0]:
            raise MatchingError("ids and codes differ in length")
        dup = _first_duplicate(id_arr)
        if dup is not None:
            raise DuplicateIdError(f"id {dup} appears twice")
        segment = index._build_segment(id_arr, codes)
        snapshot.write_generation(Path(path), segment, 1, {"threshold": threshold})

    @classmethod
    def open_detached(cls, path: str | Path, *, threshold: int | None = None) -> PDQIndex:
        """Map a saved index read-only and detach it: later ``add``/``remove`` stay in this
        process's memory and never touch the files. Many processes map one snapshot (one
        copy of its pages in the page cache) while only its builder ever writes one."""
        index = cls.load(path, mmap=True, threshold=threshold, durable=False)
        index._root = None
        return index

    def refresh(self) -> int:
        """Pick up what another process changed: replay new change-log records, or
        re-open the snapshot if it was compacted. Returns the records applied."""
        with self._lock:
            if self._root is None:
                raise NotAttachedError("refresh() needs an index opened with load() or save()")
            self._last_refresh = time.monotonic()
            for attempt in range(3):
                number, directory = snapshot.read_current(self._root)
                if number != self._generation:
                    base = snapshot.read_generation(directory, mmap=self._mmap)
                    self._set_base(base)
                    self._clear_delta()
                    self._generation, self._log_offset = number, 0
                try:
                    return self._replay()
                except CorruptIndexError:
                    # The writer may have compacted (and removed our log) meanwhile.
                    if attempt == 2 or snapshot.read_current(self._root)[0] == number:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover

    def _replay(self) -> int:
        assert self._root is not None
        log = self._root / snapshot.generation_name(self._generation) / snapshot.LOG
        batches, offset = changelog.read_batches(log, self._log_offset)
        applied = 0
        try:
            for batch in batches:
                ids = np.array(batch.ids, dtype=np.int64)
                if batch.op == "+":
                    self._check_new(ids)
                    self._apply_add(ids, parse_pdq_hex(batch.hashes))
                else:
                    where = self._locate(ids)
                    missing = where[0] == _MISSING
                    if missing.any():
                        raise UnknownIdError(f"id {int(ids[missing][0])} is not in the index")
                    self._apply_remove(ids, where)
                applied += len(batch.ids)
        except MatchingError as exc:
            raise CorruptIndexError(f"change log {log} does not apply: {exc}") from exc
        self._log_offset = offset
        return applied

    def _append_log(self, payload: bytes) -> None:
        assert self._root is not None
        log = self._root / snapshot.generation_name(self._generation) / snapshot.LOG
        changelog.append(log, payload, durable=self.durable)
        self._log_offset += len(payload)


def _check_threshold(threshold: int) -> None:
    if not isinstance(threshold, int | np.integer) or not 0 <= threshold <= PDQ_BITS:
        raise InvalidThresholdError(f"threshold must be an integer in 0..256, got {threshold!r}")


def _split(
    counts: NDArray[np.int64], ids: NDArray[np.int64], dists: NDArray[np.int32]
) -> list[list[Match]]:
    id_list = ids.tolist()
    dist_list = dists.tolist()
    out: list[list[Match]] = []
    pos = 0
    for c in counts.tolist():
        out.append(list(zip(id_list[pos : pos + c], dist_list[pos : pos + c], strict=True)))
        pos += c
    return out
