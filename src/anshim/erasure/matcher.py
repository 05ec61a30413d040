"""The bank matcher: the matching core (`anshim.matching.core`) over the erasure app's tables.

A thin adapter (issue 15): `BankMatcher` is `MatchingCore` reading the ORM store
(`anshim.erasure.bank_store.OrmBankStore`); this module turns fingerprint-engine results into
the core's `FileQuery` and keeps one matcher per process. Everything about matching — index
lifecycle and replay of the change log, exact and perceptual matching, allow-lists, the
re-check of every hit, the robust strategy rules (`anshim.matching.strategy`) — lives in the
core, the same code `make bench-robustness` measures. See docs/matching.md.

Callers: `anshim match` and the crawl's scan (`match_fingerprints` with robust query hashes),
verification (`match_fingerprint`), the partner lookup (`match_pdq_hashes`,
`match_fingerprints`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from django.conf import settings

from anshim.erasure.bank_store import OrmBankStore
from anshim.fingerprint.errors import FingerprintError
from anshim.fingerprint.types import ImageFingerprint, VideoFingerprint
from anshim.matching.core import MatchingCore, MatchResult, file_query
from anshim.matching.strategy import MIN_QUALITY, QueryHash

__all__ = [
    "BankMatcher",
    "MatchResult",
    "file_query",
    "get_matcher",
    "match_bytes",
    "match_fingerprints",
    "notify_process_matcher",
    "reset_process_matcher",
    "robust_queries",
    "robust_video_queries",
]

Fingerprints = ImageFingerprint | VideoFingerprint


class BankMatcher(MatchingCore):
    """Matches fingerprints against every enabled bank of the database. Thread-safe; one per
    process is enough (see `get_matcher`), but any number may exist: each polls the change
    log on its own."""

    def __init__(self, *, poll_interval: float | None = None, min_quality: int = MIN_QUALITY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if poll_interval is None:
            poll_interval = float(getattr(settings, "ANSHIM_MATCHER_POLL_SECONDS", 0.0))
        super().__init__(OrmBankStore(), poll_interval=poll_interval, min_quality=min_quality,
                         clock=clock,
                         snapshot_root=getattr(settings, "ANSHIM_MATCH_SNAPSHOT_DIR", None))

    def match_fingerprint(self, fp: Fingerprints) -> list[MatchResult]:
        return self.match_fingerprints([fp])[0]

    def match_fingerprints(
        self, fps: Sequence[Fingerprints],
        extra: Sequence[Sequence[QueryHash]] | None = None,
    ) -> list[list[MatchResult]]:
        """Match each fingerprint against every enabled bank; one result list per input.

        `extra` (one list per input) adds robust query hashes of images (`robust_queries`:
        border trim, screenshot) and of videos (`robust_video_queries`: border-trimmed
        frames), searched with the same rules.
        """
        more = extra or [() for _ in fps]
        return self.match_files([file_query(fp, e) for fp, e in zip(fps, more, strict=True)])


def robust_video_queries(data: bytes) -> list[QueryHash]:
    """The robust query frames of a video file (its uniform borders trimmed: strategy
    ``trim``), decoded in memory; the plain frames come from the fingerprint engine. Anything
    without borders, or not decodable, gives none. Decodes the file on its own: the match path
    (`fingerprint_for_matching`) gets the same frames from its one decode."""
    from anshim.fingerprint.robust_video import video_query_frames

    try:
        trimmed = video_query_frames(data).get("trim", [])
    except (FingerprintError, ValueError):
        return []
    return [QueryHash(f.pdq, f.quality, "trim") for f in trimmed]


def robust_queries(data: bytes) -> list[QueryHash]:
    """The robust query hashes of an image file (its 7 other orientations, border trim,
    screenshot), decoded in memory. The plain hash comes from the fingerprint engine; anything
    that is not a decodable still image gives none.
    """
    from anshim.fingerprint.robust_strategy import query_fingerprints

    try:
        return [q for q in query_fingerprints(data) if q.strategy != "original"]
    except (FingerprintError, ValueError):
        return []


# --- the process-wide matcher ---------------------------------------------------------------

_process_matcher: BankMatcher | None = None
_process_lock = threading.Lock()


def get_matcher() -> BankMatcher:
    """This process's matcher (built lazily from the database on its first query)."""
    global _process_matcher
    with _process_lock:
        if _process_matcher is None:
            _process_matcher = BankMatcher()
        return _process_matcher


def notify_process_matcher() -> None:
    if _process_matcher is not None:
        _process_matcher.notify()


def reset_process_matcher() -> None:
    """Forget this process's matcher (tests: each test database starts empty)."""
    global _process_matcher
    with _process_lock:
        _process_matcher = None


def match_fingerprints(fps: Sequence[Fingerprints]) -> list[list[MatchResult]]:
    return get_matcher().match_fingerprints(fps)


def fingerprint_for_matching(data: bytes) -> tuple[Fingerprints, list[QueryHash]]:
    """The fingerprint of `data` (raises FingerprintError) and its robust query hashes, as
    every file-matching path (`match_bytes`, `anshim match`, the crawl's records) searches with
    them. An image or a video is decoded once for both (issue 15 item 5)."""
    from anshim.fingerprint.analyze import analyze_bytes

    analysis = analyze_bytes(data)
    return analysis.fingerprint, list(analysis.queries)


def match_bytes(data: bytes) -> list[MatchResult]:
    """Fingerprint `data` (raises FingerprintError) and match it against every enabled bank."""
    fp, extra = fingerprint_for_matching(data)
    return get_matcher().match_fingerprints([fp], [extra])[0]
