"""ExactIndex: exact MD5 / SHA-256 digest lookup (several ids may share a digest).

Sorted arrays (digests ascending; a permutation by id for removals), optionally
memory-mapped from a snapshot, plus an in-memory delta and id tombstones, so adds
and removals need no rebuild; ``save`` writes a compacted snapshot atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from anshim.matching.errors import (
    CorruptIndexError,
    DuplicateIdError,
    MalformedHashError,
    MatchingError,
    UnknownIdError,
)

DIGEST_BYTES = {"md5": 16, "sha256": 32}
_FORMAT = "anshim-exact-index"


def parse_digests(digests: Iterable[str], algorithm: str) -> list[bytes]:
    """Hex digests -> raw bytes; raises MalformedHashError naming the first bad one."""
    size = DIGEST_BYTES[algorithm]
    out: list[bytes] = []
    for i, d in enumerate(digests):
        try:
            raw = bytes.fromhex(d) if isinstance(d, str) and len(d) == 2 * size else b""
        except ValueError:
            raw = b""
        if len(raw) != size:
            raise MalformedHashError(
                f"digest #{i} is not a {algorithm} digest ({2 * size} hex characters): {d!r}"
            )
        out.append(raw)
    return out


class ExactIndex:
    """Exact digest -> ids lookup for one algorithm (``"md5"`` or ``"sha256"``)."""

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in DIGEST_BYTES:
            raise MatchingError(f"unknown algorithm {algorithm!r}; use 'md5' or 'sha256'")
        self.algorithm = algorithm
        self._width = DIGEST_BYTES[algorithm]
        self._set_base(np.zeros(0, dtype=f"S{self._width}"), np.zeros(0, dtype=np.int64))
        self._delta: dict[int, bytes] = {}
        self._by_digest: dict[bytes, set[int]] = {}

    def _set_base(self, digests: NDArray[np.bytes_], ids: NDArray[np.int64]) -> None:
        self._digests = digests
        self._ids = ids
        self._id_order = np.argsort(ids, kind="stable")
        self._ids_sorted = ids[self._id_order]
        self._removed: set[int] = set()

    def __len__(self) -> int:
        return int(self._ids.size) - len(self._removed) + len(self._delta)

    def _in_base(self, ident: int) -> bool:
        pos = int(np.searchsorted(self._ids_sorted, ident))
        return (
            pos < self._ids_sorted.size
            and int(self._ids_sorted[pos]) == ident
            and ident not in self._removed
        )

    def __contains__(self, ident: object) -> bool:
        if not isinstance(ident, int | np.integer):
            return False
        return int(ident) in self._delta or self._in_base(int(ident))

    def add(self, ids: Iterable[int], digests: Iterable[str]) -> None:
        """Add ``(id, digest)`` pairs; DuplicateIdError if an id is held (nothing added)."""
        id_list = [int(i) for i in ids]
        raw = parse_digests(digests, self.algorithm)
        if len(id_list) != len(raw):
            raise MatchingError(f"{len(id_list)} ids but {len(raw)} digests")
        seen: set[int] = set()
        for ident in id_list:
            if ident in seen or ident in self:
                raise DuplicateIdError(f"id {ident} is already in the index")
            seen.add(ident)
        for ident, digest in zip(id_list, raw, strict=True):
            self._delta[ident] = digest
            self._by_digest.setdefault(digest, set()).add(ident)

    def remove(self, ids: Iterable[int]) -> None:
        """Forget ids at once; UnknownIdError if one is not held (nothing removed)."""
        id_list = [int(i) for i in ids]
        if len(set(id_list)) != len(id_list):
            raise DuplicateIdError("an id appears twice in the batch")
        for ident in id_list:
            if ident not in self:
                raise UnknownIdError(f"id {ident} is not in the index")
        for ident in id_list:
            digest = self._delta.pop(ident, None)
            if digest is None:
                self._removed.add(ident)
            else:
                holders = self._by_digest[digest]
                holders.discard(ident)
                if not holders:
                    del self._by_digest[digest]

    def lookup(self, digests: Iterable[str]) -> list[list[int]]:
        """Ids holding each digest exactly (sorted), one list per query in order."""
        raw = parse_digests(digests, self.algorithm)
        if not raw:
            return []
        keys = np.array(raw, dtype=f"S{self._width}")
        lo = np.searchsorted(self._digests, keys, side="left")
        hi = np.searchsorted(self._digests, keys, side="right")
        out: list[list[int]] = []
        for k, digest in enumerate(raw):
            found = [
                i for i in self._ids[lo[k] : hi[k]].tolist() if i not in self._removed
            ]
            found.extend(self._by_digest.get(digest, ()))
            out.append(sorted(found))
        return out

    def save(self, path: str | Path) -> None:
        """Write a compacted snapshot to directory ``path`` (replaced atomically)."""
        root = Path(path)
        keep = np.array([i not in self._removed for i in self._ids.tolist()], dtype=bool)
        ids = np.concatenate(
            [self._ids[keep], np.array(list(self._delta), dtype=np.int64)]
        ).astype(np.int64)
        digests = np.concatenate(
            [self._digests[keep], np.array(list(self._delta.values()), dtype=f"S{self._width}")]
        ).astype(f"S{self._width}")
        order = np.argsort(digests, kind="stable")
        digests, ids = digests[order], ids[order]
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
        try:
            np.save(tmp / "digests.npy", digests, allow_pickle=False)
            np.save(tmp / "ids.npy", ids, allow_pickle=False)
            meta = {"format": _FORMAT, "version": 1, "algorithm": self.algorithm,
                    "count": int(ids.size)}
            (tmp / "manifest.json").write_text(json.dumps(meta), encoding="utf-8")
            for child in tmp.iterdir():
                with child.open("rb") as fh:
                    os.fsync(fh.fileno())
            old = None
            if root.exists():
                old = root.with_name(f".{root.name}.old-{os.getpid()}")
                os.rename(root, old)
            os.rename(tmp, root)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._set_base(digests, ids)
        self._delta.clear()
        self._by_digest.clear()

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = True) -> ExactIndex:
        """Open a snapshot written by ``save`` (memory-mapped unless ``mmap`` is false)."""
        root = Path(path)
        try:
            meta = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
            if meta.get("format") != _FORMAT or meta.get("version") != 1:
                raise CorruptIndexError(f"{root} is not an exact-index snapshot")
            index = cls(meta["algorithm"])
            mode: Literal["r"] | None = "r" if mmap else None
            digests = np.load(root / "digests.npy", mmap_mode=mode, allow_pickle=False)
            ids = np.load(root / "ids.npy", mmap_mode=mode, allow_pickle=False)
        except CorruptIndexError:
            raise
        except (OSError, ValueError, KeyError, TypeError, MatchingError) as exc:
            raise CorruptIndexError(f"exact-index snapshot {root} is damaged: {exc}") from exc
        if (
            digests.dtype != np.dtype(f"S{index._width}")
            or ids.dtype != np.int64
            or digests.shape != (meta["count"],)
            or ids.shape != (meta["count"],)
        ):
            raise CorruptIndexError(f"exact-index snapshot {root} has inconsistent arrays")
        index._set_base(digests, np.asarray(ids))
        return index
