"""Robustness benchmark (``make bench-robustness``): are edited re-uploads found, without false
matches, through the production path — and what does plain PDQ find on the same data?

Production path (issue 15): entries are registered as `register_image_robust` registers them
(the engine's MD5/SHA-256/PDQ rows plus `registration_fingerprints`' ``trim`` and crop-grid
variants) into the in-memory `BankStore`, and every query goes through the ONE matching core
that `anshim match`, the crawl and the partner lookup run (`anshim.matching.core.MatchingCore`,
the strategy rules of `anshim.matching.strategy`), with the query hashes the crawl makes
(`anshim.fingerprint.analyze.analyze_bytes`: one decode per file).

Side by side on the same files: ``plain`` (the engine's PDQ in a `PDQIndex`, threshold 31, the
reference: what threatexchange/pdqhash users run), ``dihedral`` (plain plus the 7 turned
hashes) and ``anshim-unguarded`` (the core with the per-strategy thresholds and quality gates
off), so the safeguards' effect is measured, not assumed.

Data: benign generated pictures (``bench_robustness_data.generated_sets``). The bank holds
``--bank`` entries, ``--robust`` of them registered with the crop grid and the rest as a hash
list would be (one PDQ each); ``--positives`` robust entries are queried under every transform,
crops per depth bin from 3 % to 25 % a side and combined edits; ``--negatives`` pictures never
registered are queried as JPEG and under 3 random transforms each (4 queries a picture).
``--data real`` uses the skimage/wallpaper set of earlier runs instead (``make system-deps``).

Prints every target and whether it is met; exits 1 when one is missed.
Usage: ``.venv/bin/python -m bench.bench_robustness [--bank N] [--robust N] [--positives N]
[--negatives N] [--json PATH] [--video]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from collections import defaultdict  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from PIL import Image  # noqa: E402

from anshim.fingerprint import ImageFingerprint, fingerprint_bytes  # noqa: E402
from anshim.fingerprint.analyze import analyze_bytes  # noqa: E402
from anshim.fingerprint.robust_strategy import registration_fingerprints  # noqa: E402
from anshim.matching import PDQIndex  # noqa: E402
from anshim.matching.core import FileQuery, MatchingCore, file_query  # noqa: E402
from anshim.matching.store import PDQ, MemoryBankStore  # noqa: E402
from anshim.matching.strategy import (  # noqa: E402
    DEFAULT_RULES,
    MIN_QUALITY,
    UNGUARDED_RULES,
)
from bench.bench_robustness_data import (  # noqa: E402
    CROP_BINS,
    CROP_GRID_DESIGN,
    GENERATED_TRANSFORMS,
    Item,
    build_sets,
    crop_bin_name,
    generated_sets,
)

METHODS = ("plain", "dihedral", "anshim", "anshim-unguarded")
THRESHOLD = 31
CACHE = Path("bench/results/robustness-registration-cache.json")
#: Recall targets (share of edited copies found by the production path).
RECALL_TARGETS: dict[str, float] = {
    "identity": 98.0, "jpeg30-50": 95.0, "resize": 90.0, "grey": 95.0, "watermark": 90.0,
    "bright-contrast": 90.0, "mirror": 95.0, "rotate90": 95.0,
    "crop3-10": 90.0, "border5-20": 90.0, "screenshot": 90.0,
    crop_bin_name(*CROP_BINS[0]): 90.0, crop_bin_name(*CROP_BINS[1]): 90.0,
}
#: At most this share of negative queries may match anything (production path).
FMR_TARGET_PERCENT = 0.1
MIN_BANK, MIN_NEGATIVE_QUERIES = 1000, 10_000


def _png(rgb: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _seed(*parts: str) -> random.Random:
    return random.Random(zlib.crc32("|".join(parts).encode()))


def _design(name: str) -> str:
    """Where a crop bin lies against the crop grid's design range."""
    for lo, hi in CROP_BINS:
        if crop_bin_name(lo, hi) == name:
            if hi <= CROP_GRID_DESIGN[1] + 0.01:
                return "inside the grid's design"
            if lo >= CROP_GRID_DESIGN[1]:
                return "OUTSIDE the grid's design"
            return "partly outside the grid's design"
    return ""


@dataclass
class Registered:
    """What `register_image_robust` stores for one file (Django-free)."""

    md5: str
    sha256: str
    pdq: list[tuple[str, int, str]]  # (hex, quality, variant)


def register_rows(data: bytes, *, crops: bool) -> Registered:
    fp = fingerprint_bytes(data)
    assert isinstance(fp, ImageFingerprint)
    rows = [(fp.pdq, fp.quality, "original")]
    if crops:
        seen = {fp.pdq}
        for reg in registration_fingerprints(data):
            if reg.variant != "original" and reg.pdq not in seen:
                seen.add(reg.pdq)
                rows.append((reg.pdq, reg.quality, reg.variant))
    return Registered(fp.md5, fp.sha256, rows)


def _load_cache() -> dict[str, Any]:
    try:
        return dict(json.loads(CACHE.read_text()))
    except (OSError, ValueError):
        return {}


@dataclass
class Bank:
    """The production core (twice: default rules, safeguards off) and the plain references."""

    store: MemoryBankStore = field(default_factory=MemoryBankStore)
    entry_of: dict[int, int] = field(default_factory=dict)  # core entry id -> item index
    plain: PDQIndex = field(default_factory=lambda: PDQIndex(threshold=THRESHOLD))
    hashes: int = 0
    register_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.bank_id = self.store.add_bank("victims", threshold=THRESHOLD)
        self.core = MatchingCore(self.store, rules=DEFAULT_RULES)
        self.unguarded = MatchingCore(self.store, rules=UNGUARDED_RULES)

    def register(self, items: list[Item], robust: int) -> None:
        cache = _load_cache()
        t0 = time.perf_counter()
        plain_ids: list[int] = []
        plain_hashes: list[str] = []
        for n, item in enumerate(items):
            data = _png(item.rgb)
            crops = n < robust
            key = f"{hashlib.sha256(data).hexdigest()}:{int(crops)}"
            if key in cache:
                reg = Registered(cache[key]["md5"], cache[key]["sha256"],
                                 [tuple(r) for r in cache[key]["pdq"]])  # type: ignore[misc]
            else:
                reg = register_rows(data, crops=crops)
                cache[key] = {"md5": reg.md5, "sha256": reg.sha256, "pdq": reg.pdq}
            entry = self.store.add_entry(self.bank_id, [(PDQ, h, q, v) for h, q, v in reg.pdq],
                                         md5=reg.md5, sha256=reg.sha256, label=item.name)
            self.entry_of[entry] = n
            self.hashes += len(reg.pdq)
            original, quality, _ = reg.pdq[0]
            if quality >= MIN_QUALITY:
                plain_ids.append(n)
                plain_hashes.append(original)
            if n % 100 == 99:
                print(f"registered {n + 1}/{len(items)}", flush=True)
                CACHE.parent.mkdir(parents=True, exist_ok=True)
                CACHE.write_text(json.dumps(cache))
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        CACHE.write_text(json.dumps(cache))
        self.plain.add(plain_ids, plain_hashes)
        self.register_seconds = time.perf_counter() - t0
        self.core.refresh()
        self.unguarded.refresh()

    def query(self, data: bytes, seconds: dict[str, float]) -> dict[str, dict[int, str]]:
        """Item indexes found -> the strategy that found them, per method."""
        out: dict[str, dict[int, str]] = {}
        # The references share one decode (the plain hash is the dihedral set's first): the
        # plain cost below includes the 7 turned hashes, an overestimate.
        s = time.perf_counter()
        fp = fingerprint_bytes(data, dihedral=True)
        assert isinstance(fp, ImageFingerprint)
        good = fp.quality >= MIN_QUALITY
        hits = self.plain.search([fp.pdq], THRESHOLD)[0] if good else []
        out["plain"] = {int(i): "pdq" for i, _ in hits}
        seconds["plain"] += time.perf_counter() - s
        s = time.perf_counter()
        found: dict[int, str] = {}
        if good and fp.dihedral:
            for row in self.plain.search(list(fp.dihedral.values()), THRESHOLD):
                found.update((int(i), "dihedral") for i, _ in row)
        out["dihedral"] = found
        seconds["dihedral"] += time.perf_counter() - s
        # The production path: one decode for the fingerprint and the robust query hashes
        # (what the crawl does), then the core.
        s = time.perf_counter()
        analysis = analyze_bytes(data)
        q: FileQuery = file_query(analysis.fingerprint, analysis.queries)
        [matches] = self.core.match_files([q])
        out["anshim"] = {self.entry_of[m.entry_id]: m.strategy for m in matches}
        seconds["anshim"] += time.perf_counter() - s
        s = time.perf_counter()
        [loose] = self.unguarded.match_files([q])
        out["anshim-unguarded"] = {self.entry_of[m.entry_id]: m.strategy for m in loose}
        seconds["anshim-unguarded"] += time.perf_counter() - s
        return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    if args.data == "real":
        registered, negatives = build_sets(args.limit)
        transforms = {k: v for k, v in GENERATED_TRANSFORMS.items()}
    else:
        registered, negatives = generated_sets(args.bank, args.negatives)
        transforms = GENERATED_TRANSFORMS
    robust = min(args.robust, len(registered))
    positives = min(args.positives, robust)
    print(f"bank: {len(registered)} entries ({robust} with the crop grid), {len(negatives)} "
          f"negative pictures (made in {time.perf_counter() - t0:.0f} s)", flush=True)
    bank = Bank()
    bank.register(registered, robust)
    print(f"registered {len(registered)} entries, {bank.hashes} PDQ hashes, in "
          f"{bank.register_seconds:.0f} s", flush=True)
    found: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METHODS, 0))
    wrong: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METHODS, 0))
    total: dict[str, int] = defaultdict(int)
    strategies: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    seconds = dict.fromkeys(METHODS, 0.0)
    queries = 0
    names = list(transforms)
    for n, item in enumerate(registered[:positives]):
        for tname in names:
            data = transforms[tname](item.rgb, _seed(item.name, tname))
            total[tname] += 1
            queries += 1
            for method, hits in bank.query(data, seconds).items():
                if n in hits:
                    found[tname][method] += 1
                    if method == "anshim":
                        strategies[tname][hits[n]] += 1
                wrong[tname][method] += len(set(hits) - {n})
        if n % 25 == 24:
            print(f"positives: {n + 1}/{positives}", flush=True)
    neg_queries = 0
    neg_false: dict[str, int] = dict.fromkeys(METHODS, 0)
    neg_by_strategy: dict[str, int] = defaultdict(int)
    false_examples: list[str] = []
    for n, item in enumerate(negatives):
        rnd = _seed(item.name, "pick")
        for tname in ["identity", *rnd.sample(names[1:], 3)]:
            data = transforms[tname](item.rgb, _seed(item.name, tname))
            neg_queries += 1
            queries += 1
            for method, hits in bank.query(data, seconds).items():
                if hits:
                    neg_false[method] += 1
                    if method == "anshim":
                        for s in set(hits.values()):
                            neg_by_strategy[s] += 1
                        if len(false_examples) < 20:
                            false_examples.append(
                                f"{item.name} [{tname}] -> "
                                f"{[(registered[h].name, s) for h, s in hits.items()]}")
        if n % 250 == 249:
            print(f"negatives: {n + 1}/{len(negatives)} pictures, {neg_queries} queries; "
                  f"false so far {neg_false}", flush=True)
    cost = {m: 1000 * seconds[m] / max(1, queries) for m in METHODS}
    return {
        "data": args.data, "bank_entries": len(registered), "robust_entries": robust,
        "pdq_hashes": bank.hashes, "positives": positives, "negative_pictures": len(negatives),
        "negative_queries": neg_queries, "queries": queries,
        "per_transform": {
            t: {"copies": total[t], "design": _design(t),
                "found_percent": {m: 100.0 * found[t][m] / max(1, total[t]) for m in METHODS},
                "wrong_entries": wrong[t], "strategies": dict(strategies[t])}
            for t in names},
        "negatives": {
            "false_queries": neg_false,
            "false_match_rate_percent": {m: 100.0 * neg_false[m] / max(1, neg_queries)
                                         for m in METHODS},
            "anshim_by_strategy": dict(neg_by_strategy)},
        "query_ms": cost,
        "false_examples": false_examples,
    }


def print_table(r: dict[str, Any]) -> None:
    print()
    print(f"{'transform':<19}{'copies':>7} | found %: {'plain':>6}{'dihed':>7}{'anshim':>8}"
          f"{'unguard':>8} | wrong: {'anshim':>6}{'unguard':>8} | anshim strategies")
    for t, row in r["per_transform"].items():
        f, w = row["found_percent"], row["wrong_entries"]
        strat = ", ".join(f"{k} {v}" for k, v in sorted(row["strategies"].items()))
        design = f" ({row['design']})" if row["design"] else ""
        print(f"{t:<19}{row['copies']:>7} | {'':9}{f['plain']:>6.1f}{f['dihedral']:>7.1f}"
              f"{f['anshim']:>8.1f}{f['anshim-unguarded']:>8.1f} | {'':7}"
              f"{w['anshim']:>6}{w['anshim-unguarded']:>8} | {strat}{design}")
    neg = r["negatives"]
    print(f"\nnegatives: {r['negative_queries']} queries ({r['negative_pictures']} pictures) "
          f"against {r['bank_entries']} entries / {r['pdq_hashes']} PDQ hashes")
    for m in METHODS:
        print(f"  false-match rate {m:<17} {neg['false_match_rate_percent'][m]:.3f} % "
              f"({neg['false_queries'][m]} queries)")
    print(f"  anshim false matches by strategy: {neg['anshim_by_strategy']}")
    q = r["query_ms"]
    print("query cost, ms (decode + hash + search): "
          + ", ".join(f"{m} {q[m]:.2f}" for m in METHODS)
          + " (anshim-unguarded: the core's matching only, same query hashes)")
    for ex in r["false_examples"]:
        print("  false match:", ex)


def check_targets(r: dict[str, Any]) -> bool:
    rows: list[tuple[str, bool]] = []
    rows.append((f"bank >= {MIN_BANK} entries: {r['bank_entries']}",
                 r["bank_entries"] >= MIN_BANK))
    rows.append((f"negative queries >= {MIN_NEGATIVE_QUERIES}: {r['negative_queries']}",
                 r["negative_queries"] >= MIN_NEGATIVE_QUERIES))
    fmr = r["negatives"]["false_match_rate_percent"]["anshim"]
    rows.append((f"false-match rate (anshim) <= {FMR_TARGET_PERCENT} %: {fmr:.3f} %",
                 fmr <= FMR_TARGET_PERCENT))
    for t, row in r["per_transform"].items():
        f = row["found_percent"]
        rows.append((f"{t}: anshim finds at least what plain PDQ finds "
                     f"({f['anshim']:.1f} % vs {f['plain']:.1f} %)", f["anshim"] >= f["plain"]))
        if t in RECALL_TARGETS:
            rows.append((f"{t}: anshim recall >= {RECALL_TARGETS[t]:.0f} %: {f['anshim']:.1f} %",
                         f["anshim"] >= RECALL_TARGETS[t]))
    neg = r["negatives"]["false_queries"]
    recall_delta = sum(row["found_percent"]["anshim-unguarded"] - row["found_percent"]["anshim"]
                       for row in r["per_transform"].values())
    print(f"\nsafeguards (per-strategy thresholds, quality gates): false-matching negative "
          f"queries {neg['anshim-unguarded']} without, {neg['anshim']} with; recall "
          f"{recall_delta:+.1f} points summed over transforms without them")
    print("targets:")
    for text, ok in rows:
        print(f"  [{'met' if ok else 'MISSED'}] {text}")
    return all(ok for _, ok in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=("generated", "real"), default="generated")
    p.add_argument("--bank", type=int, default=MIN_BANK, help="bank entries (generated data)")
    p.add_argument("--robust", type=int, default=200,
                   help="of which registered with the crop grid (the rest: one PDQ each)")
    p.add_argument("--positives", type=int, default=100,
                   help="robust entries queried under every transform")
    p.add_argument("--negatives", type=int, default=MIN_NEGATIVE_QUERIES // 4,
                   help="negative pictures (4 queries each)")
    p.add_argument("--limit", type=int, default=None, help="--data real: N originals")
    p.add_argument("--json", type=Path, default=Path("bench/results/robustness.json"))
    p.add_argument("--video", action="store_true", help="also run the vPDQ part")
    args = p.parse_args(argv)
    result = run(args)
    print_table(result)
    ok = check_targets(result)
    if args.video:
        from bench.bench_robustness_video import run_video

        result["video"] = run_video()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
