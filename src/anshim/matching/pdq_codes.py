"""PDQ hashes as arrays: 64-hex strings <-> ``(n, 4) uint64`` codes, Hamming distances.

A PDQ hash is 256 bits written as 64 hex characters. The engine stores it as four
big-endian 64-bit words, so ``codes[i, 0]`` holds the first 16 hex characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from anshim.matching.errors import MalformedHashError

PDQ_BITS = 256
PDQ_HEX_LEN = 64
WORDS = 4

Codes = NDArray[np.uint64]

_HEX = frozenset("0123456789abcdefABCDEF")


def _bad_hash_message(position: int, value: object) -> str:
    short = not isinstance(value, str) or len(value) <= 80
    shown = repr(value) if short else repr(str(value)[:77] + "…")
    return f"hash #{position} is not a PDQ hash (64 hex characters): {shown}"


def parse_pdq_hex(hashes: Iterable[str]) -> Codes:
    """Parse PDQ hex strings into a ``(n, 4) uint64`` array; raise MalformedHashError."""
    if isinstance(hashes, str):
        raise MalformedHashError("expected a sequence of hashes, got a single string")
    seq: Sequence[str] = hashes if isinstance(hashes, list | tuple) else list(hashes)
    n = len(seq)
    for i, h in enumerate(seq):
        if not isinstance(h, str) or len(h) != PDQ_HEX_LEN:
            raise MalformedHashError(_bad_hash_message(i, h))
    try:
        raw = bytes.fromhex("".join(seq))
    except ValueError:
        raw = b""
    if len(raw) != 32 * n:
        # bytes.fromhex rejects non-hex and skips whitespace: find the culprit.
        for i, h in enumerate(seq):
            if not _HEX.issuperset(h):
                raise MalformedHashError(_bad_hash_message(i, h)) from None
        raise MalformedHashError("hashes are not 64 hex characters each")  # pragma: no cover
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(n, WORDS)


def format_pdq_hex(codes: Codes) -> list[str]:
    """Format a ``(n, 4) uint64`` array as 64-hex strings (lower case)."""
    arr = as_codes(codes)
    raw = arr.astype(">u8").tobytes()
    return [raw[i : i + 32].hex() for i in range(0, len(raw), 32)]


def as_codes(codes: object) -> Codes:
    """Check and return a C-contiguous ``(n, 4) uint64`` array."""
    arr = np.asarray(codes)
    if arr.ndim != 2 or arr.shape[1] != WORDS or arr.dtype != np.uint64:
        raise MalformedHashError(
            f"codes must be a (n, 4) uint64 array, got shape {arr.shape} dtype {arr.dtype}"
        )
    return np.ascontiguousarray(arr)


def hamming_matrix(a: Codes, b: Codes) -> NDArray[np.int32]:
    """All pairwise Hamming distances between two code arrays (brute force, for checks)."""
    x = as_codes(a)[:, None, :] ^ as_codes(b)[None, :, :]
    return np.bitwise_count(x).sum(axis=2, dtype=np.int32)


def flip_bits(codes: Codes, positions: NDArray[np.int64]) -> Codes:
    """Return a copy of one code ``(4,)`` with the given bit positions flipped."""
    out = np.array(codes, dtype=np.uint64, copy=True).reshape(WORDS)
    for p in np.asarray(positions, dtype=np.int64).ravel():
        out[p >> 6] ^= np.uint64(1) << np.uint64(p & 63)
    return out
