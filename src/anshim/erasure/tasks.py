"""Background jobs (django.tasks): scheduled monitoring, verification, re-sending notices.

A scheduler (cron or `anshim erasure_tick` style) enqueues `erasure_tick` periodically; each
job runs the same functions as the commands.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.tasks import task
from django.utils import timezone

from anshim.erasure.models import MonitoredSource


@task()
def scan_source(source_id: int) -> dict[str, Any]:
    from anshim.erasure.scan import run_scan

    source = MonitoredSource.objects.get(pk=source_id)
    report = run_scan(source.seeds.split(), depth=source.depth,
                      per_host_rate=source.per_host_rate,
                      per_host_concurrency=source.per_host_concurrency,
                      allowed_domains=source.allowed_domains.split(),
                      workers=settings.ANSHIM_SCAN_WORKERS,
                      allowed_private_hosts=source.private_host_list)
    source.last_run_at = timezone.now()
    source.save(update_fields=["last_run_at"])
    return {"pages": report.pages, "media": report.media, "matches": len(report.matches)}


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
def erasure_tick() -> int:
    """Enqueue the scans that are due, verification and re-sending."""
    sources = due_sources()
    for source in sources:
        scan_source.enqueue(source.pk)
    verify_sightings.enqueue()
    resend_requests.enqueue()
    return len(sources)
