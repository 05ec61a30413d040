"""A task for the worker tests that meets a busy database on its first run."""

from __future__ import annotations

from pathlib import Path

from django.db import OperationalError
from django.tasks import task


@task()
def busy_once(marker: str) -> str:
    path = Path(marker)
    if not path.exists():
        path.write_text("ran")
        raise OperationalError("database is locked")
    return "done"


@task()
def always_broken() -> str:
    raise ValueError("a bug in the task")
