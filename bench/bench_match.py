"""Benchmark: anshim.matching.PDQIndex vs threatexchange's PDQIndex (what HMA uses).

    python bench/bench_match.py --sizes 1000000,10000000 --queries 2000

Builds the same banks (uniform random and clustered near-duplicates) in both, runs
the same queries through both (one at a time and batched), checks that the match
sets are identical and prints build time, peak memory (ru_maxrss of a subprocess per
implementation and phase, so peaks never mix), queries/s and p50/p99 latency.

The queries come in five kinds, interleaved (query i is of kind i % 5) so that the
reference, even when it runs only the first N queries, runs every kind ours runs:
near copies (~16 bits off), copies at exactly 30, 31 and 32 bits (the threshold, 31,
is the boundary) and random hashes. Match sets are compared, and queries/s printed,
per kind. The ``ours-natural`` row is the natural API: ``PDQIndex()`` then ``add()``
of the whole bank (one call, and batches of 10,000), then ``search()``, against
``from_codes`` on the same data in the same process.

Targets (printed with the result; the exit status is 1 when one is missed): identical
match sets on every kind; ours at least as fast as the reference one by one and
batched; ``add()`` in one call then ``search()`` within 10% of ``from_codes``.

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


QUERY_KINDS = ("near", "30 bits", "31 bits", "32 bits", "random")


def kinds_of(count: int) -> NDArray[np.int64]:
    """Kind (index into QUERY_KINDS) of each query: interleaved, query i is i % 5."""
    return np.arange(count, dtype=np.int64) % len(QUERY_KINDS)


def _flip_exactly(rng: np.random.Generator, rows: NDArray[np.uint64], bits: int) -> None:
    """Flip exactly ``bits`` distinct bits of each row, in place."""
    pos = np.argsort(rng.random((rows.shape[0], 256)), axis=1)[:, :bits]
    for word in range(4):
        in_word = (pos >> 6) == word
        masks = np.where(in_word, np.uint64(1) << (pos & 63).astype(np.uint64), np.uint64(0))
        rows[:, word] ^= np.bitwise_or.reduce(masks, axis=1)


def make_queries(codes: NDArray[np.uint64], count: int, seed: int = 2) -> NDArray[np.uint64]:
    """``count`` queries of the five QUERY_KINDS, interleaved (see kinds_of)."""
    rng = np.random.default_rng([seed, codes.shape[0], count])
    q = codes[rng.integers(0, codes.shape[0], count)].copy()
    kinds = kinds_of(count)
    near = kinds == 0
    q[near] ^= _sparse_mask(rng, (int(near.sum()), 4), 4)
    for kind, bits in ((1, 30), (2, 31), (3, 32)):
        rows = q[kinds == kind]
        _flip_exactly(rng, rows, bits)
        q[kinds == kind] = rows
    rand = kinds == 4
    q[rand] = rng.integers(0, 2**64, (int(rand.sum()), 4), dtype=np.uint64, endpoint=False)
    return q


def per_kind_qps(samples: list[float]) -> dict[str, float]:
    arr = np.array(samples)
    kinds = kinds_of(arr.size)
    return {name: float((kinds == k).sum() / arr[kinds == k].sum())
            for k, name in enumerate(QUERY_KINDS) if (kinds == k).any()}


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
        "qps_kind": per_kind_qps(samples),
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
        "qps_kind": per_kind_qps(samples),
        "qps_batched": nq / batch_s,
        "build_s": build_s,
        "queries_run": nq,
        "peak_rss_mb": peak_rss_mb(),
        "matches": sum(len(m) for m in single),
    }


def _timed_searches(index: Any, queries: list[str]) -> tuple[float, float, list[Any]]:
    """(qps one by one, qps in batches of 500, the matches)."""
    t = time.perf_counter()
    found = [index.search([h], THRESHOLD)[0] for h in queries]
    single_s = time.perf_counter() - t
    t = time.perf_counter()
    for lo in range(0, len(queries), 500):
        index.search(queries[lo : lo + 500], THRESHOLD)
    batch_s = time.perf_counter() - t
    return len(queries) / single_s, len(queries) / batch_s, found


def worker_ours_natural(args: argparse.Namespace) -> dict[str, Any]:
    """The natural API (PDQIndex() + add() + search()) against from_codes, same data."""
    sys.path.insert(0, str(ROOT / "src"))
    from anshim.matching import PDQIndex

    ids, codes = make_bank(args.size, args.dist)
    queries = to_hex(make_queries(codes, args.queries))
    hexes = to_hex(codes)
    out: dict[str, Any] = {}
    bulk = PDQIndex.from_codes(ids, codes)
    bulk.search(["0" * 64])  # compile
    out["from_codes"] = _timed_searches(bulk, queries)
    reference = out["from_codes"][2]
    del bulk
    for name, step in (("add_one_call", args.size), ("add_batches_10000", 10_000)):
        t = time.perf_counter()
        index = PDQIndex()
        for lo in range(0, args.size, step):
            index.add(ids[lo : lo + step].tolist(), hexes[lo : lo + step])
        add_s = time.perf_counter() - t
        single, batched, found = _timed_searches(index, queries)
        stats = index.stats()
        out[name] = (single, batched, found == reference, add_s,
                     1 + len(stats["runs"]), stats["delta_entries"])
        del index
    return {
        "from_codes": {"qps_single": out["from_codes"][0], "qps_batched": out["from_codes"][1]},
        **{name: {"qps_single": v[0], "qps_batched": v[1], "identical": v[2], "add_s": v[3],
                  "segments": v[4], "delta": v[5]}
           for name, v in out.items() if name != "from_codes"},
    }


WORKERS = {
    "ours-natural": worker_ours_natural,
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


def compare(ours: Path, ref: Path, nq: int) -> dict[str, bool]:
    """Identical match sets, per query kind, on the queries both ran."""
    a = np.load(ours)
    b = np.load(ref)
    a = a[a[:, 0] < nq]
    out = {}
    for k, name in enumerate(QUERY_KINDS):
        ak = a[a[:, 0] % len(QUERY_KINDS) == k]
        bk = b[b[:, 0] % len(QUERY_KINDS) == k]
        out[name] = bool(ak.shape == bk.shape and np.array_equal(ak, bk))
    return out


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
    parser.add_argument("--skip-natural", action="store_true",
                        help="skip the PDQIndex() + add() + search() row")
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
                if not args.skip_natural:
                    row["natural"] = run_worker(sys.executable, "ours-natural", common)
                shutil.rmtree(snap, ignore_errors=True)
                Path(str(snap) + ".queries.npy").unlink(missing_ok=True)
                if ref_python:
                    row["reference"] = run_worker(
                        ref_python, "reference",
                        [*common, "--result", str(work / "ref.npy"),
                         "--reference-queries", str(args.reference_queries)],
                    )
                    row["identical_kind"] = compare(work / "ours.npy", work / "ref.npy",
                                                    row["reference"]["queries_run"])
                    row["identical"] = all(row["identical_kind"].values())
                report.append(row)
                print_row(row)
                ok &= print_targets(row)
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
        print(f"{'qps by kind':11} " + "  ".join(
            f"{name}: {fmt(o['qps_kind'][name])} vs {fmt(r['qps_kind'][name])}"
            f" ({'same' if row['identical_kind'][name] else 'DIFFERENT'} matches)"
            for name in QUERY_KINDS), flush=True)
    else:
        print(f"{'qps by kind':11} " + "  ".join(
            f"{name}: {fmt(o['qps_kind'][name])}" for name in QUERY_KINDS), flush=True)
    if "natural" in row:
        n = row["natural"]
        base = n["from_codes"]
        print(f"{'natural API':11} from_codes {fmt(base['qps_single'])} q/s 1-by-1,"
              f" {fmt(base['qps_batched'])} batched", flush=True)
        for name in ("add_one_call", "add_batches_10000"):
            v = n[name]
            print(f"{'':11} PDQIndex()+{name}: add {v['add_s']:.1f} s, {v['segments']} segment(s)"
                  f" + {v['delta']} in the delta; {fmt(v['qps_single'])} q/s 1-by-1"
                  f" ({v['qps_single'] / base['qps_single']:.2f}x from_codes),"
                  f" {fmt(v['qps_batched'])} batched"
                  f" ({v['qps_batched'] / base['qps_batched']:.2f}x); same matches:"
                  f" {v['identical']}", flush=True)


def print_targets(row: dict[str, Any]) -> bool:
    """Print each target with whether it is met; True when all are."""
    targets: list[tuple[str, bool]] = []
    if "reference" in row:
        o, r = row["ours"], row["reference"]
        for name in QUERY_KINDS:
            targets.append((f"identical match sets, {name}", row["identical_kind"][name]))
        targets.append(("1-by-1 at least as fast as the reference",
                        o["qps_single"] >= r["qps_single"]))
        targets.append(("batched at least as fast as the reference",
                        o["qps_batched"] >= r["qps_batched"]))
    if "natural" in row:
        n = row["natural"]
        one = n["add_one_call"]
        targets.append(("PDQIndex()+add()+search() within 10% of from_codes (1-by-1)",
                        one["qps_single"] >= 0.9 * n["from_codes"]["qps_single"]))
        targets.append(("natural API gives the same matches",
                        one["identical"] and n["add_batches_10000"]["identical"]))
    for label, met in targets:
        print(f"  target: {label}: {'met' if met else 'MISSED'}", flush=True)
    return all(met for _, met in targets)


if __name__ == "__main__":
    raise SystemExit(main())
