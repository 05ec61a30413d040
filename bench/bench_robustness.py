"""Robustness benchmark (``make bench-robustness``): are edited re-uploads found, without false
matches, and at what query cost — plain PDQ vs PDQ with dihedral queries vs Anshim's strategies.

Builds a benign evaluation set (see ``bench.bench_robustness_data``), registers the originals,
applies every transform to every original and to every negative (pictures of content never
registered), and prints per transform the share of copies found and the number of false matches
of each method, plus the query cost (decode + hash + search) relative to plain PDQ.

Usage: ``.venv/bin/python -m bench.bench_robustness [--limit N] [--neg-transforms K]
[--json PATH] [--no-video]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from PIL import Image  # noqa: E402

from anshim.fingerprint import ImageFingerprint, fingerprint_bytes  # noqa: E402
from anshim.fingerprint.robust_strategy import (  # noqa: E402
    MIN_QUALITY,
    RobustBank,
    query_fingerprints,
    registration_fingerprints,
)
from anshim.matching import PDQIndex  # noqa: E402
from bench.bench_robustness_data import TRANSFORMS, Item, build_sets  # noqa: E402

METHODS = ("plain", "dihedral", "anshim")
THRESHOLD = 31


def _png(item: Item) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(item.rgb).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _seed(*parts: str) -> random.Random:
    return random.Random(zlib.crc32("|".join(parts).encode()))


class Methods:
    """The three matchers over the same registered originals."""

    def __init__(self, registered: list[Item]) -> None:
        self.plain = PDQIndex(threshold=THRESHOLD)
        self.bank = RobustBank(threshold=THRESHOLD)
        ids, hashes = [], []
        self.extra_hashes = 0
        t0 = time.perf_counter()
        for entry_id, item in enumerate(registered):
            data = _png(item)
            fp = fingerprint_bytes(data)
            assert isinstance(fp, ImageFingerprint)
            if fp.quality >= MIN_QUALITY:
                ids.append(entry_id)
                hashes.append(fp.pdq)
            regs = registration_fingerprints(data)
            self.bank.add(entry_id, regs)
            self.extra_hashes += len(regs) - 1
        self.plain.add(ids, hashes)
        self.register_seconds = time.perf_counter() - t0

    def query(self, method: str, data: bytes) -> dict[int, str]:
        """Entry ids found -> the strategy that found them."""
        if method == "anshim":
            return {m.entry_id: m.strategy for m in self.bank.search(query_fingerprints(data))}
        fp = fingerprint_bytes(data, dihedral=method == "dihedral")
        assert isinstance(fp, ImageFingerprint)
        if fp.quality < MIN_QUALITY:
            return {}
        hashes = list(fp.dihedral.values()) if fp.dihedral else [fp.pdq]
        return {ident: method for row in self.plain.search(hashes, THRESHOLD) for ident, _ in row}


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    registered, negatives = build_sets(args.limit)
    print(f"registered originals: {len(registered)}, negatives: {len(negatives)} "
          f"(built in {time.perf_counter() - t0:.0f} s)", flush=True)
    methods = Methods(registered)
    print(f"registered {len(registered)} entries with {methods.extra_hashes} extra hashes "
          f"({methods.extra_hashes / max(1, len(registered)):.0f} per entry) in "
          f"{methods.register_seconds:.0f} s", flush=True)
    found: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METHODS, 0))
    false: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METHODS, 0))
    total: dict[str, int] = defaultdict(int)
    neg_total: dict[str, int] = defaultdict(int)
    seconds = dict.fromkeys(METHODS, 0.0)
    queries = 0
    strategies: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    false_examples: list[str] = []

    def timed(method: str, data: bytes) -> dict[int, str]:
        s = time.perf_counter()
        out = methods.query(method, data)
        seconds[method] += time.perf_counter() - s
        return out

    names = list(TRANSFORMS)
    for entry_id, item in enumerate(registered):
        for tname in names:
            data = TRANSFORMS[tname](item.rgb, _seed(item.name, tname))
            total[tname] += 1
            queries += 1
            for method in METHODS:
                hits = timed(method, data)
                if entry_id in hits:
                    found[tname][method] += 1
                    if method == "anshim":
                        strategies[tname][hits[entry_id]] += 1
                wrong = set(hits) - {entry_id}
                false[tname][method] += len(wrong)
                if wrong and method == "anshim" and len(false_examples) < 20:
                    false_examples.append(f"{item.name} [{tname}] -> "
                                          f"{[(registered[h].name, hits[h]) for h in wrong]}")
    print("positives done", flush=True)
    for n_i, item in enumerate(negatives):
        chosen = names
        if args.neg_transforms is not None:
            rnd = _seed(item.name, "pick")
            chosen = ["identity", *rnd.sample(names[1:], args.neg_transforms)]
        for tname in chosen:
            data = TRANSFORMS[tname](item.rgb, _seed(item.name, tname))
            neg_total[tname] += 1
            queries += 1
            for method in METHODS:
                hits = timed(method, data)
                if hits:
                    false[tname][method] += 1
                    if method == "anshim" and len(false_examples) < 20:
                        false_examples.append(f"{item.name} [{tname}] -> "
                                              f"{[registered[h].name for h in hits]}")
        if n_i % 200 == 199:
            print(f"negatives: {n_i + 1}/{len(negatives)}", flush=True)
    cost = {m: seconds[m] / max(1, queries) for m in METHODS}
    result: dict[str, Any] = {
        "registered": len(registered),
        "negatives": len(negatives),
        "extra_hashes_per_entry": methods.extra_hashes / max(1, len(registered)),
        "queries": queries,
        "per_transform": {
            t: {
                "copies": total[t],
                "negative_queries": neg_total[t],
                "found_percent": {m: 100.0 * found[t][m] / max(1, total[t]) for m in METHODS},
                "false_matches": false[t],
                "strategies": dict(strategies[t]),
            }
            for t in names
        },
        "query_ms": {m: 1000 * cost[m] for m in METHODS},
        "cost_ratio": {m: cost[m] / cost["plain"] for m in METHODS},
        "false_examples": false_examples,
    }
    return result


def print_table(r: dict[str, Any]) -> None:
    print()
    print(f"{'transform':<16}{'copies':>7}{'neg.q':>7} | found %: {'plain':>6}{'dihed':>7}"
          f"{'anshim':>8} | false: {'plain':>6}{'dihed':>6}{'anshim':>7} | anshim strategies")
    for t, row in r["per_transform"].items():
        f, fm = row["found_percent"], row["false_matches"]
        strat = ", ".join(f"{k} {v}" for k, v in sorted(row["strategies"].items()))
        print(f"{t:<16}{row['copies']:>7}{row['negative_queries']:>7} | {'':9}"
              f"{f['plain']:>6.1f}{f['dihedral']:>7.1f}{f['anshim']:>8.1f} | {'':7}"
              f"{fm['plain']:>6}{fm['dihedral']:>6}{fm['anshim']:>7} | {strat}")
    q, c = r["query_ms"], r["cost_ratio"]
    print(f"\nquery cost (decode + hash + search), ms: plain {q['plain']:.2f}, dihedral "
          f"{q['dihedral']:.2f} ({c['dihedral']:.2f}x), anshim {q['anshim']:.2f} "
          f"({c['anshim']:.2f}x)")
    print(f"registered {r['registered']} originals, {r['extra_hashes_per_entry']:.0f} extra "
          f"hashes per entry; {r['negatives']} negatives; {r['queries']} queries")
    for ex in r["false_examples"]:
        print("  false match:", ex)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=None,
                   help="use N registered originals and 4N negatives (quick runs)")
    p.add_argument("--neg-transforms", type=int, default=None,
                   help="apply K random transforms (plus identity) to each negative, not all")
    p.add_argument("--json", type=Path, default=Path("bench/results/robustness.json"))
    p.add_argument("--no-video", action="store_true", help="skip the vPDQ part")
    args = p.parse_args(argv)
    result = run(args)
    print_table(result)
    if not args.no_video:
        from bench.bench_robustness_video import run_video

        result["video"] = run_video()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
