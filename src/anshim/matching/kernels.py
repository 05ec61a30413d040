"""numba kernels: build multi-index tables, probe them, filter and verify candidates, scan.

Every kernel is ``nopython`` and ``nogil``: callers may run searches from several
threads. Codes are ``(n, 4) uint64``; bit ``p`` of a code is bit ``p % 64`` (from the
least significant end) of word ``p // 64``.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
from numpy.typing import NDArray

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_ONE = np.uint64(1)


@intrinsic
def _prefetch_intrinsic(typingctx: Any, array: Any, index: Any) -> Any:  # pragma: no cover
    """Hint the CPU to fetch ``array[index]`` (first element of that row) into cache."""
    signature = types.void(array, index)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        array_type, index_type = sig.args
        ary = context.make_array(array_type)(context, builder, args[0])
        i = context.cast(builder, args[1], index_type, types.intp)
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer2(
            context,
            builder,
            data=ary.data,
            shape=cgutils.unpack_tuple(builder, ary.shape),
            strides=cgutils.unpack_tuple(builder, ary.strides),
            layout=array_type.layout,
            inds=[i, zero][: array_type.ndim],
        )
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]),
            "llvm.prefetch.p0",
        )
        # read, high temporal locality, data cache
        builder.call(fn, [builder.bitcast(ptr, byte_ptr), ir.Constant(i32, 0),
                          ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return signature, codegen


prefetch: Any = _prefetch_intrinsic
#: How many candidates ahead the compact search prefetches codes.
_AHEAD = 16


@nb.njit(inline="always", nogil=True, cache=True)
def popcount64(x: np.uint64) -> int:  # pragma: no cover - compiled
    """Bit count of a 64-bit word (LLVM turns this into one popcnt instruction)."""
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return int((x * _H01) >> np.uint64(56))


@nb.njit(inline="always", nogil=True, cache=True)
def _distance(
    a: NDArray[np.uint64], i: int, b: NDArray[np.uint64], j: int
) -> int:  # pragma: no cover
    return (
        popcount64(a[i, 0] ^ b[j, 0])
        + popcount64(a[i, 1] ^ b[j, 1])
        + popcount64(a[i, 2] ^ b[j, 2])
        + popcount64(a[i, 3] ^ b[j, 3])
    )


@nb.njit(inline="always", nogil=True, cache=True)
def chunk_of(
    codes: NDArray[np.uint64], i: int, start: int, width: int
) -> int:  # pragma: no cover
    """Bits ``[start, start + width)`` of code ``i`` as an integer."""
    word = start >> 6
    bit = start & 63
    v = codes[i, word] >> np.uint64(bit)
    if bit + width > 64:
        v |= codes[i, word + 1] << np.uint64(64 - bit)
    return int(v & ((_ONE << np.uint64(width)) - _ONE))


@nb.njit(inline="always", nogil=True, cache=True)
def row_at(rows: NDArray[np.uint8], t: int, j: int, row_bytes: int) -> int:  # pragma: no cover
    """Row number at position ``j`` of table ``t`` (little-endian, ``row_bytes`` bytes)."""
    i = j * row_bytes
    r = int(rows[t, i]) | (int(rows[t, i + 1]) << 8) | (int(rows[t, i + 2]) << 16)
    if row_bytes == 4:
        r |= int(rows[t, i + 3]) << 24
    return r


@nb.njit(inline="always", nogil=True, cache=True)
def _found_first_by(
    t: int, codes: NDArray[np.uint64], r: int, qchunks: NDArray[np.int64],
    starts: NDArray[np.int64], widths: NDArray[np.int64], radii: NDArray[np.int64],
) -> bool:  # pragma: no cover - compiled
    """Whether table ``t`` is the first whose probe ball holds row ``r`` (no table before it
    also finds it): each match is then reported by exactly one table."""
    for u in range(t):
        if radii[u] >= 0:
            cu = chunk_of(codes, r, starts[u], widths[u])
            if popcount64(np.uint64(cu ^ qchunks[u])) <= radii[u]:
                return False
    return True


@nb.njit(nogil=True, cache=True)
def build_tables(
    codes: NDArray[np.uint64],
    starts: NDArray[np.int64],
    widths: NDArray[np.int64],
    sketch_words: NDArray[np.int64],
    offset_base: NDArray[np.int64],
    offsets: NDArray[np.uint32],
    rows: NDArray[np.uint8],
    row_bytes: int,
    sketches: NDArray[np.uint64],
    with_sketches: bool,
) -> None:  # pragma: no cover - compiled
    """Counting-sort the rows of every table by chunk value (stable: rows ascend per bucket).

    ``offsets[offset_base[t] + k]`` is where bucket ``k`` of table ``t`` starts in
    ``rows[t]`` and ``sketches[t]``; each table has ``2**width + 1`` offsets. Row numbers
    are stored little-endian in ``row_bytes`` bytes each (3 below 2**24 entries: 25% less
    memory). ``sketches[t, j]`` holds the two code words ``sketch_words[t]`` of the entry at
    position ``j``: the search filters candidates on them without touching ``codes``
    (written only ``with_sketches``; compact tables pass an empty array).
    """
    n = codes.shape[0]
    for t in range(starts.shape[0]):
        start = starts[t]
        width = widths[t]
        base = offset_base[t]
        wa = sketch_words[t, 0]
        wb = sketch_words[t, 1]
        size = 1 << width
        cursor = np.zeros(size + 1, dtype=np.int64)
        for i in range(n):
            cursor[chunk_of(codes, i, start, width) + 1] += 1
        for k in range(size):
            cursor[k + 1] += cursor[k]
        for k in range(size + 1):
            offsets[base + k] = np.uint32(cursor[k])
        for i in range(n):
            key = chunk_of(codes, i, start, width)
            j = cursor[key]
            b = j * row_bytes
            for k in range(row_bytes):
                rows[t, b + k] = np.uint8((i >> (8 * k)) & 0xFF)
            if with_sketches:
                sketches[t, j, 0] = codes[i, wa]
                sketches[t, j, 1] = codes[i, wb]
            cursor[key] += 1


@nb.njit(nogil=True, cache=True)
def mih_search(
    queries: NDArray[np.uint64],
    first_query: int,
    threshold: int,
    codes: NDArray[np.uint64],
    deleted: NDArray[np.uint8],
    rows: NDArray[np.uint8],
    row_bytes: int,
    sketches: NDArray[np.uint64],
    sketch_words: NDArray[np.int64],
    offsets: NDArray[np.uint32],
    offset_base: NDArray[np.int64],
    starts: NDArray[np.int64],
    widths: NDArray[np.int64],
    radii: NDArray[np.int64],
    probe_table: NDArray[np.int64],
    probe_mask: NDArray[np.int64],
    out_rows: NDArray[np.int64],
    out_dist: NDArray[np.int32],
    counts: NDArray[np.int64],
) -> tuple[int, int]:  # pragma: no cover - compiled
    """Exact range search of queries ``first_query..`` through the multi-index.

    ``probe_table[p]``/``probe_mask[p]`` list every probe: the table and the XOR mask
    applied to the query's chunk (all masks within the table's radius). Per query:
    prefetch every probed offset, then every cache line of every probed bucket's sketches
    (short contiguous runs: the CPU fetches them all in parallel), then scan the buckets.
    A candidate whose sketch (128 of the 256 bits) already differs by more than the
    threshold is dropped there; only the rare survivors read their row number and full
    code. An entry found by several tables is reported only by the first table whose
    probe ball holds it.

    Writes matches query after query into ``out_rows``/``out_dist`` and the number per
    query into ``counts``. Returns ``(written, next_query)``; ``next_query`` is below
    ``len(queries)`` when the output filled up (that query is left out entirely).
    """
    m = starts.shape[0]
    n_probes = probe_table.shape[0]
    qchunks = np.empty(m, dtype=np.int64)
    qa = np.empty(m, dtype=np.uint64)
    qb = np.empty(m, dtype=np.uint64)
    lo = np.empty(n_probes, dtype=np.int64)
    hi = np.empty(n_probes, dtype=np.int64)
    pos = 0
    for qi in range(first_query, queries.shape[0]):
        begin = pos
        for t in range(m):
            qchunks[t] = chunk_of(queries, qi, starts[t], widths[t])
            qa[t] = queries[qi, sketch_words[t, 0]]
            qb[t] = queries[qi, sketch_words[t, 1]]
        for p in range(n_probes):
            t = probe_table[p]
            lo[p] = offset_base[t] + (qchunks[t] ^ probe_mask[p])
            prefetch(offsets, lo[p])
        for p in range(n_probes):
            k = lo[p]
            lo[p] = offsets[k]
            hi[p] = offsets[k + 1]
            if hi[p] > lo[p]:
                table = sketches[probe_table[p]]
                # 4 sketches per 64-byte line: one prefetch a line, and the last one.
                for j in range(lo[p], hi[p], 4):
                    prefetch(table, j)
                prefetch(table, hi[p] - 1)
        for p in range(n_probes):
            t = probe_table[p]
            a = qa[t]
            b = qb[t]
            table = sketches[t]
            for j in range(lo[p], hi[p]):
                if popcount64(table[j, 0] ^ a) + popcount64(table[j, 1] ^ b) > threshold:
                    continue
                r = row_at(rows, t, j, row_bytes)
                if deleted[r]:
                    continue
                d = _distance(codes, r, queries, qi)
                if d > threshold or not _found_first_by(t, codes, r, qchunks, starts, widths,
                                                        radii):
                    continue
                if pos >= out_rows.shape[0]:
                    return begin, qi
                out_rows[pos] = r
                out_dist[pos] = d
                pos += 1
        counts[qi] = pos - begin
    return pos, queries.shape[0]


@nb.njit(nogil=True, cache=True)
def mih_search_compact(
    queries: NDArray[np.uint64],
    first_query: int,
    threshold: int,
    codes: NDArray[np.uint64],
    deleted: NDArray[np.uint8],
    rows: NDArray[np.uint8],
    row_bytes: int,
    offsets: NDArray[np.uint32],
    offset_base: NDArray[np.int64],
    starts: NDArray[np.int64],
    widths: NDArray[np.int64],
    radii: NDArray[np.int64],
    probe_table: NDArray[np.int64],
    probe_mask: NDArray[np.int64],
    out_rows: NDArray[np.int64],
    out_dist: NDArray[np.int32],
    counts: NDArray[np.int64],
) -> tuple[int, int]:  # pragma: no cover - compiled
    """``mih_search`` for tables without sketches (large banks, less memory).

    Same contract and probes. Per query:
    locate the probed buckets, gather their posting lists (sequential reads), then
    verify the candidates in one tight loop (independent random reads of the codes,
    which the CPU overlaps). An entry found by several tables is reported only by the
    first table whose probe ball holds it.

    Writes matches query after query into ``out_rows``/``out_dist`` and the number per
    query into ``counts``. Returns ``(written, next_query)``; ``next_query`` is below
    ``len(queries)`` when the output filled up (that query is left out entirely).
    """
    m = starts.shape[0]
    n_probes = probe_table.shape[0]
    qchunks = np.empty(m, dtype=np.int64)
    lo = np.empty(n_probes, dtype=np.int64)
    hi = np.empty(n_probes, dtype=np.int64)
    cand_rows = np.empty(1 << 15, dtype=np.uint32)
    cand_table = np.empty(1 << 15, dtype=np.uint8)
    pos = 0
    for qi in range(first_query, queries.shape[0]):
        begin = pos
        for t in range(m):
            qchunks[t] = chunk_of(queries, qi, starts[t], widths[t])
        # Stage the random reads so the CPU has many in flight: prefetch every probed
        # offset, then read them and prefetch the posting lists, then copy those.
        for p in range(n_probes):
            t = probe_table[p]
            lo[p] = offset_base[t] + (qchunks[t] ^ probe_mask[p])
            prefetch(offsets, lo[p])
        total = 0
        for p in range(n_probes):
            k = lo[p]
            lo[p] = offsets[k]
            hi[p] = offsets[k + 1]
            total += hi[p] - lo[p]
            if hi[p] > lo[p]:
                prefetch(rows[probe_table[p]], lo[p] * row_bytes)
        if total > cand_rows.shape[0]:
            cand_rows = np.empty(2 * total, dtype=np.uint32)
            cand_table = np.empty(2 * total, dtype=np.uint8)
        n = 0
        for p in range(n_probes):
            t = probe_table[p]
            for j in range(lo[p], hi[p]):
                cand_rows[n] = row_at(rows, t, j, row_bytes)
                cand_table[n] = t
                n += 1
        for c in range(min(n, _AHEAD)):
            prefetch(codes, cand_rows[c])
        for c in range(n):
            if c + _AHEAD < n:
                prefetch(codes, cand_rows[c + _AHEAD])
            r = cand_rows[c]
            d = _distance(codes, r, queries, qi)
            if d > threshold or deleted[r]:
                continue
            if not _found_first_by(cand_table[c], codes, r, qchunks, starts, widths, radii):
                continue
            if pos >= out_rows.shape[0]:
                return begin, qi
            out_rows[pos] = r
            out_dist[pos] = d
            pos += 1
        counts[qi] = pos - begin
    return pos, queries.shape[0]


@nb.njit(nogil=True, cache=True)
def scan_search(
    queries: NDArray[np.uint64],
    first_query: int,
    threshold: int,
    codes: NDArray[np.uint64],
    count: int,
    deleted: NDArray[np.uint8],
    out_rows: NDArray[np.int64],
    out_dist: NDArray[np.int32],
    counts: NDArray[np.int64],
) -> tuple[int, int]:  # pragma: no cover - compiled
    """Exact range search by a linear scan of ``codes[:count]`` (same contract as mih_search)."""
    pos = 0
    for qi in range(first_query, queries.shape[0]):
        begin = pos
        for r in range(count):
            d = _distance(codes, r, queries, qi)
            if d <= threshold and not deleted[r]:
                if pos >= out_rows.shape[0]:
                    return begin, qi
                out_rows[pos] = r
                out_dist[pos] = d
                pos += 1
        counts[qi] = pos - begin
    return pos, queries.shape[0]
