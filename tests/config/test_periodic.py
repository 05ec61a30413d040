"""`anshim periodic`: the built-in scheduler enqueues reminders and the erasure tick."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

DATABASE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


# The worker closes old connections between tasks: that needs real commits.
@pytest.mark.django_db(transaction=True)
def test_one_tick_enqueues_the_periodic_work_and_the_worker_runs_it(settings: Any) -> None:
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = DATABASE
    out = StringIO()
    call_command("periodic", "--once", stdout=out)
    assert "(reminders)" in out.getvalue() and "(erasure)" in out.getvalue()
    names = set(DBTaskResult.objects.values_list("task_path", flat=True))
    # (and the first tick of the night: the report summaries' rebuild, reports.tasks)
    assert names == {"anshim.experts.tasks.schedule_due_reminders",
                     "anshim.erasure.tasks.erasure_tick",
                     "anshim.reports.tasks.rebuild_summaries"}
    call_command("db_worker", "--batch", "--no-startup-delay", "--queue-name", "*",
                 "--interval", "0", "--no-reload", verbosity=0)
    # The erasure tick enqueued its own jobs (verification, re-sending); all of them ran.
    paths = set(DBTaskResult.objects.values_list("task_path", flat=True))
    assert {"anshim.erasure.tasks.verify_sightings",
            "anshim.erasure.tasks.resend_requests"} <= paths
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}


def test_a_nonsense_interval_is_refused() -> None:
    with pytest.raises(CommandError, match="every"):
        call_command("periodic", "--every", "0", "--once")
