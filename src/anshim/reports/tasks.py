"""The periodic rebuild of the closed months' summary rows (bulk writes and queryset updates
send no signal, so the signals alone cannot keep every month honest)."""

from __future__ import annotations

from django.tasks import task


@task()
def rebuild_summaries() -> int:
    from anshim.reports.summary import rebuild_all

    return rebuild_all()
