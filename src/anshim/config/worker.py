"""The task worker that survives a busy database, and what the staff pages say about it.

django-tasks-db's `db_worker` exits on the first "database is locked" it meets outside its
claim query (opening the claim transaction, saving a result), and then reminders, notices and
webhooks stop silently. `ResilientWorker` catches every transient database error (see
`anshim.security.contention.is_transient`), backs off exponentially with jitter (0.5 s doubling
to 30 s) and carries on; saving a task's outcome is retried the same way, so a task that ran is
never left marked "running"; a task that itself failed on a busy database is queued again
with a growing delay (up to 5 attempts) instead of being marked failed. Any other error still
stops the process, loudly, and `make run` (or systemd's `Restart=always`) starts it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, connections
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from anshim.security.contention import is_transient

logger = logging.getLogger("anshim.worker")

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
# A task that fails on a busy database is run again: at most this many attempts, 5 s, 10 s...
TASK_ATTEMPTS = 5
TASK_RETRY_BASE_SECONDS = 5.0
TASK_RETRY_MAX_SECONDS = 300.0
# A ready task waiting longer than this means no worker is taking tasks.
STALE_AFTER = dt.timedelta(minutes=2)


class Backoff:
    def __init__(self, start: float = BACKOFF_START, maximum: float = BACKOFF_MAX,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.start, self.maximum, self.sleep = start, maximum, sleep
        self.delay = start
        self.failures = 0

    def wait(self) -> float:
        delay = self.delay * (0.5 + random.random() / 2)  # jitter, not crypto
        self.sleep(delay)
        self.failures += 1
        self.delay = min(self.delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.delay = self.start


def _drop_connections() -> None:
    # A connection that failed mid-transaction may be unusable; the next query reconnects.
    for conn in connections.all(initialized_only=True):
        try:
            if conn.in_atomic_block:
                continue  # never close under a caller's transaction (tests run in one)
            conn.close()
        except Exception:  # closing a broken connection may fail too
            logger.debug("closing a broken connection failed", exc_info=True)


class ResilientWorker(Worker):
    """`db_worker`'s loop, restarted after every transient database error."""

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backoff = Backoff(sleep=sleep)
        self.transient_errors = 0

    def run(self) -> None:
        while self.running:
            try:
                super().run()
                return  # --batch finished, --max-tasks reached, or a graceful shutdown
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.transient_errors += 1
                waited = self.backoff.wait()
                logger.warning("database busy (%s); retried after %.1fs", exc, waited)
                _drop_connections()
                self.startup_delay = False  # the random start delay is for the first start only

    def run_task(self, db_task_result: DBTaskResult) -> None:
        db_task_result.set_successful = self._retrying(  # type: ignore[method-assign]
            db_task_result.set_successful)
        db_task_result.set_failed = self._retrying(  # type: ignore[method-assign]
            self._requeue_if_transient(db_task_result, db_task_result.set_failed))
        super().run_task(db_task_result)
        self.backoff.reset()

    def _requeue_if_transient(
        self, result: DBTaskResult, set_failed: Callable[[BaseException], None]
    ) -> Callable[[BaseException], None]:
        """A task that failed on a busy database runs again later (its attempts are its
        claims), up to `TASK_ATTEMPTS`; the tasks are idempotent (a key per delivery)."""

        def failed(exc: BaseException) -> None:
            attempts = len(result.worker_ids or [])
            if not is_transient(exc) or attempts >= TASK_ATTEMPTS:
                set_failed(exc)
                return
            delay = min(TASK_RETRY_BASE_SECONDS * 2 ** (attempts - 1), TASK_RETRY_MAX_SECONDS)
            logger.warning("task %s met a busy database (%s); attempt %d of %d again in %.0fs",
                           result.id, exc, attempts, TASK_ATTEMPTS, delay)
            DBTaskResult.objects.filter(id=result.id).update(
                status="READY", started_at=None,
                run_after=timezone.now() + dt.timedelta(seconds=delay))

        return failed

    def _retrying(self, save: Callable[..., None]) -> Callable[..., None]:
        """Saving the outcome of a task that already ran: retried until the database lets us
        (giving up would leave the task marked "running" for ever)."""

        def attempt(*args: Any) -> None:
            backoff = Backoff(sleep=self.backoff.sleep)
            while True:
                try:
                    save(*args)
                    return
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    self.transient_errors += 1
                    waited = backoff.wait()
                    logger.warning("saving a task result: database busy (%s); retried "
                                   "after %.1fs", exc, waited)
                    close_old_connections()

        return attempt


# --- Health, for the supervisor's start page ------------------------------------------------


@dataclass(frozen=True)
class WorkerHealth:
    last_ran: dt.datetime | None  # when the worker last started a task
    waiting: int  # tasks due now and not taken
    oldest_waiting: dt.datetime | None

    @property
    def stalled(self) -> bool:
        return (self.oldest_waiting is not None
                and timezone.now() - self.oldest_waiting > STALE_AFTER)


def worker_health() -> WorkerHealth:
    """Two queries on the task table: the newest start, and the due tasks nobody took."""
    from django.db.models import Count, Min

    last = (DBTaskResult.objects.filter(started_at__isnull=False)
            .order_by("-started_at").values_list("started_at", flat=True).first())
    due = DBTaskResult.objects.ready().aggregate(n=Count("id"), oldest=Min("enqueued_at"))
    return WorkerHealth(last_ran=last, waiting=int(due["n"] or 0), oldest_waiting=due["oldest"])
