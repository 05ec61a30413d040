"""The periodic rebuild of the closed months' summary rows (bulk writes and queryset updates
send no signal, so the signals alone cannot keep every month honest).

`anshim periodic` enqueues `rebuild_summaries` once a night (`rebuild_due`): the first tick
after `NIGHTLY_HOUR` o'clock in the center's time zone that finds no rebuild enqueued since
then. The check reads the task queue itself (django-tasks-db's results), so a restarted
scheduler, or two of them, do not rebuild twice a night.

`build_months` builds the months a reader found missing (a change dropped them, or a month
has just ended); the reader computes them live meanwhile."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.tasks import TaskResultStatus, task
from django.utils import timezone

#: the local hour after which the night's rebuild is due (the center is closed)
NIGHTLY_HOUR = 3


@task()
def rebuild_summaries() -> int:
    from anshim.reports.summary import rebuild_all

    return rebuild_all()


@task()
def build_months(months: list[str]) -> int:
    """Build the summary of the closed months `months` (ISO dates of their first days) that
    are still missing: the readers that found them missing read them live meanwhile."""
    from anshim.reports.summary import ensure

    return len(ensure([dt.date.fromisoformat(m) for m in months]))


def queue_month_builds(months: Sequence[dt.date]) -> None:
    """Hand the build of `months` to the worker, once: a reader that finds the same months
    missing while that build still waits adds nothing (the worker runs the first; a build
    that finds the month built is a no-op, so a race here costs one empty task)."""
    args = [sorted(m.isoformat() for m in months)]
    backend = build_months.get_backend()
    if backend.__class__.__module__.startswith("django_tasks_db"):
        from django_tasks_db.models import DBTaskResult

        waiting = DBTaskResult.objects.filter(task_path=build_months.module_path,
                                              status=TaskResultStatus.READY)
        if any(kw.get("args") == args
               for kw in waiting.values_list("args_kwargs", flat=True)[:100]):
            return
    build_months.enqueue(*args)


def last_nightly_mark(now: dt.datetime) -> dt.datetime:
    """The latest NIGHTLY_HOUR:00 in the center's time zone at or before `now`."""
    local = timezone.localtime(now)
    mark = local.replace(hour=NIGHTLY_HOUR, minute=0, second=0, microsecond=0)
    return mark if mark <= local else mark - dt.timedelta(days=1)


def rebuild_due(now: dt.datetime | None = None) -> bool:
    """No rebuild enqueued since the last nightly mark (any state: one that failed is
    reported by the worker and retried the next night, not every tick)."""
    from django_tasks_db.models import DBTaskResult

    mark = last_nightly_mark(now or timezone.now())
    return not DBTaskResult.objects.filter(task_path=rebuild_summaries.module_path,
                                           enqueued_at__gte=mark).exists()
