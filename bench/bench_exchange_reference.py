"""The reference side of `bench_exchange.py`: threatexchange's PDQIndex on the same bank.

hasher-matcher-actioner answers a lookup by searching python-threatexchange's `PDQIndex` (faiss
`IndexBinaryMultiHash`, 16 x 16-bit, exact at 31) in memory. This runs that search, batched
like our requests (`search_with_distance_in_result`, 100 hashes a call), in its own process on
one thread, over the very fingerprints the lookup benchmark loaded, and reports hashes/s and the
latency per batch. It also returns every answer, reduced like ours (best distance per entry),
so the driver can check that our API answered exactly the same.

    python bench/bench_exchange_reference.py DIR   # DIR holds bank.txt and batches.json

`bank.txt`: one "entry_id hex" line per banked PDQ hash; `batches.json`: a list of batches of
hex hashes. Prints one JSON object. Needs `threatexchange` and `faiss-cpu` (`.[bench]`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

THRESHOLD = 31
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

Answer = list[list[int]]
"""Per hash: sorted ``[entry_id, distance]`` pairs, one per matching entry."""


def available(python: str = sys.executable) -> bool:
    probe = subprocess.run([python, "-c", "import threatexchange, faiss"], capture_output=True,
                           check=False)
    return probe.returncode == 0


def run(directory: Path, python: str = sys.executable) -> dict[str, Any]:
    """Run the reference in a subprocess on one thread; raises RuntimeError if it fails."""
    proc = subprocess.run([python, str(Path(__file__).resolve()), str(directory)],
                          env={**os.environ, **ONE_THREAD}, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"reference failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def best_per_entry(pairs: list[tuple[int, int]]) -> Answer:
    best: dict[int, int] = {}
    for entry_id, distance in pairs:
        if distance < best.get(entry_id, THRESHOLD + 1):
            best[entry_id] = distance
    return sorted([e, d] for e, d in best.items())


def _worker(directory: Path) -> dict[str, Any]:
    import faiss
    from threatexchange.signal_type.pdq.pdq_index import PDQIndex

    faiss.omp_set_num_threads(1)
    entries = []
    with (directory / "bank.txt").open(encoding="ascii") as fh:
        for line in fh:
            entry_id, value = line.split()
            entries.append((value, int(entry_id)))
    batches: list[list[str]] = json.loads((directory / "batches.json").read_text())
    t0 = time.perf_counter()
    index = PDQIndex(entries)
    build_s = time.perf_counter() - t0
    del entries
    latencies: list[float] = []
    answers: list[Answer] = []
    for batch in batches:
        t = time.perf_counter()
        found = index.index.search_with_distance_in_result(batch, THRESHOLD)
        latencies.append(time.perf_counter() - t)
        answers.extend(
            best_per_entry([(index.local_id_to_entry[i][1], int(d)) for i, _, d in found[h]])
            for h in batch)
    lat = sorted(latencies)
    hashes = sum(len(b) for b in batches)
    return {
        "build_s": round(build_s, 1),
        "batches": len(batches),
        "hashes_per_second": round(hashes / sum(latencies)),
        "p50_ms": round(1000 * lat[len(lat) // 2], 2),
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2),
        "mean_ms": round(1000 * statistics.fmean(lat), 2),
        "answers": answers,
    }


if __name__ == "__main__":
    print(json.dumps(_worker(Path(sys.argv[1]))))
