"""Multi-index hashing layout: how the 256 bits are cut into chunks and how far to probe.

Pigeonhole (Norouzi et al., "Fast exact search in Hamming space with multi-index
hashing"): cut a code into ``m`` disjoint chunks and let ``T = m*s + a`` with
``0 <= a < m``. If two codes are within ``T`` bits, then one of any ``a + 1`` chosen
chunks differs by at most ``s`` bits, or one of the other ``m - a - 1`` chunks differs by
at most ``s - 1`` bits (otherwise the distance would be at least
``(a+1)(s+1) + (m-a-1)s = T + 1``). Probing every key within those radii of the
query's chunks therefore finds every entry within ``T``: the search is exact.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from anshim.matching.pdq_codes import PDQ_BITS

#: Widest chunk the engine indexes; dense offset tables cost ``4 * 2**bits`` bytes.
MAX_CHUNK_BITS = 24
MIN_CHUNK_BITS = 8
#: Probing radius 3 of a 22-bit chunk is already ~1,800 keys; beyond, scan instead.
MAX_PROBE_RADIUS = 3


@dataclass(frozen=True)
class ChunkLayout:
    """Chunks of a multi-index: bit start, width and probe radius of each table."""

    starts: tuple[int, ...]
    widths: tuple[int, ...]
    radii: tuple[int, ...]
    max_threshold: int

    @property
    def tables(self) -> int:
        return len(self.widths)

    def arrays(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        return (
            np.array(self.starts, dtype=np.int64),
            np.array(self.widths, dtype=np.int64),
            np.array(self.radii, dtype=np.int64),
        )

    def probe_arrays(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Every probe as (table, XOR mask): the Hamming ball of each table's radius."""
        tables: list[int] = []
        masks: list[int] = []
        for t, (width, radius) in enumerate(zip(self.widths, self.radii, strict=True)):
            for k in range(radius + 1):
                for bits in itertools.combinations(range(width), k):
                    tables.append(t)
                    masks.append(sum(1 << b for b in bits))
        return np.array(tables, dtype=np.int64), np.array(masks, dtype=np.int64)

    def sketch_words(self) -> NDArray[np.int64]:
        """``(tables, 2)``: per table, the two code words its posting lists keep as a sketch.

        The first two of the four 64-bit words that the table's chunk does not touch (a
        chunk of at most 24 bits touches one or two): a candidate's sketch distance is then
        independent of the chunk it was found by, and any distance over the threshold on
        those 128 bits rules it out without reading its code.
        """
        out = np.empty((self.tables, 2), dtype=np.int64)
        for t, (start, width) in enumerate(zip(self.starts, self.widths, strict=True)):
            touched = set(range(start // 64, (start + width - 1) // 64 + 1))
            out[t] = [w for w in range(PDQ_BITS // 64) if w not in touched][:2]
        return out

    def probes_per_query(self) -> int:
        """Number of bucket keys one query probes (sum of Hamming-ball sizes)."""
        return sum(
            sum(math.comb(w, k) for k in range(r + 1))
            for w, r in zip(self.widths, self.radii, strict=True)
            if r >= 0
        )

    def offset_entries(self) -> int:
        return sum((1 << w) + 1 for w in self.widths)

    def to_json(self) -> dict[str, object]:
        return {
            "starts": list(self.starts),
            "widths": list(self.widths),
            "radii": list(self.radii),
            "max_threshold": self.max_threshold,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ChunkLayout:
        def ints(key: str) -> tuple[int, ...]:
            value = data[key]
            if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
                raise ValueError(f"layout field {key!r} is not a list of integers")
            return tuple(value)

        threshold = data["max_threshold"]
        if not isinstance(threshold, int):
            raise ValueError("layout field 'max_threshold' is not an integer")
        layout = cls(ints("starts"), ints("widths"), ints("radii"), threshold)
        layout.validate()
        return layout

    def validate(self) -> None:
        """Raise ValueError unless the chunks tile 256 bits and the radii are exact."""
        m = len(self.widths)
        if not (len(self.starts) == m == len(self.radii)) or m == 0:
            raise ValueError("layout arrays differ in length")
        pos = 0
        for start, width in zip(self.starts, self.widths, strict=True):
            if start != pos or not MIN_CHUNK_BITS <= width <= MAX_CHUNK_BITS:
                raise ValueError("layout chunks do not tile the 256 bits")
            pos += width
        if pos != PDQ_BITS:
            raise ValueError("layout chunks do not tile the 256 bits")
        # Exactness: any distance <= max_threshold has some chunk within its radius.
        if sum(r + 1 for r in self.radii) <= self.max_threshold:
            raise ValueError("layout radii are too small for max_threshold")
        if any(r > MAX_PROBE_RADIUS for r in self.radii):
            raise ValueError("layout radius above the supported maximum")


#: Banks below this size keep sketches in their posting tables (`ChunkLayout.sketch_words`):
#: 16 tables of 16-bit chunks cost about 344 bytes an entry, so the index stays under 1 GiB.
#: Larger banks keep row numbers only (about 85 bytes an entry at 10M: 815 MiB), searching
#: several times slower per query but still exactly.
SKETCHES_BELOW = 3_000_000


def sketches_for(size: int) -> bool:
    """Whether a bank of ``size`` entries gets sketched posting tables by default."""
    return size < SKETCHES_BELOW


def chunk_bits_for(size: int, *, sketches: bool | None = None) -> int:
    """Chunk width that balances probes and candidate checks for a bank of ``size`` entries.

    With sketches (the default below `SKETCHES_BELOW`), probes are random reads (272 with
    16-bit chunks, over a thousand with 20 and more) while bucket scans read short
    contiguous runs of sketches, so 16-bit chunks win until buckets hold about a hundred
    entries. Measured on uniform random banks (one thread, `bench/bench_match.py`'s data):
    16 bits searched 1M entries in 14 us a query (18 bits: 19 us, 20 bits: 36 us) and 4M in
    43 us (22 bits: 63 us). Without sketches every candidate is a random read of its code:
    about log2 of the bank size (16..22 bits) balances probes against candidates.
    """
    sketched = sketches_for(size) if sketches is None else sketches
    if sketched or size <= 1:
        return 16
    return int(min(22, max(16, round(math.log2(size)))))


def plan_layout(max_threshold: int = 31, chunk_bits: int = 16) -> ChunkLayout:
    """Cut 256 bits into chunks of about ``chunk_bits`` bits with exact probe radii.

    Raises ValueError when the needed probe radius exceeds ``MAX_PROBE_RADIUS``
    (then the index answers by a linear scan, which is exact at any threshold).
    """
    if not MIN_CHUNK_BITS <= chunk_bits <= MAX_CHUNK_BITS:
        raise ValueError(f"chunk_bits must be in [{MIN_CHUNK_BITS}, {MAX_CHUNK_BITS}]")
    if max_threshold < 0:
        raise ValueError("max_threshold must be >= 0")
    m = math.ceil(PDQ_BITS / chunk_bits)
    while PDQ_BITS / m > MAX_CHUNK_BITS:  # pragma: no cover - guarded above
        m += 1
    base, extra = divmod(PDQ_BITS, m)
    # `extra` chunks are one bit wider; put the narrow ones first.
    widths = [base] * (m - extra) + [base + 1] * extra
    s, a = divmod(max_threshold, m)
    # a + 1 chunks probed at radius s (the narrow ones: fewer probes), the rest at s - 1.
    radii = [s] * (a + 1) + [s - 1] * (m - a - 1)
    if s > MAX_PROBE_RADIUS:
        raise ValueError(f"threshold {max_threshold} needs probe radius {s} with {m} chunks")
    starts = [sum(widths[:i]) for i in range(m)]
    layout = ChunkLayout(tuple(starts), tuple(widths), tuple(radii), max_threshold)
    layout.validate()
    return layout
