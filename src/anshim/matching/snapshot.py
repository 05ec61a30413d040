"""Snapshots on disk: one directory of ``.npy`` files per generation, memory-mappable.

Layout of an index directory::

    CURRENT                 name of the live generation, replaced atomically
    gen-000007/
        manifest.json       format, sizes, layout, SHA-256 of every array file
        codes.npy ids.npy rows.npy offsets.npy
        changes.log         adds/removals since the snapshot (see changelog)

A writer builds a new generation in a temporary directory, fsyncs it, renames it
into place and then replaces ``CURRENT``; readers that still map the old files keep
working (POSIX keeps unlinked files alive while mapped).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from anshim.matching.errors import CorruptIndexError
from anshim.matching.layout import ChunkLayout, sketches_for
from anshim.matching.segment import Segment, row_bytes_for, sketches_from

FORMAT = "anshim-pdq-index"
#: Version 2 added the posting lists' sketches (an empty array for a compact segment);
#: version 1 snapshots still open (a bank that gets sketches by default then has them
#: rebuilt in memory from the codes, see `segment.sketches_from`).
VERSION = 2
READABLE_VERSIONS = (1, 2)
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
LOG = "changes.log"
#: The arrays of a generation: version 1 wrote the first four, version 2 adds the sketches.
_ARRAYS_V1 = ("codes", "ids", "rows", "offsets")
_ARRAYS = (*_ARRAYS_V1, "sketches")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def generation_name(number: int) -> str:
    return f"gen-{number:06d}"


def read_current(root: Path) -> tuple[int, Path]:
    """Return ``(generation number, directory)`` of the live generation."""
    try:
        name = (root / CURRENT).read_text(encoding="ascii").strip()
    except FileNotFoundError as exc:
        raise CorruptIndexError(f"{root} holds no index ({CURRENT} file missing)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptIndexError(f"cannot read {root / CURRENT}: {exc}") from exc
    if not name.startswith("gen-") or not name[4:].isdigit():
        raise CorruptIndexError(f"{root / CURRENT} names no generation: {name!r}")
    return int(name[4:]), root / name


def write_generation(
    root: Path, segment: Segment, number: int, settings: dict[str, Any] | None = None
) -> Path:
    """Write ``segment`` as generation ``number`` (with an empty log) and make it live.

    ``settings`` (JSON-able, e.g. the bank's default threshold) go into the manifest.
    """
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-gen-", dir=root))
    try:
        files: dict[str, Any] = {}
        for name in _ARRAYS:
            path = tmp / f"{name}.npy"
            array = getattr(segment, name)
            np.save(path, np.ascontiguousarray(array), allow_pickle=False)
            files[name] = {
                "dtype": str(array.dtype),
                "shape": list(array.shape),
                "sha256": _sha256(path),
            }
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "generation": number,
            "count": len(segment),
            "layout": segment.layout.to_json(),
            "offset_base": segment.offset_base.tolist(),
            "files": files,
            "settings": settings or {},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        (tmp / LOG).write_bytes(b"")
        for child in tmp.iterdir():
            with child.open("rb") as fh:
                os.fsync(fh.fileno())
        final = root / generation_name(number)
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        pointer = root / f".{CURRENT}.tmp"
        pointer.write_text(generation_name(number) + "\n", encoding="ascii")
        with pointer.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(pointer, root / CURRENT)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in root.glob("gen-*"):
        if old.name != generation_name(number) and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return final


def read_settings(directory: Path) -> dict[str, Any]:
    """The ``settings`` stored with a generation (empty when none)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        settings = manifest.get("settings", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise CorruptIndexError(f"{directory / MANIFEST} is unreadable: {exc}") from exc
    if not isinstance(settings, dict):
        raise CorruptIndexError(f"{directory / MANIFEST} has malformed settings")
    return settings


def read_generation(directory: Path, *, mmap: bool = True, verify: bool = False) -> Segment:
    """Open a generation; arrays are memory-mapped read-only unless ``mmap`` is false.

    Cheap checks (format, dtypes, shapes, offset sentinels) always run; ``verify``
    also recomputes the SHA-256 of every file (reads everything once).
    """
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CorruptIndexError(f"{directory} has no {MANIFEST}") from exc
    except (OSError, ValueError) as exc:
        raise CorruptIndexError(f"{directory / MANIFEST} is unreadable: {exc}") from exc
    try:
        version = manifest["version"]
        if manifest["format"] != FORMAT or version not in READABLE_VERSIONS:
            raise CorruptIndexError(
                f"{directory} is not a version {VERSION} {FORMAT} snapshot"
            )
        layout = ChunkLayout.from_json(manifest["layout"])
        count = int(manifest["count"])
        offset_base = np.array(manifest["offset_base"], dtype=np.int64)
        files = manifest["files"]
        arrays: dict[str, np.ndarray] = {}
        for name in _ARRAYS if version >= 2 else _ARRAYS_V1:
            path = directory / f"{name}.npy"
            meta = files[name]
            if verify and _sha256(path) != meta["sha256"]:
                raise CorruptIndexError(f"{path} does not match its checksum")
            array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            if str(array.dtype) != meta["dtype"] or list(array.shape) != meta["shape"]:
                raise CorruptIndexError(f"{path} has the wrong dtype or shape")
            arrays[name] = array
    except CorruptIndexError:
        raise
    except (KeyError, TypeError, ValueError, OSError, EOFError) as exc:
        raise CorruptIndexError(f"snapshot {directory} is damaged: {exc}") from exc
    codes, ids, rows, offsets = (arrays[n] for n in _ARRAYS_V1)
    sizes = (np.int64(1) << np.array(layout.widths, dtype=np.int64)) + 1
    expected_base = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    if (
        codes.shape != (count, 4)
        or codes.dtype != np.uint64
        or ids.shape != (count,)
        or ids.dtype not in (np.int32, np.int64)
        or rows.shape != (layout.tables, count * row_bytes_for(count))
        or rows.dtype != np.uint8
        or offsets.shape != (int(sizes.sum()),)
        or offsets.dtype != np.uint32
        or not np.array_equal(offset_base, expected_base)
    ):
        raise CorruptIndexError(f"snapshot {directory} has inconsistent array shapes")
    # Each table's offsets must start at 0 and end at count (cheap: two reads a table).
    if np.any(offsets[offset_base] != 0) or np.any(offsets[offset_base + sizes - 1] != count):
        raise CorruptIndexError(f"snapshot {directory} has damaged posting tables")
    sketches = arrays.get("sketches")
    if sketches is None:  # version 1: sketch the banks that would be sketched today
        sketches = (sketches_from(codes, rows, layout) if sketches_for(count)
                    else np.zeros((layout.tables, 0, 2), dtype=np.uint64))
    elif sketches.shape not in ((layout.tables, count, 2), (layout.tables, 0, 2)) or (
            sketches.dtype != np.uint64):
        raise CorruptIndexError(f"snapshot {directory} has inconsistent array shapes")
    return Segment(codes, ids, rows, offsets, offset_base, layout, sketches)
