"""Scans started from the staff pages ("scan now" on a source or a case) and the checks of
links victims report, as background tasks with their progress stored on a `ScanRun`.

Starting one is a durable transaction that locks the source (or the case) row, refuses a
second scan while one is queued or running, and enqueues the task after commit. The task
claims the run (queued → running) under a lock, so a task delivered twice runs it once, and
writes its counters as it goes (at most once a second), then the result.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from anshim.cases.models import Case
from anshim.cases.services import audit
from anshim.erasure.models import (
    LinkOrigin,
    LinkResult,
    MonitoredSource,
    ReportedLink,
    ScanKind,
    ScanRun,
    ScanStatus,
    SightingStatus,
)
from anshim.erasure.scan import ScanReport, run_scan
from anshim.erasure.services import actor_or_none, require_manage_erasure

ACTIVE = (ScanStatus.QUEUED, ScanStatus.RUNNING)
#: Seconds between two progress writes.
PROGRESS_EVERY = 1.0
#: A case scan follows links one step from the pages it starts on.
CASE_DEPTH = 1
MAX_LINKS = 20
_URL_RE = re.compile(r"https?://[^\s<>\"'()\[\]{}]+", re.IGNORECASE)
SCAN_STARTED = "erasure.scan.started"
LINK_ADDED = "erasure.link.added"


def _enqueue(run_id: int) -> None:
    from anshim.erasure.tasks import run_scan_now

    run_scan_now.enqueue(run_id)


def _already(qs: Any) -> None:
    if qs.filter(status__in=ACTIVE).exists():
        raise ValidationError(_("A scan is already under way; its progress is shown below."),
                              code="scan_running")


def start_source_scan(source: MonitoredSource, *, actor: Any, request: Any = None) -> ScanRun:
    require_manage_erasure(actor)
    with transaction.atomic(durable=True):
        MonitoredSource.objects.select_for_update().get(pk=source.pk)
        _already(ScanRun.objects.filter(source=source))
        run = ScanRun.objects.create(kind=ScanKind.SOURCE, source=source,
                                     requested_by=actor_or_none(actor))
        audit(actor=actor, action=SCAN_STARTED, target=run, request=request,
              reason=ScanKind.SOURCE)
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def scheduled_source_run(source_id: int) -> ScanRun | None:
    """A queued run for the schedule (None when the source is gone, off, or being scanned)."""
    with transaction.atomic(durable=True):
        source = MonitoredSource.objects.select_for_update().filter(pk=source_id).first()
        if source is None or ScanRun.objects.filter(source=source, status__in=ACTIVE).exists():
            return None
        return ScanRun.objects.create(kind=ScanKind.SOURCE, source=source)


def case_seeds(case: Case) -> list[str]:
    """Where a case scan looks: the links reported on the case and the pages where its
    sightings were found (not rejected, not removed)."""
    links = list(ReportedLink.objects.filter(case=case).values_list("url", flat=True))
    pages = (case.sightings.exclude(status__in=[SightingStatus.REJECTED, SightingStatus.REMOVED])
             .values_list("page_url", flat=True).distinct())
    return list(dict.fromkeys([*links, *pages]))


def start_case_scan(case: Case, *, actor: Any, request: Any = None,
                    kind: str = ScanKind.CASE) -> ScanRun:
    require_manage_erasure(actor)
    with transaction.atomic(durable=True):
        Case.objects.select_for_update(no_key=True).get(pk=case.pk)
        _already(ScanRun.objects.filter(case=case))
        if not case_seeds(case):
            raise ValidationError(_("This case has no links or sightings to scan yet: add a "
                                    "link first."), code="nothing_to_scan")
        run = ScanRun.objects.create(kind=kind, case=case, requested_by=actor_or_none(actor))
        audit(actor=actor, action=SCAN_STARTED, target=run, case=case, request=request,
              reason=kind)
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


# --- Reported links ---------------------------------------------------------------------------


def extract_urls(text: str) -> list[str]:
    """The http(s) addresses in free text, in order, without trailing punctuation."""
    urls = [m.group(0).rstrip(".,;:!?\u3002\uff0c") for m in _URL_RE.finditer(text or "")]
    return list(dict.fromkeys(u for u in urls if len(u) <= 2000))[:MAX_LINKS]


def add_links(case: Case, urls: Iterable[str], *, origin: str, actor: Any = None,
              request: Any = None) -> list[ReportedLink]:
    """Store new links on the case (known ones are skipped) and check them once this commits.

    Runs in the caller's transaction (the portal's report or message commits with its links)."""
    added = []
    with transaction.atomic():
        for url in urls:
            link, created = ReportedLink.objects.get_or_create(
                case=case, url=url, defaults={"origin": origin,
                                              "added_by": actor_or_none(actor)})
            if created:
                added.append(link)
        if added:
            audit(actor=actor_or_none(actor), action=LINK_ADDED, target=case, case=case,
                  request=request, reason=f"{origin}:{len(added)}")
            case_id = case.pk
            transaction.on_commit(lambda: check_links_soon(case_id))
    return added


def check_links_soon(case_id: int) -> ScanRun | None:
    """Queue a check of the case's links not yet checked (none while a scan of the case is
    under way: that scan's end checks them)."""
    with transaction.atomic(durable=True):
        case = Case.objects.select_for_update(no_key=True).get(pk=case_id)
        if ScanRun.objects.filter(case=case, status__in=ACTIVE).exists():
            return None
        if not ReportedLink.objects.filter(case=case, result=LinkResult.PENDING).exists():
            return None
        run = ScanRun.objects.create(kind=ScanKind.LINKS, case=case)
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def add_staff_link(case: Case, url: str, *, actor: Any, request: Any = None) -> ReportedLink:
    require_manage_erasure(actor)
    urls = extract_urls(url)
    if len(urls) != 1 or urls[0] != url.strip():
        raise ValidationError(_("Give one http(s) address."), code="bad_url")
    with transaction.atomic(durable=True):
        added = add_links(case, urls, origin=LinkOrigin.STAFF, actor=actor, request=request)
    if not added:
        raise ValidationError(_("This address is already on the case."), code="known")
    return added[0]


# --- The task -----------------------------------------------------------------------------------


def _private_hosts() -> list[str]:
    # A case has no source of its own: the hosts specialists allowed on any source apply.
    hosts: list[str] = []
    for source in MonitoredSource.objects.exclude(allowed_private_hosts=""):
        hosts.extend(source.private_host_list)
    return sorted(set(hosts))


def _claim(run_id: int) -> ScanRun | None:
    with transaction.atomic(durable=True):
        run = (ScanRun.objects.select_for_update(of=("self",)).select_related("source", "case")
               .filter(pk=run_id).first())
        if run is None or run.status != ScanStatus.QUEUED:
            return None
        run.status, run.started_at = ScanStatus.RUNNING, timezone.now()
        run.save(update_fields=["status", "started_at"])
    return run


def _write_counts(run: ScanRun, report: ScanReport, **extra: Any) -> None:
    ScanRun.objects.filter(pk=run.pk).update(
        pages=report.pages, media=report.media, matches=len(report.matches),
        new_sightings=sum(1 for m in report.matches if m.new), errors=report.errors, **extra)


def execute(run_id: int) -> str:
    """Run a queued scan; returns its final status (or "skipped" when it was not queued)."""
    run = _claim(run_id)
    if run is None:
        return "skipped"
    last = [0.0]

    def progress(report: ScanReport) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            _write_counts(run, report)

    report = ScanReport()
    try:
        if run.source is not None:
            src = run.source
            report = run_scan(src.seeds.split(), depth=src.depth,
                              per_host_rate=src.per_host_rate,
                              per_host_concurrency=src.per_host_concurrency,
                              allowed_domains=src.allowed_domains.split(),
                              workers=settings.ANSHIM_SCAN_WORKERS,
                              allowed_private_hosts=src.private_host_list,
                              on_progress=progress)
        else:
            assert run.case is not None
            seeds = (list(ReportedLink.objects.filter(case=run.case, result=LinkResult.PENDING)
                          .values_list("url", flat=True)) if run.kind == ScanKind.LINKS
                     else case_seeds(run.case))
            report = run_scan(seeds, depth=0 if run.kind == ScanKind.LINKS else CASE_DEPTH,
                              allowed_private_hosts=_private_hosts(), on_progress=progress,
                              workers=1)
            _record_link_results(run, seeds, report)
    except Exception as exc:  # the run must end: a crash anywhere is its result
        _write_counts(run, report, status=ScanStatus.FAILED, finished_at=timezone.now(),
                      failure=type(exc).__name__[:100])
        if run.source is not None:
            MonitoredSource.objects.filter(pk=run.source.pk).update(last_scan=run)
        raise
    finished = timezone.now()
    _write_counts(run, report, status=ScanStatus.DONE, finished_at=finished)
    if run.source is not None:
        MonitoredSource.objects.filter(pk=run.source.pk).update(last_run_at=finished,
                                                                last_scan=run)
    elif run.case is not None and ReportedLink.objects.filter(
            case=run.case, result=LinkResult.PENDING).exists():
        check_links_soon(run.case.pk)  # links added while it ran
    return ScanStatus.DONE


def _record_link_results(run: ScanRun, seeds: list[str], report: ScanReport) -> None:
    assert run.case is not None
    now = timezone.now()
    with transaction.atomic(durable=True):
        links = list(ReportedLink.objects.select_for_update()
                     .filter(case=run.case, url__in=seeds).order_by("pk"))
        for link in links:
            hits = sum(1 for m in report.matches if link.url in (m.page_url, m.media_url))
            link.matches = hits
            link.result = (LinkResult.MATCHED if hits else LinkResult.UNREACHABLE
                           if link.url in report.failed_urls else LinkResult.NO_MATCH)
            link.checked_at, link.last_scan = now, run
            link.save(update_fields=["matches", "result", "checked_at", "last_scan"])
