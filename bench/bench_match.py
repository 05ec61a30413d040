"""Benchmark: anshim.matching.PDQIndex vs threatexchange's PDQIndex (what HMA uses).

    python bench/bench_match.py --sizes 1000000,10000000 --queries 2000

Builds the same banks (uniform random and clustered near-duplicates) in both, runs
the same queries through both (one at a time and batched), checks that the match
sets are identical and prints build time, peak memory (ru_maxrss of a subprocess per
implementation and phase, so peaks never mix), queries/s and p50/p99 latency.

Every measurement runs in its own subprocess with one thread (OMP/numba/BLAS = 1):
* ``ours-build``  generate bank, build the multi-index, save the snapshot
* ``ours-serve``  load the snapshot (memory-mapped), run the queries
* ``reference``   generate bank, build threatexchange's PDQIndex, run the queries

The reference needs ``threatexchange`` and ``faiss-cpu``; if the running Python lacks
them, ``--reference-python`` (default: ``.venv-ref/bin/python`` when present) is used.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = 31
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}


# ---------------------------------------------------------------- data (same in both)
def _sparse_mask(rng: np.random.Generator, shape: tuple[int, ...], ands: int) -> NDArray[np.uint64]:
    """Random words whose bits are set with probability 2**-ands."""
    mask = rng.integers(0, 2**64, shape, dtype=np.uint64, endpoint=False)
    for _ in range(ands - 1):
        mask &= rng.integers(0, 2**64, shape, dtype=np.uint64, endpoint=False)
    return mask


def make_bank(size: int, dist: str, seed: int = 1) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """``size`` ids and ``(size, 4) uint64`` codes.

    uniform:   independent random 256-bit hashes.
    clustered: size/16 random originals, each entry a copy of one (chosen uniformly)
               with about 8 bits flipped: families of near-duplicates, as in real
               collections (re-encodes, crops, re-uploads).
    """
    rng = np.random.default_rng([seed, size, 0 if dist == "uniform" else 1])
    ids = (rng.permutation(size).astype(np.int64) * 3 + 1000)
    if dist == "uniform":
        return ids, rng.integers(0, 2**64, (size, 4), dtype=np.uint64, endpoint=False)
    if dist != "clustered":
        raise ValueError(dist)
    centers = rng.integers(0, 2**64, (max(1, size // 16), 4), dtype=np.uint64, endpoint=False)
    codes = np.empty((size, 4), dtype=np.uint64)
    step = 1 << 20
    for lo in range(0, size, step):
        hi = min(size, lo + step)
        which = rng.integers(0, centers.shape[0], hi - lo)
        codes[lo:hi] = centers[which] ^ _sparse_mask(rng, (hi - lo, 4), 5)
    return ids, codes


def make_queries(codes: NDArray[np.uint64], count: int, seed: int = 2) -> NDArray[np.uint64]:
    """Half near copies (~16 bits off) of bank entries, a quarter farther (~32 bits
    off: around the threshold), a quarter random (no match)."""
    rng = np.random.default_rng([seed, codes.shape[0], count])
    src = codes[rng.integers(0, codes.shape[0], count)]
    near, far = count // 2, count // 4
    q = src.copy()
    q[:near] ^= _sparse_mask(rng, (near, 4), 4)
    q[near : near + far] ^= _sparse_mask(rng, (far, 4), 3)
    q[near + far :] = rng.integers(0, 2**64, (count - near - far, 4), dtype=np.uint64,
                                   endpoint=False)
    return q


def to_hex(codes: NDArray[np.uint64]) -> list[str]:
    raw = codes.astype(">u8").tobytes()
    return [raw[i : i + 32].hex() for i in range(0, len(raw), 32)]


def queries_path(args: argparse.Namespace) -> Path:
    return Path(str(args.snapshot) + ".queries.npy")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def latency_stats(samples: list[float]) -> dict[str, float]:
    arr = np.array(samples)
    return {
        "qps_single": float(len(arr) / arr.sum()),
        "p50_ms": float(np.percentile(arr, 50) * 1e3),
        "p99_ms": float(np.percentile(arr, 99) * 1e3),
    }


def save_matches(path: Path, triples: list[tuple[int, int, int]]) -> None:
    arr = np.array(sorted(triples), dtype=np.int64).reshape(-1, 3)
    np.save(path, arr)


# ---------------------------------------------------------------- workers
def worker_ours_build(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "src"))
    from anshim.matching import PDQIndex

    ids, codes = make_bank(args.size, args.dist)
    # The serving process reads its queries from here: it never holds the bank itself.
    np.save(queries_path(args), make_queries(codes, args.queries))
    t0 = time.perf_counter()
    index = PDQIndex.from_codes(ids, codes)
    build_s = time.perf_counter() - t0
    del ids, codes
    index.search(["0" * 64])  # compiles the search kernel into numba's cache if needed
    t0 = time.perf_counter()
    index.save(args.snapshot)
    save_s = time.perf_counter() - t0
    disk = sum(p.stat().st_size for p in Path(args.snapshot).rglob("*") if p.is_file())
    return {
        "build_s": build_s,
        "save_s": save_s,
        "index_mb": index.stats()["base_bytes"] / 2**20,
        "disk_mb": disk / 2**20,
        "layout": index.stats()["layout"],
        "peak_rss_mb": peak_rss_mb(),
    }


def worker_ours_serve(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    sys.path.insert(0, str(ROOT / "src"))
    from anshim.matching import PDQIndex

    index = PDQIndex.load(args.snapshot)
    index.search(["0" * 64])  # first query: compiles or loads cached kernels
    load_s = time.perf_counter() - t0
    queries = to_hex(np.load(queries_path(args)))
    rss_before_queries = peak_rss_mb()
    samples = []
    single: list[list[tuple[int, int]]] = []
    for h in queries:
        t = time.perf_counter()
        single.append(index.search([h], THRESHOLD)[0])
        samples.append(time.perf_counter() - t)
    t = time.perf_counter()
    batched: list[list[tuple[int, int]]] = []
    for lo in range(0, len(queries), args.batch):
        batched.extend(index.search(queries[lo : lo + args.batch], THRESHOLD))
    batch_s = time.perf_counter() - t
    if single != batched:
        raise AssertionError("single and batched results differ")
    save_matches(args.result, [(q, i, d) for q, ms in enumerate(single) for i, d in ms])
    # A change is visible to the very next query: time add, search, remove, search,
    # with the change log fsync'd (durable, the default) and without.
    probe = queries[0]
    visible = True
    change_ms: dict[str, float] = {}
    for durable, ident in ((True, -1), (False, -2)):
        index.durable = durable
        t = time.perf_counter()
        index.add([ident], [probe])
        t_add = time.perf_counter()
        visible &= any(i == ident for i, _ in index.search([probe])[0])
        t_search = time.perf_counter()
        index.remove([ident])
        t_remove = time.perf_counter()
        visible &= all(i != ident for i, _ in index.search([probe])[0])
        t_end = time.perf_counter()
        key = "durable" if durable else "no_fsync"
        change_ms[f"add_{key}"] = (t_add - t) * 1e3
        change_ms[f"remove_{key}"] = (t_remove - t_search) * 1e3
        change_ms[f"search_after_{key}"] = (t_end - t_remove) * 1e3
    return {
        **latency_stats(samples),
        "qps_batched": len(queries) / batch_s,
        "load_s": load_s,
        "rss_after_load_mb": rss_before_queries,
        "peak_rss_mb": peak_rss_mb(),
        "matches": sum(len(m) for m in single),
        "add_remove_visible": visible,
        "change_ms": change_ms,
        "add_search_remove_search_ms": sum(v for k, v in change_ms.items() if "durable" in k),
    }


def worker_reference(args: argparse.Namespace) -> dict[str, Any]:
    import faiss
    from threatexchange.signal_type.pdq.pdq_index import PDQIndex as RefIndex

    faiss.omp_set_num_threads(1)
    ids, codes = make_bank(args.size, args.dist)
    queries = to_hex(make_queries(codes, args.queries))
    entries = list(zip(to_hex(codes), ids.tolist(), strict=True))
    del codes, ids
    t0 = time.perf_counter()
    index = RefIndex(entries)
    build_s = time.perf_counter() - t0
    del entries
    nq = min(len(queries), args.reference_queries or len(queries))
    samples = []
    single: list[list[tuple[int, int]]] = []
    for h in queries[:nq]:
        t = time.perf_counter()
        single.append([(m.metadata, int(m.similarity_info.distance)) for m in index.query(h)])
        samples.append(time.perf_counter() - t)
    t = time.perf_counter()
    batched: list[list[tuple[int, int]]] = []
    for lo in range(0, nq, args.batch):
        chunk = queries[lo : min(nq, lo + args.batch)]
        found = index.index.search_with_distance_in_result(chunk, THRESHOLD)
        batched.extend(
            [(index.local_id_to_entry[i][1], int(d)) for i, _, d in found[h]] for h in chunk
        )
    batch_s = time.perf_counter() - t
    if [sorted(x) for x in single] != [sorted(x) for x in batched]:
        raise AssertionError("reference single and batched results differ")
    save_matches(args.result, [(q, i, d) for q, ms in enumerate(single) for i, d in ms])
    return {
        **latency_stats(samples),
        "qps_batched": nq / batch_s,
        "build_s": build_s,
        "queries_run": nq,
        "peak_rss_mb": peak_rss_mb(),
        "matches": sum(len(m) for m in single),
    }


WORKERS = {
    "ours-build": worker_ours_build,
    "ours-serve": worker_ours_serve,
    "reference": worker_reference,
}


# ---------------------------------------------------------------- driver
def run_worker(python: str, name: str, extra: list[str]) -> dict[str, Any]:
    env = {**os.environ, **ONE_THREAD}
    cmd = [python, str(Path(__file__).resolve()), "--worker", name, *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {name} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - t0
    return result


def reference_python(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    probe = subprocess.run(
        [sys.executable, "-c", "import threatexchange, faiss"], capture_output=True, check=False
    )
    if probe.returncode == 0:
        return sys.executable
    ref = ROOT / ".venv-ref" / "bin" / "python"
    return str(ref) if ref.exists() else None


def compare(ours: Path, ref: Path, nq: int) -> tuple[bool, int]:
    a = np.load(ours)
    b = np.load(ref)
    a = a[a[:, 0] < nq]
    return bool(a.shape == b.shape and np.array_equal(a, b)), int(b.shape[0])


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--dists", default="uniform,clustered")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--reference-python", default=None)
    parser.add_argument("--reference-queries", type=int, default=0,
                        help="run the reference on only the first N queries (0: all)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dist", help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return 0

    ref_python = None if args.skip_reference else reference_python(args.reference_python)
    if not args.skip_reference and ref_python is None:
        print("threatexchange not found: pip install threatexchange faiss-cpu "
              "(or a .venv-ref with them), or pass --skip-reference", file=sys.stderr)
        return 2
    ok = True
    report: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="bench-match-"))
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            for dist in args.dists.split(","):
                snap = work / f"snap-{size}-{dist}"
                common = ["--size", str(size), "--dist", dist, "--queries", str(args.queries),
                          "--batch", str(args.batch), "--snapshot", str(snap)]
                row: dict[str, Any] = {"size": size, "dist": dist}
                row["build"] = run_worker(sys.executable, "ours-build", common)
                row["ours"] = run_worker(
                    sys.executable, "ours-serve", [*common, "--result", str(work / "ours.npy")]
                )
                shutil.rmtree(snap, ignore_errors=True)
                Path(str(snap) + ".queries.npy").unlink(missing_ok=True)
                if ref_python:
                    row["reference"] = run_worker(
                        ref_python, "reference",
                        [*common, "--result", str(work / "ref.npy"),
                         "--reference-queries", str(args.reference_queries)],
                    )
                    same, _ = compare(work / "ours.npy", work / "ref.npy",
                                      row["reference"]["queries_run"])
                    row["identical"] = same
                    ok &= same
                report.append(row)
                print_row(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if ok else 1


def print_row(row: dict[str, Any]) -> None:
    b, o = row["build"], row["ours"]
    print(f"\n== {row['size']:,} hashes, {row['dist']} ==", flush=True)
    print(f"{'':11} {'build s':>8} {'peak MB':>9} {'qps 1-by-1':>11} {'qps batch':>10}"
          f" {'p50 ms':>7} {'p99 ms':>7} {'matches':>8}")
    print(f"{'anshim':11} {b['build_s']:8.1f} {o['peak_rss_mb']:9,.0f} {fmt(o['qps_single']):>11}"
          f" {fmt(o['qps_batched']):>10} {o['p50_ms']:7.3f} {o['p99_ms']:7.3f} {o['matches']:8}")
    print(f"{'  (build)':11} {'':8} {b['peak_rss_mb']:9,.0f}   index {b['index_mb']:,.0f} MiB,"
          f" snapshot load+first query {o['load_s']:.2f} s")
    c = o["change_ms"]
    print(f"{'':11} add {c['add_durable']:.2f} ms / remove {c['remove_durable']:.2f} ms"
          f" (fsync'd log; {c['add_no_fsync']:.2f} / {c['remove_no_fsync']:.2f} ms without),"
          f" next query {c['search_after_no_fsync']:.2f} ms,"
          f" visible to it: {o['add_remove_visible']}")
    if "reference" in row:
        r = row["reference"]
        print(f"{'threatexch.':11} {r['build_s']:8.1f} {r['peak_rss_mb']:9,.0f}"
              f" {fmt(r['qps_single']):>11} {fmt(r['qps_batched']):>10} {r['p50_ms']:7.3f}"
              f" {r['p99_ms']:7.3f} {r['matches']:8}  ({r['queries_run']} queries)")
        print(f"speed-up 1-by-1 {o['qps_single'] / r['qps_single']:.1f}x, batched"
              f" {o['qps_batched'] / r['qps_batched']:.1f}x; identical match sets:"
              f" {row['identical']}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
