"""Build once, map everywhere (issue 15 item 3): the matching core's banks written to disk as one
snapshot tagged with the change-log position it covers (its checkpoint), memory-mapped by every
web and worker process.

Layout::

    ROOT/CURRENT                  name of the newest snapshot, replaced atomically
    ROOT/snap-<seq>-<stamp>/
        manifest.json             format, checkpoint seq, the banks (id, name, threshold, ...)
        bank-<id>/pdq/ vpdq/      `PDQIndex.save` directories (mmap-able .npy arrays)
        bank-<id>/entries.npy fps.npy   entry id -> fingerprint ids, sorted by entry id

The builder (`build_snapshot`, run by the worker's periodic task) reads one consistent state of
the store, writes a new snapshot beside the old ones and flips ``CURRENT``. A process that
starts maps the newest snapshot and replays only the change log after its checkpoint
(`MatchingCore(snapshot_root=...)`); a process already running keeps matching from its own
state while the new one is built (no pause) and, within a few seconds of the flip, maps the
new one, catches it up the same way and swaps it in. The two newest snapshots are kept, so a
process that read ``CURRENT`` just before the flip still finds its files (and `open_snapshot`
reads ``CURRENT`` again if they went meanwhile); older ones are removed (a process that still
maps one keeps its pages: POSIX keeps unlinked files alive while mapped, and nothing reads a
snapshot's files after it is opened).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from anshim.matching.errors import CorruptIndexError
from anshim.matching.pdq_codes import Codes, parse_pdq_hex
from anshim.matching.pdq_index import PDQIndex
from anshim.matching.store import PDQ, VPDQ, BankInfo, BankStore, Change
from anshim.matching.strategy import MIN_QUALITY

FORMAT = "anshim-bank-snapshot"
VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
#: Snapshots kept (the newest and the one before: a reader may have just read CURRENT).
KEEP = 2


@dataclass(frozen=True, slots=True)
class BankArrays:
    """One bank as arrays: what a snapshot holds (no per-row Python objects)."""

    info: BankInfo
    pdq_ids: NDArray[np.int64]
    pdq_codes: Codes
    vpdq_ids: NDArray[np.int64]
    vpdq_codes: Codes
    #: Every perceptual row's entry id and fingerprint id (withdrawal removes an entry's rows).
    entry_ids: NDArray[np.int64]
    fp_ids: NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    path: Path
    seq: int
    banks: list[BankInfo]
    rows: int
    seconds: float
    #: False: the newest snapshot already covered the store's change log; none was written.
    written: bool = True


def arrays_from_store(store: BankStore) -> tuple[int, list[BankArrays]]:
    """One consistent read of the store as arrays, with its checkpoint."""
    loaded = store.load()
    out: list[BankArrays] = []
    for info in loaded.banks:
        rows = loaded.fingerprints.get(info.bank_id, [])
        pdq = [r for r in rows if r.kind == PDQ]
        vpdq = [r for r in rows if r.kind == VPDQ and (r.quality is None
                                                       or r.quality >= MIN_QUALITY)]
        out.append(BankArrays(
            info,
            np.array([r.fp_id for r in pdq], dtype=np.int64), parse_pdq_hex([r.value for r in pdq]),
            np.array([r.fp_id for r in vpdq], dtype=np.int64),
            parse_pdq_hex([r.value for r in vpdq]),
            np.array([r.entry_id for r in rows], dtype=np.int64),
            np.array([r.fp_id for r in rows], dtype=np.int64)))
    return loaded.seq, out


def last_change(store: BankStore, seq: int) -> Change | None:
    """The change-log record at `seq` (None at 0): a snapshot's fingerprint of its store."""
    found = store.changes_after(seq - 1, seq) if seq > 0 else []
    return found[0] if found else None


def _change_json(change: Change | None) -> list[object] | None:
    return None if change is None else [change.seq, change.bank_id, change.entry_id, change.op]


def build_snapshot(store: BankStore, root: Path, *, force: bool = False) -> SnapshotInfo:
    """Read the store once and write it as the newest snapshot under `root` — unless the
    newest one is of this store at its latest change already (the periodic task runs whether
    or not anything changed; a rewrite would cost minutes at 10M rows and make every process
    switch to an identical state), or `force`."""
    if not force and (same := _covers_store(store, root)) is not None:
        return same
    seq, banks = arrays_from_store(store)
    return write_snapshot(root, seq, banks, last_change(store, seq))


def _covers_store(store: BankStore, root: Path) -> SnapshotInfo | None:
    """The newest snapshot when it holds the store's latest change (its manifest read only)."""
    try:
        path = current_snapshot(root)
        if path is None:
            return None
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        seq = int(manifest["seq"])
        if (manifest.get("format") != FORMAT or manifest.get("version") != VERSION
                or seq != store.latest_seq()
                or _change_json(last_change(store, seq)) != manifest.get("change")):
            return None
        banks = [BankInfo(int(b["bank_id"]), str(b["name"]), int(b["threshold"]),
                          bool(b["allow_list"])) for b in manifest["banks"]]
        return SnapshotInfo(path, seq, banks, int(manifest["rows"]), 0.0, written=False)
    except (CorruptIndexError, OSError, ValueError, KeyError, TypeError):
        return None  # damaged or gone: write a new one


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_snapshot(root: Path, seq: int, banks: Sequence[BankArrays],
                   change: Change | None) -> SnapshotInfo:
    """Write `banks` (the state at change `seq`, whose record is `change`) as a new snapshot
    and make it current."""
    t0 = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    name = f"snap-{seq:012d}-{time.time_ns():020d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-snap-", dir=root))
    rows = 0
    try:
        for bank in banks:
            d = tmp / f"bank-{bank.info.bank_id}"
            d.mkdir()
            for sub, ids, codes in (("pdq", bank.pdq_ids, bank.pdq_codes),
                                    ("vpdq", bank.vpdq_ids, bank.vpdq_codes)):
                PDQIndex.write_new(d / sub, ids, codes, threshold=bank.info.threshold)
            order = np.argsort(bank.entry_ids, kind="stable")
            np.save(d / "entries.npy", bank.entry_ids[order], allow_pickle=False)
            np.save(d / "fps.npy", bank.fp_ids[order], allow_pickle=False)
            for f in ("entries.npy", "fps.npy"):
                _fsync(d / f)
            rows += int(bank.entry_ids.size)
        manifest = {
            "format": FORMAT, "version": VERSION, "seq": seq, "change": _change_json(change),
            "banks": [{"bank_id": b.info.bank_id, "name": b.info.name,
                       "threshold": b.info.threshold, "allow_list": b.info.allow_list}
                      for b in banks],
            "rows": rows,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        _fsync(tmp / MANIFEST)
        final = root / name
        os.rename(tmp, final)
        pointer = root / f".{CURRENT}.tmp"
        pointer.write_text(name + "\n", encoding="ascii")
        _fsync(pointer)
        os.replace(pointer, root / CURRENT)
        _fsync(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    snaps = sorted(p for p in root.glob("snap-*") if p.is_dir())
    for old in snaps[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-snap-*"):  # a builder killed mid-write
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    return SnapshotInfo(final, seq, [b.info for b in banks], rows, time.perf_counter() - t0)


@dataclass(frozen=True, slots=True)
class MappedBank:
    info: BankInfo
    pdq: PDQIndex
    vpdq: PDQIndex
    entry_ids: NDArray[np.int64]  # sorted, memory-mapped
    fp_ids: NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class MappedSnapshot:
    path: Path
    seq: int
    banks: list[MappedBank]
    #: The change-log record at `seq` when built, as JSON (see `matches_store`).
    change: list[object] | None

    def matches_store(self, store: BankStore) -> bool:
        """Whether `store` is the one this snapshot was built from: its change-log record at
        the checkpoint is the same (a restored or another database is not)."""
        return _change_json(last_change(store, self.seq)) == self.change


def current_snapshot(root: Path) -> Path | None:
    """The newest snapshot's directory (None: none built yet)."""
    try:
        name = (root / CURRENT).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    if not name.startswith("snap-") or "/" in name:
        raise CorruptIndexError(f"{root / CURRENT} names no snapshot: {name!r}")
    return root / name


def open_snapshot(root: Path) -> MappedSnapshot | None:
    """Map the newest snapshot read-only (None: none built yet).

    Opening reads the manifests and the arrays' headers only (their shapes and dtypes are
    checked, the posting tables' ends read): the pages come in as searches touch them, so
    opening costs the same at any size. Checksums of every file are the builder's business.
    """
    for attempt in range(3):
        path = current_snapshot(root)
        if path is None:
            return None
        try:
            return _open(path)
        except CorruptIndexError:
            # Two newer snapshots built since CURRENT was read remove this one: read again.
            if attempt == 2 or current_snapshot(root) == path:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _open(path: Path) -> MappedSnapshot:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise CorruptIndexError(f"{path} is not a version {VERSION} {FORMAT}")
        banks = []
        for b in manifest["banks"]:
            info = BankInfo(int(b["bank_id"]), str(b["name"]), int(b["threshold"]),
                            bool(b["allow_list"]))
            d = path / f"bank-{info.bank_id}"
            entries = np.load(d / "entries.npy", mmap_mode="r", allow_pickle=False)
            fps = np.load(d / "fps.npy", mmap_mode="r", allow_pickle=False)
            if (entries.ndim != 1 or entries.shape != fps.shape
                    or entries.dtype != np.int64 or fps.dtype != np.int64):
                raise CorruptIndexError(f"{d} has inconsistent entry arrays")
            banks.append(MappedBank(
                info, PDQIndex.open_detached(d / "pdq", threshold=info.threshold),
                PDQIndex.open_detached(d / "vpdq", threshold=info.threshold), entries, fps))
        if sum(b.entry_ids.size for b in banks) != int(manifest["rows"]):
            raise CorruptIndexError(f"{path} holds other rows than its manifest says")
        return MappedSnapshot(path, int(manifest["seq"]), banks, manifest.get("change"))
    except CorruptIndexError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptIndexError(f"snapshot {path} is damaged: {exc}") from exc
