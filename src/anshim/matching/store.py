"""The matching core's storage interface (issue 15), in the spirit of hasher-matcher-actioner's
``IBankStore`` / ``ISignalTypeIndexStore``: banks, their entries' fingerprints and a change log
with a sequence number that only grows.

`BankStore` is what `anshim.matching.core.MatchingCore` reads; it never writes. Two
implementations pass one contract suite (tests/matching/test_store_contract.py):
`MemoryBankStore` here (engine tests, `make bench-robustness`) and the ORM store of the erasure
app (`anshim.erasure.bank_store.OrmBankStore`). No Django here.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from anshim.matching.exact_index import ExactIndex

#: The change-log operations (the erasure app's ``ChangeOp`` values).
ADD: Literal["add"] = "add"
WITHDRAW: Literal["withdraw"] = "withdraw"
CONFIG: Literal["config"] = "config"
ChangeKind = Literal["add", "withdraw", "config"]
#: Perceptual fingerprint kinds held in the core's PDQ indexes; exact kinds looked up.
PDQ, VPDQ, MD5, SHA256 = "pdq", "vpdq", "md5", "sha256"
PERCEPTUAL_KINDS = (PDQ, VPDQ)
EXACT_KINDS = (SHA256, MD5)


@dataclass(frozen=True, slots=True)
class BankInfo:
    """An enabled bank as the core sees it."""

    bank_id: int
    name: str
    threshold: int
    #: Allow-list banks suppress matches instead of producing them.
    allow_list: bool = False


@dataclass(frozen=True, slots=True)
class EntryFingerprint:
    """One perceptual fingerprint row of a bank entry (its id is the core's index id)."""

    fp_id: int
    entry_id: int
    kind: str  # PDQ or VPDQ
    value: str  # 64 hex
    quality: int | None
    variant: str = "original"


@dataclass(frozen=True, slots=True)
class Change:
    """One change-log record: an entry added or withdrawn, or a bank's settings changed."""

    seq: int
    bank_id: int
    entry_id: int | None
    op: ChangeKind


@dataclass(frozen=True, slots=True)
class BankLoad:
    """A consistent read: the enabled banks and their fingerprints as of change `seq`
    (no change after `seq` is in it, every change up to `seq` is)."""

    seq: int
    banks: list[BankInfo]
    fingerprints: dict[int, list[EntryFingerprint]]  # bank id -> rows


@dataclass(frozen=True, slots=True)
class LiveFingerprint:
    """A fingerprint that still exists in an enabled bank, with what a match reports."""

    fp_id: int
    entry_id: int
    bank_id: int
    bank_name: str
    threshold: int
    allow_list: bool
    case_code: str | None
    label: str
    value: str
    variant: str
    quality: int | None


@dataclass(frozen=True, slots=True)
class ExactHit:
    """A stored MD5 / SHA-256 equal to a queried one, in an enabled bank."""

    kind: str  # MD5 or SHA256
    value: str
    entry_id: int
    bank_id: int
    bank_name: str
    allow_list: bool
    case_code: str | None
    label: str


class BankStore(Protocol):
    """What the matching core reads. Every method reads the current committed state."""

    def latest_seq(self) -> int:
        """The last change-log sequence number (0 when the log is empty)."""
        ...

    def load(self, bank_ids: Collection[int] | None = None) -> BankLoad:
        """The enabled banks (all, or those of `bank_ids`) with their perceptual rows."""
        ...

    def changes_after(self, seq: int, upto: int) -> list[Change]:
        """Change-log records with `seq` < record seq <= `upto`, in order."""
        ...

    def fingerprints_of(self, bank_id: int, entry_ids: Sequence[int]) -> list[EntryFingerprint]:
        """The perceptual rows of these entries of a bank (those that still exist)."""
        ...

    def live(self, fp_ids: Collection[int]) -> dict[int, LiveFingerprint]:
        """The re-check behind every perceptual hit: which of these fingerprints still exist
        in an enabled bank (withdrawals and disabled banks take effect at once)."""
        ...

    def exact(self, pairs: Collection[tuple[str, str]]) -> list[ExactHit]:
        """Stored (kind, digest) rows equal to any of `pairs`, in enabled banks."""
        ...

    def video_frames(self, entry_ids: Collection[int], min_quality: int) -> dict[int, int]:
        """Distinct ``original`` vPDQ frames of quality >= `min_quality` per video entry."""
        ...


# --- the in-memory implementation ------------------------------------------------------------


@dataclass
class _MemEntry:
    bank_id: int
    case_code: str | None
    label: str
    fingerprints: list[EntryFingerprint]
    #: exact digest fp id -> (kind, value)
    exact: dict[int, tuple[str, str]] = field(default_factory=dict)


class MemoryBankStore:
    """A `BankStore` in memory, writable (engine tests, benchmarks). Thread-safe.

    Exact digests are looked up through `ExactIndex` (one per kind), as the ORM store does
    through the database's (kind, value) index.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._banks: dict[int, BankInfo] = {}
        self._enabled: dict[int, bool] = {}
        self._entries: dict[int, _MemEntry] = {}
        self._log: list[Change] = []
        self._next_id = 1
        self._exact = {MD5: ExactIndex("md5"), SHA256: ExactIndex("sha256")}

    def _new_id(self) -> int:
        ident = self._next_id
        self._next_id += 1
        return ident

    def _log_change(self, bank_id: int, entry_id: int | None, op: ChangeKind) -> None:
        self._log.append(Change(len(self._log) + 1, bank_id, entry_id, op))

    # --- writing (not part of BankStore) ---

    def add_bank(self, name: str, *, threshold: int = 31, allow_list: bool = False) -> int:
        with self._lock:
            bank_id = self._new_id()
            self._banks[bank_id] = BankInfo(bank_id, name, threshold, allow_list)
            self._enabled[bank_id] = True
            self._log_change(bank_id, None, CONFIG)
            return bank_id

    def configure(self, bank_id: int, *, threshold: int | None = None,
                  enabled: bool | None = None) -> None:
        with self._lock:
            info = self._banks[bank_id]
            if threshold is not None:
                self._banks[bank_id] = BankInfo(bank_id, info.name, threshold, info.allow_list)
            if enabled is not None:
                self._enabled[bank_id] = enabled
            self._log_change(bank_id, None, CONFIG)

    def add_entry(self, bank_id: int, perceptual: Iterable[tuple[str, str, int | None, str]],
                  *, md5: str = "", sha256: str = "", case_code: str | None = None,
                  label: str = "") -> int:
        """Add an entry: `perceptual` is (kind, hex, quality, variant) per row."""
        with self._lock:
            if bank_id not in self._banks:
                raise KeyError(f"no bank {bank_id}")
            entry_id = self._new_id()
            rows = [EntryFingerprint(self._new_id(), entry_id, kind, value.lower(), quality,
                                     variant) for kind, value, quality, variant in perceptual]
            entry = _MemEntry(bank_id, case_code, label, rows)
            for kind, value in ((MD5, md5), (SHA256, sha256)):
                if value:
                    fp_id = self._new_id()
                    self._exact[kind].add([fp_id], [value.lower()])
                    entry.exact[fp_id] = (kind, value.lower())
            self._entries[entry_id] = entry
            self._log_change(bank_id, entry_id, ADD)
            return entry_id

    def withdraw(self, entry_id: int) -> None:
        with self._lock:
            entry = self._entries.pop(entry_id)
            for fp_id, (kind, _) in entry.exact.items():
                self._exact[kind].remove([fp_id])
            self._log_change(entry.bank_id, entry_id, WITHDRAW)

    # --- BankStore ---

    def latest_seq(self) -> int:
        with self._lock:
            return len(self._log)

    def load(self, bank_ids: Collection[int] | None = None) -> BankLoad:
        with self._lock:
            banks = [b for b in self._banks.values() if self._enabled[b.bank_id]
                     and (bank_ids is None or b.bank_id in bank_ids)]
            wanted = {b.bank_id for b in banks}
            rows: dict[int, list[EntryFingerprint]] = {b.bank_id: [] for b in banks}
            for entry in self._entries.values():
                if entry.bank_id in wanted:
                    rows[entry.bank_id].extend(entry.fingerprints)
            return BankLoad(len(self._log), banks, rows)

    def changes_after(self, seq: int, upto: int) -> list[Change]:
        with self._lock:
            return self._log[max(seq, 0):max(upto, 0)]

    def fingerprints_of(self, bank_id: int, entry_ids: Sequence[int]) -> list[EntryFingerprint]:
        with self._lock:
            return [fp for e in entry_ids if (entry := self._entries.get(e)) is not None
                    and entry.bank_id == bank_id for fp in entry.fingerprints]

    def live(self, fp_ids: Collection[int]) -> dict[int, LiveFingerprint]:
        with self._lock:
            wanted = set(fp_ids)
            out: dict[int, LiveFingerprint] = {}
            for entry in self._entries.values():
                if not self._enabled[entry.bank_id]:
                    continue
                bank = self._banks[entry.bank_id]
                for fp in entry.fingerprints:
                    if fp.fp_id in wanted:
                        out[fp.fp_id] = LiveFingerprint(
                            fp.fp_id, fp.entry_id, bank.bank_id, bank.name, bank.threshold,
                            bank.allow_list, entry.case_code, entry.label, fp.value,
                            fp.variant, fp.quality)
            return out

    def exact(self, pairs: Collection[tuple[str, str]]) -> list[ExactHit]:
        with self._lock:
            owner = {fp_id: (entry_id, e) for entry_id, e in self._entries.items()
                     for fp_id in e.exact}
            out: list[ExactHit] = []
            for kind in EXACT_KINDS:
                values = sorted({v for k, v in pairs if k == kind})
                if not values:
                    continue
                for value, ids in zip(values, self._exact[kind].lookup(values), strict=True):
                    for fp_id in ids:
                        entry_id, entry = owner[fp_id]
                        if not self._enabled[entry.bank_id]:
                            continue
                        bank = self._banks[entry.bank_id]
                        out.append(ExactHit(kind, value, entry_id, bank.bank_id, bank.name,
                                            bank.allow_list, entry.case_code, entry.label))
            return out

    def video_frames(self, entry_ids: Collection[int], min_quality: int) -> dict[int, int]:
        with self._lock:
            out: dict[int, int] = {}
            for entry_id in entry_ids:
                entry = self._entries.get(entry_id)
                if entry is None:
                    continue
                frames = {fp.value for fp in entry.fingerprints if fp.kind == VPDQ
                          and fp.variant == "original"
                          and (fp.quality is None or fp.quality >= min_quality)}
                if frames:
                    out[entry_id] = len(frames)
            return out
