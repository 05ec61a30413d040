"""The periodic rebuild of the closed months' summary rows (bulk writes and queryset updates
send no signal, so the signals alone cannot keep every month honest).

`anshim periodic` enqueues `rebuild_summaries` once a night (`rebuild_due`): the first tick
after `NIGHTLY_HOUR` o'clock in the center's time zone that finds no rebuild enqueued since
then. The check reads the task queue itself (django-tasks-db's results), so a restarted
scheduler, or two of them, do not rebuild twice a night."""

from __future__ import annotations

import datetime as dt

from django.tasks import task
from django.utils import timezone

#: the local hour after which the night's rebuild is due (the center is closed)
NIGHTLY_HOUR = 3


@task()
def rebuild_summaries() -> int:
    from anshim.reports.summary import rebuild_all

    return rebuild_all()


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
