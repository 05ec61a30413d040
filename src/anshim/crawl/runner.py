"""Running a crawl from Python (Django commands, scheduled jobs, Ray tasks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

from anshim.crawl.config import CrawlConfig

_SINGLE_THREADED_BLAS = {name: "1" for name in (
    "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


# `-c`, not `-m anshim.crawl.worker`: the fingerprinting processes (multiprocessing's spawn)
# re-import the parent's main module, and that one imports Scrapy; with `-c` they import
# only the engine.
_WORKER = "import sys; from anshim.crawl.worker import main; sys.exit(main())"


class CrawlFailed(RuntimeError):
    """The crawl process ended without finishing (crash or kill); its state allows a resume."""


def iter_crawl(config: CrawlConfig, *, timeout: float | None = None) -> Iterator[dict[str, Any]]:
    """Run a crawl in a child process and yield its records as they arrive."""
    # Parallelism comes from the fingerprinting workers: BLAS thread pools in each of them
    # would fight over the cores (two workers on two cores ran 1.4x faster than one, not 2x).
    env = {**_SINGLE_THREADED_BLAS, **os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(  # noqa: S603 - a constant command line, config on stdin
        [sys.executable, "-c", _WORKER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    # Drain stderr continuously (a full pipe would stall the crawl); keep its tail for errors.
    stderr_tail: deque[str] = deque(maxlen=40)
    drain = threading.Thread(target=stderr_tail.extend, args=(proc.stderr,), daemon=True)
    drain.start()
    proc.stdin.write(config.to_json())
    proc.stdin.close()
    finished = False
    try:
        for line in proc.stdout:
            record = json.loads(line)
            if record.get("type") == "done":
                finished = True
                continue
            yield record
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if not finished:
        drain.join(timeout=5)
        err = "".join(stderr_tail)[-2000:]
        raise CrawlFailed(f"The crawl process ended early (exit {proc.returncode}): {err}")


def crawl(config: CrawlConfig) -> list[dict[str, Any]]:
    return list(iter_crawl(config))
