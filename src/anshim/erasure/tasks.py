"""Background jobs (django.tasks): scheduled monitoring, verification, re-sending notices.

A scheduler (cron or `anshim erasure_tick` style) enqueues `erasure_tick` periodically; each
job runs the same functions as the commands.
"""

from __future__ import annotations

from typing import Any

from django.tasks import task
from django.utils import timezone

from anshim.erasure.models import MonitoredSource


@task()
def scan_source(source_id: int) -> dict[str, Any]:
    """The scheduled scan of a source, recorded as a `ScanRun` like "scan now" (skipped while
    one is under way)."""
    from anshim.erasure.scan_now import execute, scheduled_source_run

    run = scheduled_source_run(source_id)
    if run is None:
        return {"skipped": True}
    execute(run.pk)
    run.refresh_from_db()
    return {"pages": run.pages, "media": run.media, "matches": run.matches}


@task()
def run_scan_now(run_id: int) -> str:
    """A scan started from the staff pages, or a check of reported links."""
    from anshim.erasure.scan_now import execute

    return execute(run_id)


@task()
def verify_sightings() -> dict[str, Any]:
    from anshim.erasure.verification import verify_open_sightings

    r = verify_open_sightings()
    return {"checked": r.checked, "removed": len(r.removed), "escalated": len(r.escalated)}


@task()
def resend_requests() -> int:
    """Re-send what is due; also queues again deliveries whose task was lost."""
    from anshim.erasure.takedowns import resend_due_requests

    return len(resend_due_requests())


@task()
def deliver_takedown(delivery_id: int) -> str:
    """Hand one takedown notice to its platform (retries re-enqueue themselves with backoff)."""
    from anshim.erasure.takedowns import run_delivery

    return run_delivery(delivery_id)


def due_sources() -> list[MonitoredSource]:
    now = timezone.now()
    return [s for s in MonitoredSource.objects.filter(enabled=True)
            if s.last_run_at is None
            or (now - s.last_run_at).total_seconds() >= s.every_minutes * 60]


@task()
def build_match_snapshot() -> dict[str, Any]:
    """Build the bank matcher's snapshot (`ANSHIM_MATCH_SNAPSHOT_DIR`) from the database: the
    processes that start afterwards map it and replay only the changes after its checkpoint;
    running ones keep matching from their own state meanwhile (no pause)."""
    from django.conf import settings

    from anshim.erasure.bank_store import OrmBankStore
    from anshim.matching.bank_snapshot import build_snapshot

    root = settings.ANSHIM_MATCH_SNAPSHOT_DIR
    if root is None:
        return {"skipped": True}
    info = build_snapshot(OrmBankStore(), root)
    return {"seq": info.seq, "rows": info.rows, "seconds": round(info.seconds, 1)}


@task()
def erasure_tick() -> int:
    """Enqueue the scans that are due, verification and re-sending (and the matcher's
    snapshot, when one is configured)."""
    from django.conf import settings

    sources = due_sources()
    for source in sources:
        scan_source.enqueue(source.pk)
    verify_sightings.enqueue()
    resend_requests.enqueue()
    if settings.ANSHIM_MATCH_SNAPSHOT_DIR is not None:
        build_match_snapshot.enqueue()
    return len(sources)
