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
hashes) and ``anshim-unguarded`` (the core without the per-strategy thresholds), so the
safeguards' effect is measured, not assumed. The caps only act for a bank set above 31: the
same queries also go to a second copy of the bank at the widest ``--threshold`` (default 40 and
48), guarded and unguarded, and the plain reference at the same thresholds; a row per threshold
gives the false-match rate and the recall of each (a hit at distance d counts at every bank
threshold >= d, so one search at the widest threshold answers them all, exactly).

Data: benign generated pictures of the dead-leaves model (``bench_robustness_data.
generated_sets``; ``--calibrate`` compares plain PDQ on them with the real-photo set). The bank
holds
``--bank`` entries, ``--robust`` of them registered with the crop grid and the rest as a hash
list would be (one PDQ each); ``--positives`` robust entries are queried under every transform,
crops per depth bin from 3 % to 25 % a side and combined edits; ``--negatives`` pictures never
registered are queried as JPEG and under 3 random transforms each (4 queries a picture).
``--data real`` uses the skimage/wallpaper set of earlier runs instead (``make system-deps``).

Prints every target and whether it is met; exits 1 when one is missed.
Usage: ``.venv/bin/python -m bench.bench_robustness [--bank N] [--robust N] [--positives N]
[--negatives N] [--threshold T ...] [--json PATH] [--video] [--calibrate]``
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
    TRANSFORMS,
    Item,
    build_sets,
    crop_bin_name,
    generated_sets,
)

METHODS = ("plain", "dihedral", "anshim", "anshim-unguarded")
THRESHOLD = 31
#: Bank thresholds above the default at which the safeguards are compared (``--threshold``).
WIDE_THRESHOLDS = (40, 48, 56)
#: Methods compared per bank threshold: the core with and without the per-strategy caps, and
#: plain PDQ at the same threshold.
WIDE_METHODS = ("guarded", "unguarded", "plain")
#: The transforms plain PDQ is calibrated on (``--calibrate``): those it is meant to survive.
CALIBRATION_TRANSFORMS = ("identity", "resize", "jpeg30-50", "watermark", "bright-contrast",
                          "grey")
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
    #: The widest bank threshold compared: a second copy of the bank is configured with it.
    wide: int = max(WIDE_THRESHOLDS)

    def __post_init__(self) -> None:
        self.bank_id = self.store.add_bank("victims", threshold=THRESHOLD)
        self.core = MatchingCore(self.store, rules=DEFAULT_RULES)
        self.wide_store = MemoryBankStore()
        self.wide_bank_id = self.wide_store.add_bank("victims-wide", threshold=self.wide)
        self.wide_entry_of: dict[int, int] = {}
        self.guarded_wide = MatchingCore(self.wide_store, rules=DEFAULT_RULES)
        self.unguarded_wide = MatchingCore(self.wide_store, rules=UNGUARDED_RULES)

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
            rows = [(PDQ, h, q, v) for h, q, v in reg.pdq]
            entry = self.store.add_entry(self.bank_id, rows, md5=reg.md5, sha256=reg.sha256,
                                         label=item.name)
            self.entry_of[entry] = n
            wide = self.wide_store.add_entry(self.wide_bank_id, rows, md5=reg.md5,
                                             sha256=reg.sha256, label=item.name)
            self.wide_entry_of[wide] = n
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
        self.guarded_wide.refresh()
        self.unguarded_wide.refresh()

    def query(self, data: bytes, seconds: dict[str, float]
              ) -> tuple[dict[str, dict[int, str]], dict[str, dict[int, tuple[int, str]]]]:
        """Item indexes found -> the strategy that found them, per method (bank threshold 31);
        and per method of the wide comparison, item index -> (distance, strategy) found at
        the widest threshold."""
        out: dict[str, dict[int, str]] = {}
        wide: dict[str, dict[int, tuple[int, str]]] = {}
        # The references share one decode (the plain hash is the dihedral set's first): the
        # plain cost below includes the 7 turned hashes, an overestimate.
        s = time.perf_counter()
        fp = fingerprint_bytes(data, dihedral=True)
        assert isinstance(fp, ImageFingerprint)
        good = fp.quality >= MIN_QUALITY
        hits = self.plain.search([fp.pdq], self.wide)[0] if good else []
        wide["plain"] = {int(i): (int(d), "pdq") for i, d in hits}
        out["plain"] = {i: "pdq" for i, (d, _) in wide["plain"].items() if d <= THRESHOLD}
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
        [loose] = self.unguarded_wide.match_files([q])
        wide["unguarded"] = {self.wide_entry_of[m.entry_id]: (m.distance, m.strategy)
                             for m in loose}
        seconds["anshim-unguarded"] += time.perf_counter() - s
        # Without caps a hit at distance d is found at every bank threshold >= d.
        out["anshim-unguarded"] = {i: st for i, (d, st) in wide["unguarded"].items()
                                   if d <= THRESHOLD}
        [guarded] = self.guarded_wide.match_files([q])
        wide["guarded"] = {self.wide_entry_of[m.entry_id]: (m.distance, m.strategy)
                           for m in guarded}
        return out, wide


def _at(hits: dict[int, tuple[int, str]], threshold: int) -> set[int]:
    """The entries found at a bank threshold (the core reports each entry's nearest allowed
    hit, and the caps do not depend on the bank threshold, so this is exact)."""
    return {i for i, (d, _) in hits.items() if d <= threshold}


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
    thresholds = sorted({THRESHOLD, *args.threshold})
    bank = Bank(wide=max(thresholds))
    bank.register(registered, robust)
    print(f"registered {len(registered)} entries, {bank.hashes} PDQ hashes, in "
          f"{bank.register_seconds:.0f} s", flush=True)
    found: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METHODS, 0))
    wrong: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METHODS, 0))
    total: dict[str, int] = defaultdict(int)
    strategies: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    seconds = dict.fromkeys(METHODS, 0.0)
    # Per bank threshold and method of the wide comparison: copies found per transform,
    # other entries matched by positives, negative queries matching anything.
    wide_found = {t: {m: defaultdict(int) for m in WIDE_METHODS} for t in thresholds}
    wide_wrong = {t: dict.fromkeys(WIDE_METHODS, 0) for t in thresholds}
    wide_neg = {t: dict.fromkeys(WIDE_METHODS, 0) for t in thresholds}
    wide_examples: list[str] = []
    queries = 0
    names = list(transforms)
    for n, item in enumerate(registered[:positives]):
        for tname in names:
            data = transforms[tname](item.rgb, _seed(item.name, tname))
            total[tname] += 1
            queries += 1
            out, wide = bank.query(data, seconds)
            for method, hits in out.items():
                if n in hits:
                    found[tname][method] += 1
                    if method == "anshim":
                        strategies[tname][hits[n]] += 1
                wrong[tname][method] += len(set(hits) - {n})
            for t in thresholds:
                for method in WIDE_METHODS:
                    at = _at(wide[method], t)
                    wide_found[t][method][tname] += n in at
                    wide_wrong[t][method] += len(at - {n})
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
            out, wide = bank.query(data, seconds)
            for t in thresholds:
                for method in WIDE_METHODS:
                    at = _at(wide[method], t)
                    wide_neg[t][method] += bool(at)
                    if at and t > THRESHOLD and len(wide_examples) < 20:
                        wide_examples.append(
                            f"threshold {t} {method}: {item.name} [{tname}] -> "
                            f"{[(registered[h].name, wide[method][h]) for h in at]}")
            for method, hits in out.items():
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
        "by_threshold": {
            str(t): {
                m: {"false_queries": wide_neg[t][m],
                    "false_match_rate_percent": 100.0 * wide_neg[t][m] / max(1, neg_queries),
                    "wrong_entries": wide_wrong[t][m],
                    "found_percent": {x: 100.0 * wide_found[t][m][x] / max(1, total[x])
                                      for x in names}}
                for m in WIDE_METHODS}
            for t in thresholds},
        "threshold_examples": wide_examples,
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
    print_thresholds(r)


def print_thresholds(r: dict[str, Any]) -> None:
    """The safeguards per bank threshold: the core with the per-strategy caps (guarded), without
    them (unguarded) and plain PDQ, on the same queries."""
    by = r["by_threshold"]
    names = list(r["per_transform"])
    print(f"\nper bank threshold ({r['negative_queries']} negative queries; recall: mean over "
          f"the {len(names)} transforms; wrong: other entries matched by positives):")
    print(f"{'threshold':>9} | {'FMR %: guarded':>15}{'unguarded':>10}{'plain':>8} | "
          f"recall %: {'guarded':>8}{'unguarded':>10}{'plain':>8} | wrong: guarded unguarded")
    for t, row in by.items():
        fmr = {m: row[m]["false_match_rate_percent"] for m in WIDE_METHODS}
        rec = {m: sum(row[m]["found_percent"].values()) / max(1, len(names))
               for m in WIDE_METHODS}
        print(f"{t:>9} | {fmr['guarded']:>15.3f}{fmr['unguarded']:>10.3f}{fmr['plain']:>8.3f} | "
              f"{'':10}{rec['guarded']:>8.1f}{rec['unguarded']:>10.1f}{rec['plain']:>8.1f} | "
              f"{row['guarded']['wrong_entries']:>13}{row['unguarded']['wrong_entries']:>10}")
    ts = list(by)
    print(f"\n{'found % by threshold':<19}" + "".join(f"{'T' + t + ' g/u/plain':>20}" for t in ts))
    for name in names:
        cells = "".join(
            f"{by[t]['guarded']['found_percent'][name]:>8.1f}"
            f"{by[t]['unguarded']['found_percent'][name]:>6.1f}"
            f"{by[t]['plain']['found_percent'][name]:>6.1f}" for t in ts)
        print(f"{name:<19}{cells}")
    for ex in r["threshold_examples"]:
        print("  false match above 31:", ex)


def _plain_calibration(items: list[Item]) -> dict[str, Any]:
    """Plain PDQ (threshold 31, quality >= 50) on each picture's copies under the transforms
    PDQ is meant to survive, and the pictures' PDQ quality."""
    from anshim.fingerprint.pdq import hamming_distance

    found: dict[str, int] = dict.fromkeys(CALIBRATION_TRANSFORMS, 0)
    dist: dict[str, list[int]] = {t: [] for t in CALIBRATION_TRANSFORMS}
    qualities: list[int] = []
    for item in items:
        fp = fingerprint_bytes(_png(item.rgb))
        assert isinstance(fp, ImageFingerprint)
        qualities.append(fp.quality)
        for t in CALIBRATION_TRANSFORMS:
            copy = fingerprint_bytes(TRANSFORMS[t](item.rgb, _seed(item.name, t)))
            assert isinstance(copy, ImageFingerprint)
            d = hamming_distance(fp.pdq, copy.pdq)
            dist[t].append(d)
            found[t] += copy.quality >= MIN_QUALITY and d <= THRESHOLD
    n = max(1, len(items))

    def pct(values: list[int], q: float) -> int:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else 0

    return {"pictures": len(items),
            "quality": {"p10": pct(qualities, 0.1), "p50": pct(qualities, 0.5),
                        "share_100_percent": 100.0 * sum(q == 100 for q in qualities) / n},
            "found_percent": {t: 100.0 * found[t] / n for t in CALIBRATION_TRANSFORMS},
            "distance_p50": {t: pct(dist[t], 0.5) for t in CALIBRATION_TRANSFORMS},
            "distance_p90": {t: pct(dist[t], 0.9) for t in CALIBRATION_TRANSFORMS}}


def calibrate(count: int) -> None:
    """Plain PDQ on the real-photo set (registered originals and negatives) and on `count`
    generated pictures: the generator is judged by the reference method only."""
    registered, negatives = build_sets()
    generated, _ = generated_sets(count, 0)
    # The registered originals are photo-sized (224-512 px); most negatives are 128-256 px
    # tiles, harder for PDQ: shown apart.
    sets = {f"real orig. ({len(registered)})": registered,
            f"real tiles ({len(negatives)})": negatives,
            f"generated ({len(generated)})": generated}
    results = {name: _plain_calibration(items) for name, items in sets.items()}
    print(f"\nplain PDQ, threshold {THRESHOLD}: found % (median / p90 distance)")
    print(f"{'transform':<17}" + "".join(f"{name:>24}" for name in results))
    for t in CALIBRATION_TRANSFORMS:
        print(f"{t:<17}" + "".join(
            f"{r['found_percent'][t]:>12.1f} ({r['distance_p50'][t]:>2} / "
            f"{r['distance_p90'][t]:>2})" for r in results.values()))
    print(f"{'quality p10/p50':<17}" + "".join(
        f"{r['quality']['p10']:>16} / {r['quality']['p50']:>3}" for r in results.values()))
    print(f"{'quality = 100':<17}" + "".join(
        f"{r['quality']['share_100_percent']:>22.1f} %" for r in results.values()))


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
    for t, row in r["by_threshold"].items():
        g, u = row["guarded"], row["unguarded"]
        delta = sum(u["found_percent"][x] - g["found_percent"][x] for x in g["found_percent"])
        print(f"safeguards (per-strategy thresholds) at bank threshold {t}: false-matching "
              f"negative queries {u['false_queries']} without, {g['false_queries']} with; "
              f"recall {delta:+.1f} points summed over transforms without them")
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
    p.add_argument("--threshold", type=int, action="append", default=None,
                   help="bank threshold above 31 to compare the safeguards at (repeatable; "
                        f"default {', '.join(map(str, WIDE_THRESHOLDS))})")
    p.add_argument("--calibrate", action="store_true",
                   help="only compare plain PDQ on the generated and the real pictures")
    args = p.parse_args(argv)
    if args.threshold is None:
        args.threshold = list(WIDE_THRESHOLDS)
    if any(not THRESHOLD <= t <= 256 for t in args.threshold):
        p.error(f"--threshold must be between {THRESHOLD} and 256")
    if args.calibrate:
        calibrate(args.bank)
        return 0
    result = run(args)
    print_table(result)
    ok = check_targets(result)
    if args.video:
        from bench.bench_robustness_video import run_video

        result["video"] = run_video()
        ok = ok and bool(result["video"]["targets_met"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
