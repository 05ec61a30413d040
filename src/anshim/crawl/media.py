"""Fingerprinting one downloaded media file: the work of the crawl's fingerprinting workers.

Kept apart from the spider so that a worker process imports the engine only, not Scrapy and
Twisted (a worker starts in a fraction of the time).
"""

from __future__ import annotations

from typing import Any


def warm_up() -> None:
    """Load the fingerprint engine (a worker's first task, before any media arrives)."""
    import anshim.fingerprint
    import anshim.fingerprint.robust_strategy  # noqa: F401


def fingerprint_media(data: bytes, seconds_per_hash: float) -> dict[str, Any]:
    """Fingerprint bytes with the engine; errors become a record, never an exception.

    Images also carry their robust query hashes (other orientations, border-trimmed, the
    picture inside a screenshot): only this process holds the bytes, so they are made here.
    """
    from anshim.fingerprint import FingerprintError, ImageFingerprint, fingerprint_bytes
    from anshim.fingerprint.robust_strategy import query_fingerprints

    try:
        fp = fingerprint_bytes(data, seconds_per_hash=seconds_per_hash)
    except FingerprintError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    record = fp.to_dict()
    if isinstance(fp, ImageFingerprint):
        try:
            record["robust"] = [
                {"pdq": q.pdq, "quality": q.quality, "strategy": q.strategy}
                for q in query_fingerprints(data) if q.strategy != "original"
            ]
        except FingerprintError:
            record["robust"] = []
    return record
