"""Build once, map everywhere at 10M entries (``make bench-snapshot``; issue 15 item 3).

What is measured, exactly:

* The store is a `SqliteBankStore` file (the engine's multi-process store) holding one bank with
  ``--real`` entries of one PDQ row each. The snapshot is written by the production writer
  (`anshim.matching.bank_snapshot.write_snapshot`, what the worker's ``build_match_snapshot``
  task runs after reading the database) from the store's rows plus ``--entries`` synthetic
  random PDQ codes (fingerprint ids beyond the store's, so a hit on one is dropped by the
  core's re-check, as a withdrawn row would be): building 10M rows through SQLite or the ORM
  would take hours here and measure the database, not the snapshot.
* ``ready``: wall time from starting a fresh Python process to its first answered query
  (imports, mapping the newest snapshot, replaying the change log after its checkpoint —
  ``--changes`` entries added after the snapshot — and matching one file).
* Memory of each additional process after ``--queries`` random queries: RSS, PSS and the
  private (unshared) memory from /proc/PID/smaps_rollup. The mapped snapshot's pages are
  shared through the page cache, so what an additional process costs is its private memory;
  RSS counts every shared page it touched too. The target is on private memory.
* Withdrawal visibility: every process loops on a query that hits a real entry; the entry is
  withdrawn in this process; each reports when its next answer no longer holds it.
* Reference, side by side: one process that builds the same index in memory from the same
  codes (`PDQIndex.from_codes`, what every process did before snapshots, minus reading the
  rows), its ready time and memory.

Prints every target and whether it is met; exits 1 when one is missed.
Usage: ``.venv/bin/python -m bench.bench_snapshot [--entries N] [--processes K]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from anshim.matching.bank_snapshot import (  # noqa: E402
    BankArrays,
    arrays_from_store,
    last_change,
    write_snapshot,
)
from anshim.matching.pdq_codes import format_pdq_hex  # noqa: E402
from anshim.matching.sqlite_store import SqliteBankStore  # noqa: E402

READY_TARGET_S = 3.0
PRIVATE_TARGET_MB = 100.0
WITHDRAWAL_TARGET_S = 1.0

_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    mode, db, root, probe, queries, codes_path = sys.argv[1:7]
    t0 = time.perf_counter()
    from anshim.matching.core import FileQuery, MatchingCore
    from anshim.matching.sqlite_store import SqliteBankStore
    from anshim.matching.strategy import QueryHash
    def q(h):
        return FileQuery(images=[QueryHash(h, 100, "original")])
    store = SqliteBankStore(db)
    t1 = time.perf_counter()  # imports done
    if mode == "snapshot":
        core = MatchingCore(store, snapshot_root=Path(root))
    else:  # the reference: the same codes built in this process's memory
        import numpy as np
        from anshim.matching.pdq_index import PDQIndex
        codes = np.load(codes_path)
        index = PDQIndex.from_codes(np.arange(1, len(codes) + 1), codes, durable=False)
        core = None
    if core is not None:
        hit = core.match_files([q(probe)])[0]
        ready = "ready %d %s" % (len(hit), core.snapshot is not None)
    else:
        hit = index.search([probe])[0]
        ready = "ready %d False" % len(hit)
    ready += " imports=%.2fs map-or-build+replay+query=%.2fs cpu=%.2fs" % (
        t1 - t0, time.perf_counter() - t1, time.process_time())
    print(ready, flush=True)
    import random
    rnd = random.Random(5)
    for _ in range(int(queries)):
        h = "%064x" % rnd.getrandbits(256)
        if core is not None:
            core.match_files([q(h)])
        else:
            index.search([h])
    print("queried", flush=True)
    if core is None:
        sys.stdin.readline()
        sys.exit(0)
    sys.stdin.readline()  # go: the entry is withdrawn now
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not core.match_files([q(probe)])[0]:
            print("gone", time.time(), flush=True)
            break
        time.sleep(0.005)
    sys.stdin.readline()
""")


def _memory_mb(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and parts[0].rstrip(":") in ("Rss", "Pss", "Private_Clean",
                                                             "Private_Dirty"):
                out[parts[0].rstrip(":")] = int(parts[1]) / 1024
    out["Private"] = out.get("Private_Clean", 0.0) + out.get("Private_Dirty", 0.0)
    return out


def _spawn(mode: str, db: Path, root: Path, probe: str, queries: int, codes: Path,
           ) -> tuple[subprocess.Popen[str], float, str]:
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", _CHILD, mode, str(db), str(root), probe,
                              str(queries), str(codes)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    return child, time.perf_counter() - t0, line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=10_000_000, help="synthetic snapshot rows")
    p.add_argument("--real", type=int, default=1000, help="entries in the store")
    p.add_argument("--changes", type=int, default=200, help="entries added after the snapshot")
    p.add_argument("--processes", type=int, default=3)
    p.add_argument("--queries", type=int, default=200, help="random queries per process")
    p.add_argument("--no-reference", action="store_true")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="anshim-bench-snapshot-"))
    rows: list[tuple[str, bool]] = []
    try:
        db, root, codes_path = work / "banks.sqlite3", work / "snapshots", work / "codes.npy"
        store = SqliteBankStore(db)
        bank = store.add_bank("victims")
        rng = np.random.default_rng(15)
        real = rng.integers(0, 2**63, size=(args.real, 4), dtype=np.int64).view(np.uint64)
        real_hex = format_pdq_hex(real)
        ids = store.add_entries(bank, [([("pdq", h, 100, "original")], "", "", None, "")
                                       for h in real_hex])
        probe_entry, probe = ids[0], real_hex[0]
        seq, [stored] = arrays_from_store(store)
        t0 = time.perf_counter()
        synthetic = rng.integers(0, 2**63, size=(args.entries, 4), dtype=np.int64).view(np.uint64)
        synthetic |= rng.integers(0, 2, size=synthetic.shape, dtype=np.uint64) << np.uint64(63)
        base = int(stored.fp_ids.max()) + 1
        syn_ids = np.arange(base, base + args.entries, dtype=np.int64)
        everything = BankArrays(
            stored.info, np.concatenate([stored.pdq_ids, syn_ids]),
            np.concatenate([stored.pdq_codes, synthetic]), stored.vpdq_ids, stored.vpdq_codes,
            np.concatenate([stored.entry_ids, syn_ids]), np.concatenate([stored.fp_ids, syn_ids]))
        np.save(codes_path, everything.pdq_codes)
        del synthetic
        print(f"{everything.pdq_ids.size} codes made in {time.perf_counter() - t0:.0f} s",
              flush=True)
        info = write_snapshot(root, seq, [everything], last_change(store, seq))
        del everything
        size = sum(f.stat().st_size for f in info.path.rglob("*") if f.is_file()) / 2**20
        print(f"snapshot of {info.rows} rows at checkpoint {info.seq} written in "
              f"{info.seconds:.0f} s ({size:.0f} MiB on disk)", flush=True)
        store.add_entries(bank, [([("pdq", h, 100, "original")], "", "", None, "") for h in
                                 format_pdq_hex(rng.integers(0, 2**63, size=(args.changes, 4),
                                                             dtype=np.int64).view(np.uint64))])
        children = []
        for k in range(args.processes):
            child, ready, line = _spawn("snapshot", db, root, probe, args.queries, codes_path)
            assert line.startswith("ready 1 True"), line
            assert child.stdout is not None
            child.stdout.readline()  # queried
            mem = _memory_mb(child.pid)
            print(f"process {k + 1}: ready in {ready:.2f} s wall ({' '.join(line.split()[3:])}; "
                  f"mapped the snapshot, replayed {args.changes} changes); "
                  f"RSS {mem['Rss']:.0f} MB, PSS {mem['Pss']:.0f} MB, "
                  f"private {mem['Private']:.0f} MB", flush=True)
            children.append(child)
            rows.append((f"process {k + 1} ready < {READY_TARGET_S:g} s: {ready:.2f} s",
                         ready < READY_TARGET_S))
            if k > 0:
                rows.append((f"process {k + 1} (additional) private memory < "
                             f"{PRIVATE_TARGET_MB:g} MB: {mem['Private']:.0f} MB "
                             f"(RSS {mem['Rss']:.0f} MB, PSS {mem['Pss']:.0f} MB)",
                             mem["Private"] < PRIVATE_TARGET_MB))
        withdrawn_at = time.time()
        store.withdraw(probe_entry)
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for k, child in enumerate(children):
            assert child.stdout is not None
            parts = child.stdout.readline().split()
            seen = float(parts[1]) - withdrawn_at if parts[:1] == ["gone"] else float("inf")
            print(f"process {k + 1}: withdrawal seen after {seen * 1000:.0f} ms", flush=True)
            rows.append((f"process {k + 1} sees the withdrawal < {WITHDRAWAL_TARGET_S:g} s: "
                         f"{seen:.3f} s", seen < WITHDRAWAL_TARGET_S))
        for child in children:
            assert child.stdin is not None
            child.stdin.write("done\n")
            child.stdin.flush()
            child.wait(timeout=60)
        if not args.no_reference:
            child, ready, line = _spawn("memory", db, root, probe, args.queries, codes_path)
            assert child.stdout is not None
            child.stdout.readline()
            mem = _memory_mb(child.pid)
            print(f"reference (index built in the process's memory from the same codes): ready "
                  f"in {ready:.2f} s wall ({' '.join(line.split()[3:])}); "
                  f"RSS {mem['Rss']:.0f} MB, private {mem['Private']:.0f} MB",
                  flush=True)
            assert child.stdin is not None
            child.stdin.write("done\n")
            child.stdin.flush()
            child.wait(timeout=60)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("targets:")
    for text, ok in rows:
        print(f"  [{'met' if ok else 'MISSED'}] {text}")
    if args.entries < 10_000_000:
        print(f"  [MISSED] 10M entries: this run had {args.entries}")
        return 1
    return 0 if all(ok for _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
