"""An immutable multi-index segment: codes sorted by id plus one posting table per chunk."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from anshim.matching import kernels
from anshim.matching.layout import ChunkLayout
from anshim.matching.pdq_codes import Codes, as_codes

Ids = NDArray[np.int64]
Matches = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int32]]
"""``(counts, rows, distances)``: per-query match counts, then matches query after query."""

_INITIAL_OUT = 1 << 16


def row_bytes_for(size: int) -> int:
    """Bytes per row number in the posting tables: 3 below 2**24 entries, else 4."""
    return 3 if size < (1 << 24) else 4


def id_dtype_for(ids: NDArray[np.int64]) -> np.dtype[np.signedinteger]:
    """int32 when every id fits (halves the id column), else int64."""
    lo, hi = np.iinfo(np.int32).min, np.iinfo(np.int32).max
    if ids.size == 0 or (ids.min() >= lo and ids.max() <= hi):
        return np.dtype(np.int32)
    return np.dtype(np.int64)


def run_range_search(
    kernel_name: str, queries: Codes, threshold: int, *args: object, capacity: int = 0
) -> Matches:
    """Drive a search kernel, growing the output buffers until every query fits."""
    nq = queries.shape[0]
    capacity = capacity or min(_INITIAL_OUT, max(1024, 256 * nq))
    counts = np.zeros(nq, dtype=np.int64)
    parts_rows: list[NDArray[np.int64]] = []
    parts_dist: list[NDArray[np.int32]] = []
    kernel = getattr(kernels, kernel_name)
    first = 0
    cap = capacity
    while first < nq:
        out_rows = np.empty(cap, dtype=np.int64)
        out_dist = np.empty(cap, dtype=np.int32)
        written, nxt = kernel(queries, first, threshold, *args, out_rows, out_dist, counts)
        if written:
            parts_rows.append(out_rows[:written].copy())
            parts_dist.append(out_dist[:written].copy())
        if nxt == first:  # one query alone overflowed the buffer
            cap *= 4
        first = nxt
    if not parts_rows:
        return counts, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    return counts, np.concatenate(parts_rows), np.concatenate(parts_dist)


@functools.lru_cache(maxsize=16)
def _probes(layout: ChunkLayout) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    return layout.probe_arrays()


@functools.lru_cache(maxsize=16)
def _sketch_words(layout: ChunkLayout) -> NDArray[np.int64]:
    return layout.sketch_words()


def sketches_from(codes: Codes, rows: NDArray[np.uint8], layout: ChunkLayout) -> Codes:
    """The posting lists' sketches rebuilt from the codes and row tables (snapshots of
    format version 1 stored no sketches)."""
    n = codes.shape[0]
    row_bytes = row_bytes_for(n)
    words = _sketch_words(layout)
    out = np.empty((layout.tables, n, 2), dtype=np.uint64)
    for t in range(layout.tables):
        packed = np.asarray(rows[t]).reshape(n, row_bytes).astype(np.int64)
        order = sum(packed[:, k] << (8 * k) for k in range(row_bytes))
        out[t] = codes[order][:, words[t]]
    return out


@dataclass(frozen=True)
class Segment:
    """Codes ordered by ascending id, and ``tables`` posting lists over row numbers.

    ``rows[t]`` lists the row numbers sorted by the value of chunk ``t``, each in
    ``row_bytes`` little-endian bytes; bucket ``k`` of table ``t`` holds entries
    ``offsets[offset_base[t] + k]`` up to ``offsets[offset_base[t] + k + 1]``.
    ``sketches[t]`` runs parallel to ``rows[t]``: two words of each entry's code
    (``layout.sketch_words()``), so that a search scans contiguous sketches and reads a
    row number and code only for the few candidates that pass them. A *compact* segment
    (large banks) has no sketches (``sketches`` of shape ``(tables, 0, 2)``) and verifies
    every candidate against its code.
    Arrays may be memory-mapped read-only from a snapshot.
    """

    codes: Codes
    ids: NDArray[np.signedinteger]
    rows: NDArray[np.uint8]
    offsets: NDArray[np.uint32]
    offset_base: NDArray[np.int64]
    layout: ChunkLayout
    sketches: Codes

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def has_sketches(self) -> bool:
        return len(self) > 0 and self.sketches.shape[1] == len(self)

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.ids.nbytes + self.rows.nbytes + self.offsets.nbytes
                   + self.sketches.nbytes)

    @classmethod
    def empty(cls, layout: ChunkLayout) -> Segment:
        return cls.build(np.zeros(0, dtype=np.int64), np.zeros((0, 4), dtype=np.uint64), layout)

    @classmethod
    def build(cls, ids: NDArray[np.int64], codes: Codes, layout: ChunkLayout,
              *, sketches: bool = True) -> Segment:
        """Build from unique ids and their codes (any order); ``sketches=False``: compact."""
        codes = as_codes(codes)
        ids = np.asarray(ids, dtype=np.int64)
        if ids.shape[0] != codes.shape[0]:
            raise ValueError("ids and codes differ in length")
        if ids.size >= np.iinfo(np.uint32).max:
            raise ValueError("a segment holds at most 2**32 - 1 entries")
        order = np.argsort(ids, kind="stable")
        if not np.all(order == np.arange(order.size)):
            ids = ids[order]
            codes = codes[order]
        del order
        sorted_ids = ids.astype(id_dtype_for(ids))
        starts, widths, _ = layout.arrays()
        sizes = (np.int64(1) << widths) + 1
        offset_base = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        offsets = np.empty(int(sizes.sum()), dtype=np.uint32)
        row_bytes = row_bytes_for(codes.shape[0])
        rows = np.empty((layout.tables, codes.shape[0] * row_bytes), dtype=np.uint8)
        held = codes.shape[0] if sketches else 0
        sketch_arr = np.empty((layout.tables, held, 2), dtype=np.uint64)
        kernels.build_tables(codes, starts, widths, _sketch_words(layout), offset_base, offsets,
                             rows, row_bytes, sketch_arr, sketches)
        return cls(np.ascontiguousarray(codes), sorted_ids, rows, offsets, offset_base, layout,
                   sketch_arr)

    def find_rows(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Row of each id, or -1 where the segment does not hold it."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(self) == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        # Search with needles of the column's own dtype: a mixed-dtype searchsorted
        # would convert (and so read and copy) the whole memory-mapped id column.
        info = np.iinfo(self.ids.dtype)
        in_range = (ids >= info.min) & (ids <= info.max)
        needles = np.where(in_range, ids, 0).astype(self.ids.dtype)
        pos = np.searchsorted(self.ids, needles).astype(np.int64)
        clipped = np.minimum(pos, len(self) - 1)
        found = in_range & (self.ids[clipped] == needles)
        return np.where(found, clipped, -1)

    def search(self, queries: Codes, threshold: int, deleted: NDArray[np.uint8]) -> Matches:
        """Exact range search; rows flagged in ``deleted`` are skipped."""
        if len(self) == 0:
            return (
                np.zeros(queries.shape[0], dtype=np.int64),
                np.zeros(0, dtype=np.int64),
                np.zeros(0, dtype=np.int32),
            )
        if threshold > self.layout.max_threshold:
            return run_range_search(
                "scan_search", queries, threshold, self.codes, len(self), deleted
            )
        starts, widths, radii = self.layout.arrays()
        probe_table, probe_mask = _probes(self.layout)
        tables = (self.offsets, self.offset_base, starts, widths, radii, probe_table, probe_mask)
        if self.has_sketches:
            return run_range_search(
                "mih_search", queries, threshold, self.codes, deleted, self.rows,
                row_bytes_for(len(self)), self.sketches, _sketch_words(self.layout), *tables,
            )
        return run_range_search(
            "mih_search_compact", queries, threshold, self.codes, deleted, self.rows,
            row_bytes_for(len(self)), *tables,
        )
