"""Crawl state that survives an interruption: which media were fetched, with their validators
and fingerprints, so a resumed or repeated crawl does not download unchanged media again.

Only URLs, HTTP validators and fingerprints are stored — never media bytes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS media (
    url TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    sha256 TEXT,
    fingerprint TEXT,
    fetched_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class KnownMedia:
    url: str
    etag: str | None
    last_modified: str | None
    sha256: str | None
    fingerprint: dict[str, Any] | None
    fetched_at: float


class MediaState:
    """A small SQLite file; one writer (the crawl process)."""

    def __init__(self, path: str | Path | None) -> None:
        self._db = sqlite3.connect(":memory:" if path is None else str(path))
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def get(self, url: str) -> KnownMedia | None:
        row = self._db.execute(
            "SELECT url, etag, last_modified, sha256, fingerprint, fetched_at "
            "FROM media WHERE url=?",
            (url,),
        ).fetchone()
        if row is None:
            return None
        return KnownMedia(row[0], row[1], row[2], row[3], json.loads(row[4]) if row[4] else None,
                          row[5])

    def put(self, url: str, *, etag: str | None, last_modified: str | None, sha256: str | None,
            fingerprint: dict[str, Any] | None) -> None:
        self._db.execute(
            "INSERT INTO media (url, etag, last_modified, sha256, fingerprint, fetched_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(url) DO UPDATE SET etag=excluded.etag, "
            "last_modified=excluded.last_modified, sha256=excluded.sha256, "
            "fingerprint=excluded.fingerprint, fetched_at=excluded.fetched_at",
            (url, etag, last_modified, sha256, json.dumps(fingerprint) if fingerprint else None,
             time.time()),
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()
