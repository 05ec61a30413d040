"""A scan: crawl from seeds, match every media fingerprint against the banks, record sightings
with signed evidence. `anshim scan` and the scheduled monitoring jobs both run `run_scan`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from anshim.crawl import CrawlConfig, iter_crawl
from anshim.crawl.netguard import HostPolicy
from anshim.erasure.fetch import fetch_page_html
from anshim.erasure.matcher import MatchResult, get_matcher
from anshim.erasure.sightings import Observation, record_sighting
from anshim.fingerprint.robust_strategy import QueryHash
from anshim.fingerprint.types import ImageFingerprint, VideoFingerprint, VpdqFrame

_BATCH = 64


def fingerprint_from_record(rec: dict[str, Any]) -> ImageFingerprint | VideoFingerprint | None:
    """The engine's fingerprint rebuilt from a crawl media record (None: nothing to match)."""
    if rec.get("error") or rec.get("gone") or not rec.get("sha256"):
        return None
    if rec.get("pdq"):
        return ImageFingerprint(
            md5=rec.get("md5", ""), sha256=rec["sha256"], pdq=rec["pdq"],
            quality=int(rec.get("quality", 0)), width=int(rec.get("width", 0)),
            height=int(rec.get("height", 0)), format=str(rec.get("format", "")),
            dihedral=rec.get("dihedral"))
    frames = rec.get("vpdq") or rec.get("frames")
    if frames:
        return VideoFingerprint(
            md5=rec.get("md5", ""), sha256=rec["sha256"],
            frames=tuple(VpdqFrame(int(f["frame_number"]), int(f["quality"]), f["pdq"],
                                   float(f.get("timestamp", 0))) for f in frames),
            width=int(rec.get("width", 0)), height=int(rec.get("height", 0)),
            frame_rate=float(rec.get("frame_rate", 0)), duration=float(rec.get("duration", 0)),
            format=str(rec.get("format", "")))
    return None


def robust_queries_from_record(rec: dict[str, Any]) -> list[QueryHash]:
    """Robust query hashes a crawl media record may carry (``"robust": [{"pdq", "quality",
    "strategy"}, …]``, e.g. `anshim.erasure.matcher.robust_queries` run where the bytes were);
    malformed items are skipped."""
    out: list[QueryHash] = []
    for item in rec.get("robust") or []:
        try:
            out.append(QueryHash(str(item["pdq"]).lower(), int(item["quality"]),
                                 str(item["strategy"])))
        except (KeyError, TypeError, ValueError):
            continue
    return out


@dataclass
class ScanMatch:
    page_url: str
    media_url: str
    match: MatchResult
    sighting_id: int | None = None
    new: bool = False
    reupload: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"page_url": self.page_url, "media_url": self.media_url,
                "bank": self.match.bank, "entry": self.match.entry_id,
                "case": self.match.case_code, "kind": self.match.kind,
                "strategy": self.match.strategy, "distance": self.match.distance,
                "sighting": self.sighting_id,
                "new": self.new, "reupload": self.reupload}


@dataclass
class ScanReport:
    pages: int = 0
    media: int = 0
    errors: int = 0
    matches: list[ScanMatch] = field(default_factory=list)
    #: URLs the crawl could not fetch (error records).
    failed_urls: set[str] = field(default_factory=set)


def match_records(records: Iterable[dict[str, Any]], report: ScanReport,
                  ) -> Iterator[tuple[dict[str, Any], MatchResult]]:
    """Batch the media records through the bank matcher; yield (record, match) pairs."""
    batch: list[tuple[dict[str, Any], ImageFingerprint | VideoFingerprint]] = []

    def flush() -> Iterator[tuple[dict[str, Any], MatchResult]]:
        # Images' robust hashes and videos' border-trimmed frames, made by the worker that
        # held the bytes (`anshim.crawl.media.fingerprint_media`).
        extra = [robust_queries_from_record(rec) for rec, _ in batch]
        results = get_matcher().match_fingerprints([fp for _, fp in batch], extra)
        for (rec, _), matches in zip(batch, results, strict=True):
            for m in matches:
                yield rec, m
        batch.clear()

    for rec in records:
        kind = rec.get("type")
        if kind == "page":
            report.pages += 1
        elif kind == "error":
            report.errors += 1
            if rec.get("url"):
                report.failed_urls.add(str(rec["url"]))
        elif kind == "media":
            report.media += 1
            fp = fingerprint_from_record(rec)
            if fp is not None:
                batch.append((rec, fp))
                if len(batch) >= _BATCH:
                    yield from flush()
    if batch:
        yield from flush()


def run_scan(seeds: Iterable[str], *, depth: int = 1, per_host_rate: float = 4.0,
             per_host_concurrency: int = 4, allowed_domains: Iterable[str] = (),
             state_path: str | None = None, record: bool = True,
             records: Iterable[dict[str, Any]] | None = None,
             fetch_html: bool = True, workers: int = 1,
             allowed_private_hosts: Iterable[str] = (),
             on_progress: Callable[[ScanReport], None] | None = None) -> ScanReport:
    """Crawl and match. With `record`, each match becomes a sighting with signed evidence.

    `records` replaces the crawl (a Ray job passes the records its workers produced).
    `workers` > 1 fingerprints the media in that many processes (`CrawlConfig.workers`).
    Loopback and private addresses are refused unless named in `allowed_private_hosts`.
    `on_progress` is called with the report as it grows (after each record; throttle there).
    """
    allowed_private_hosts = tuple(allowed_private_hosts)
    policy = HostPolicy.allowing(allowed_private_hosts)
    if records is None:
        config = CrawlConfig(seeds=tuple(seeds), depth=depth, per_host_rate=per_host_rate,
                             per_host_concurrency=per_host_concurrency,
                             allowed_domains=tuple(allowed_domains), state_path=state_path,
                             workers=workers, allowed_private_hosts=allowed_private_hosts)
        records = iter_crawl(config)
    report = ScanReport()
    html_cache: dict[str, str] = {}
    if on_progress is not None:
        records = _reporting(records, report, on_progress)
    for rec, match in match_records(records, report):
        found = ScanMatch(rec["page_url"], rec["media_url"], match)
        if record:
            page = rec["page_url"]
            if fetch_html and page not in html_cache and page != rec["media_url"]:
                html_cache[page] = fetch_page_html(page, policy=policy)
            obs = Observation(page_url=page, media_url=rec["media_url"],
                              http_status=rec.get("http_status"), headers=rec.get("headers") or {},
                              sha256=rec.get("sha256", ""), fingerprint=rec.get("pdq", ""),
                              page_html=html_cache.get(page, ""))
            sighting, created = record_sighting(obs, match)
            found.sighting_id, found.new, found.reupload = (sighting.pk, created,
                                                            sighting.is_reupload)
        report.matches.append(found)
        if on_progress is not None:
            on_progress(report)
    if on_progress is not None:
        on_progress(report)
    return report


def _reporting(records: Iterable[dict[str, Any]], report: ScanReport,
               on_progress: Callable[[ScanReport], None]) -> Iterator[dict[str, Any]]:
    # Resumed once `match_records` has counted the previous record: the report is current.
    for rec in records:
        yield rec
        on_progress(report)
