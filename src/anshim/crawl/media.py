"""Fetching and fingerprinting one media file: the work of the crawl's fingerprinting workers.

Kept apart from the spider so that a worker process imports the engine and the plain HTTP
client only, not Scrapy and Twisted (a worker starts in a fraction of the time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anshim.crawl.fetch import FetchError, FetchRequest, fetch

Fingerprinter = Callable[[bytes, float], dict[str, Any]]


def warm_up() -> None:
    """Load the fingerprint engine (a worker's first task, before any media arrives)."""
    import anshim.fingerprint.analyze  # noqa: F401


def fingerprint_media(data: bytes, seconds_per_hash: float) -> dict[str, Any]:
    """Fingerprint bytes with the engine; errors become a record, never an exception.

    Images also carry their robust query hashes (other orientations, border-trimmed, the
    picture inside a screenshot), videos their border-trimmed frames: only this process holds
    the bytes, so they are made here, from the same decode as the fingerprint
    (`anshim.fingerprint.analyze`).
    """
    from anshim.fingerprint import FingerprintError, ImageFingerprint
    from anshim.fingerprint.analyze import analyze_bytes

    try:
        result = analyze_bytes(data, seconds_per_hash=seconds_per_hash)
    except FingerprintError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    record = result.fingerprint.to_dict()
    if isinstance(result.fingerprint, ImageFingerprint) or result.queries:
        record["robust"] = [{"pdq": q.pdq, "quality": q.quality, "strategy": q.strategy}
                            for q in result.queries]
    return record


def fetch_media(request: FetchRequest, seconds_per_hash: float,
                fingerprint: Fingerprinter = fingerprint_media) -> dict[str, Any]:
    """Fetch one media URL (`anshim.crawl.fetch`: SSRF guard, limits) and fingerprint it here.

    Returns an outcome record for the spider, never raises for a failed fetch:
    ``{"outcome": "media", "http_status", "headers", "sha256", "bytes", **fingerprint}``,
    ``{"outcome": "unchanged"|"gone", "http_status"}`` or
    ``{"outcome": "error", "url", "error", "message"}``. The bytes never leave this process.
    """
    try:
        response = fetch(request)
    except FetchError as exc:
        return {"outcome": "error", "url": exc.url, "error": exc.kind,
                "message": exc.message[:300]}
    if response.status == 304:
        return {"outcome": "unchanged", "http_status": 304}
    if response.status in (404, 410):
        return {"outcome": "gone", "http_status": response.status}
    fp = fingerprint(response.body, seconds_per_hash)
    return {"outcome": "media", "http_status": response.status, "headers": response.headers,
            "sha256": fp.get("sha256") or _sha256(response.body), "bytes": len(response.body),
            **fp}


def _sha256(data: bytes) -> str:
    # Only for bytes the engine refused (its record has no hash): the evidence still names
    # the file.
    import hashlib

    return hashlib.sha256(data).hexdigest()


def fetch_robots(request: FetchRequest) -> str | None:
    """A site's robots.txt text (None: none, or it could not be fetched: no rules)."""
    try:
        response = fetch(request)
    except FetchError:
        return None
    if response.status != 200:
        return None
    return response.body.decode("utf-8", errors="replace")
