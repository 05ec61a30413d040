"""Fingerprint many files on all cores (a process pool), results in input order."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from functools import partial

from .engine import fingerprint_file
from .errors import FingerprintError
from .types import ImageFingerprint, Limits, VideoFingerprint

__all__ = ["BatchResult", "fingerprint_files"]

BatchResult = ImageFingerprint | VideoFingerprint | FingerprintError

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _one(
    path: str,
    *,
    dihedral: bool,
    seconds_per_hash: float,
    limits: Limits | None,
) -> BatchResult:
    try:
        return fingerprint_file(
            path, dihedral=dihedral, seconds_per_hash=seconds_per_hash, limits=limits
        )
    except FingerprintError as exc:
        return exc
    except Exception as exc:  # an engine bug must not lose the other files' results
        return FingerprintError(f"internal error: {type(exc).__name__}")


@contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Child processes inherit the environment: one BLAS/OpenMP thread per worker process."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    for k in _THREAD_VARS:
        os.environ.setdefault(k, "1")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _context() -> multiprocessing.context.BaseContext:
    """A fork server that has imported the engine once (fast worker start, no fork of a
    threaded parent); plain spawn where fork servers do not exist."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["anshim.fingerprint"])
        return ctx
    return multiprocessing.get_context("spawn")


def fingerprint_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    workers: int | None = None,
    dihedral: bool = False,
    seconds_per_hash: float = 1.0,
    limits: Limits | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[BatchResult]:
    """Fingerprint ``paths`` with ``workers`` processes (default: all cores).

    Returns one result per path, in order: a fingerprint, or the :class:`FingerprintError` that
    file raised (errors are values, never raised). ``progress(done, total)`` is called as files
    complete. Video decoding in workers uses one thread each (``limits.video_threads``).
    """
    items = [os.fspath(p) for p in paths]
    total = len(items)
    if workers is None:
        workers = os.cpu_count() or 1
    workers = max(1, min(workers, total or 1))
    if limits is None:
        limits = Limits(video_threads=1) if workers > 1 else Limits()
    job = partial(_one, dihedral=dihedral, seconds_per_hash=seconds_per_hash, limits=limits)
    results: list[BatchResult] = []
    if workers == 1 or total <= 1:
        for i, path in enumerate(items, start=1):
            results.append(job(path))
            if progress is not None:
                progress(i, total)
        return results
    with _single_threaded_children(), ProcessPoolExecutor(workers, mp_context=_context()) as pool:
        futures = [pool.submit(job, path) for path in items]
        for i, future in enumerate(futures, start=1):
            try:
                results.append(future.result())
            except BrokenProcessPool:
                results.append(
                    FingerprintError("worker process died (out of memory or a decoder crash)")
                )
            if progress is not None:
                progress(i, total)
    return results
