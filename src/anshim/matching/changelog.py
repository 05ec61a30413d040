"""The change log: adds and removals appended after a snapshot, replayed on load.

One record a line, ASCII::

    + <id> <64 hex>\\n      add
    - <id>\\n               remove

A batch is written with one ``write`` call. A trailing line without its newline is a
torn write (the writer died mid-append, e.g. ``kill -9``). Readers only ever consume
complete lines, so they skip it, and a reader can follow a log while the writer
appends to it. A torn tail is *not* harmless to the next writer, though: appending
after it would glue the fragment to the next record and make the log unreadable, so
`append` first cuts the file back to its last complete line (`cut_torn_tail`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from anshim.matching.errors import CorruptIndexError


@dataclass
class LogBatch:
    """Consecutive records of one kind, in log order."""

    op: str  # "+" or "-"
    ids: list[int] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)


def encode_adds(ids: Sequence[int], hashes: Sequence[str]) -> bytes:
    return "".join(f"+ {i} {h}\n" for i, h in zip(ids, hashes, strict=True)).encode("ascii")


def encode_removes(ids: Sequence[int]) -> bytes:
    return "".join(f"- {i}\n" for i in ids).encode("ascii")


def _cut_fd(fd: int) -> int:
    """Truncate the open log to its last newline; return the bytes cut (0 if intact)."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    # Walk back block by block: a torn record is at most one batch long, but a batch
    # may be megabytes, so never read the whole file.
    end = size
    keep = 0
    while end > 0:
        start = max(0, end - _TAIL_BLOCK)
        block = os.pread(fd, end - start, start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    os.ftruncate(fd, keep)
    return size - keep


_TAIL_BLOCK = 1 << 16


def cut_torn_tail(path: Path, *, durable: bool = True) -> int:
    """Cut a torn last record (one without its newline) off the log at ``path``.

    Returns the bytes removed. Only the single writer may call this (readers skip a
    torn tail on their own); `append` does it before every write.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        cut = _cut_fd(fd)
        if cut and durable:
            os.fsync(fd)
        return cut
    finally:
        os.close(fd)


def append(path: Path, payload: bytes, *, durable: bool) -> None:
    """Append records; with ``durable`` the data reaches the disk before returning.

    A torn tail left by a writer that died mid-append is cut off first, so the new
    records start on a line of their own and the log stays loadable.
    """
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        _cut_fd(fd)
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_batches(path: Path, offset: int) -> tuple[list[LogBatch], int]:
    """Parse complete records from ``offset``; return them grouped and the new offset."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError as exc:
        raise CorruptIndexError(f"change log {path} is missing") from exc
    end = data.rfind(b"\n") + 1
    batches: list[LogBatch] = []
    for number, raw in enumerate(data[:end].splitlines()):
        line = raw.decode("ascii", errors="replace")
        parts = line.split(" ")
        try:
            if parts[0] == "+" and len(parts) == 3 and len(parts[2]) == 64:
                op, ident, hexhash = "+", int(parts[1]), parts[2]
            elif parts[0] == "-" and len(parts) == 2:
                op, ident, hexhash = "-", int(parts[1]), ""
            else:
                raise ValueError(line)
        except ValueError:
            raise CorruptIndexError(
                f"change log {path}: record {number + 1} after byte {offset} is malformed: "
                f"{line[:100]!r}"
            ) from None
        if not batches or batches[-1].op != op:
            batches.append(LogBatch(op))
        batches[-1].ids.append(ident)
        if op == "+":
            batches[-1].hashes.append(hexhash)
    return batches, offset + end
