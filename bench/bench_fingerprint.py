"""Benchmark of the fingerprinting engine (``make bench-fingerprint``).

Hashes the same 1-3 megapixel JPEGs with our engine, with pdqhash + Pillow (the reference
binding) and with imagehash.phash, and the conformance videos with our engine and with Meta's
vpdq package, all on one core, and prints throughput with ratios. Benign inputs only: JPEGs are
generated (conformance photos rescaled and cropped, plus synthetic images) into a cache under
``bench/results/`` (ignored by git).

Usage: ``.venv/bin/python -m bench.bench_fingerprint [--images N] [--rounds R]``
"""

from __future__ import annotations

import os

# One core: no BLAS/OpenMP threads (set before numpy is imported).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from anshim.fingerprint import (  # noqa: E402
    ImageFingerprint,
    Limits,
    VideoFingerprint,
    bits_to_hex,
    fingerprint_bytes,
    fingerprint_files,
    hamming_distance,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CACHE = RESULTS / "bench_fingerprint_jpegs"


def conformance_dir() -> Path:
    env = os.environ.get("ANSHIM_CONFORMANCE_DIR")
    return Path(env) if env else (ROOT / ".." / "shared" / "conformance").resolve()


def _synthetic(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, size=(height // 64 + 2, width // 64 + 2, 3)).astype(np.uint8)
    im = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.normal(0, 6, size=(height, width, 3))
    return Image.fromarray(np.clip(np.asarray(im) + noise, 0, 255).astype(np.uint8))


def build_image_set(count: int) -> list[Path]:
    """1-3 MP JPEGs from benign sources, cached on disk (generated once)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = conformance_dir()
    sources: list[Path] = []
    if (conf / "pdq").is_dir():
        sources = sorted(
            p
            for p in (conf / "pdq").rglob("*")
            if p.suffix.lower() in {".jpg", ".png"} and "modes" not in p.parts
        )
    rng = np.random.default_rng(20261125)
    paths = []
    for i in range(count):
        path = CACHE / f"bench-{i:03d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        megapixels = rng.uniform(1.0, 3.0)
        aspect = rng.choice([4 / 3, 3 / 2, 16 / 9, 1.0, 3 / 4])
        width = round((megapixels * 1e6 * aspect) ** 0.5)
        height = round(width / aspect)
        if sources and i % 4 != 3:
            src = ImageOps.exif_transpose(Image.open(sources[i % len(sources)])).convert("RGB")
            im = ImageOps.fit(src, (width, height), Image.Resampling.BICUBIC)
        else:
            im = _synthetic(width, height, seed=i)
        im.save(path, format="JPEG", quality=int(rng.integers(80, 95)))
    return paths


def _pdqhash_pillow(data: bytes) -> tuple[str, int]:
    import pdqhash

    im = Image.open(io.BytesIO(data)).convert("RGB")
    bits, quality = pdqhash.compute(np.asarray(im))
    return bits_to_hex(bits.astype(bool)), int(quality)


def _imagehash_phash(data: bytes) -> str:
    import imagehash

    return str(imagehash.phash(Image.open(io.BytesIO(data))))


def _ours(data: bytes) -> tuple[str, int]:
    fp = fingerprint_bytes(data)
    assert isinstance(fp, ImageFingerprint)
    return fp.pdq, fp.quality


def bench_images(paths: list[Path], rounds: int) -> dict[str, Any]:
    blobs = [p.read_bytes() for p in paths]
    methods: dict[str, Callable[[bytes], Any]] = {"anshim": _ours}
    try:
        import pdqhash  # noqa: F401

        methods["pdqhash+Pillow"] = _pdqhash_pillow
    except ImportError:
        print("pdqhash not installed: skipping that baseline", file=sys.stderr)
    try:
        import imagehash  # noqa: F401

        methods["imagehash.phash"] = _imagehash_phash
    except ImportError:
        print("imagehash not installed: skipping that baseline", file=sys.stderr)
    for fn in methods.values():  # warm-up (imports, caches)
        fn(blobs[0])
    totals = dict.fromkeys(methods, 0.0)
    # Interleave methods image by image so that load from other processes hits all alike.
    for _ in range(rounds):
        for data in blobs:
            for name, fn in methods.items():
                t = time.perf_counter()
                fn(data)
                totals[name] += time.perf_counter() - t
    n = len(blobs) * rounds
    rates = {name: n / total for name, total in totals.items()}
    worst = 0
    worst_q = 0
    if "pdqhash+Pillow" in methods:
        for data in blobs:
            ours_hex, ours_q = _ours(data)
            ref_hex, ref_q = _pdqhash_pillow(data)
            worst = max(worst, hamming_distance(ours_hex, ref_hex))
            worst_q = max(worst_q, abs(ours_q - ref_q))
    megapixels = [Image.open(io.BytesIO(b)).size for b in blobs]
    return {
        "images": len(blobs),
        "rounds": rounds,
        "megapixels_min": min(w * h for w, h in megapixels) / 1e6,
        "megapixels_max": max(w * h for w, h in megapixels) / 1e6,
        "images_per_s_per_core": rates,
        "max_distance_vs_pdqhash": worst,
        "max_quality_diff_vs_pdqhash": worst_q,
    }


def bench_videos(rounds: int) -> dict[str, Any] | None:
    videos = sorted((conformance_dir() / "vpdq" / "videos").glob("*.mp4"))
    if not videos:
        print("no conformance videos: skipping the video benchmark", file=sys.stderr)
        return None
    limits = Limits(video_threads=1)
    blobs = [v.read_bytes() for v in videos]
    duration = 0.0
    for data in blobs:
        fp = fingerprint_bytes(data, limits=limits)
        assert isinstance(fp, VideoFingerprint)
        duration += fp.duration
    totals = {"anshim": 0.0}
    try:
        import vpdq

        totals["vpdq"] = 0.0
    except ImportError:
        vpdq = None
        print("vpdq not installed: skipping that baseline", file=sys.stderr)
    for _ in range(rounds):
        for path, data in zip(videos, blobs, strict=True):
            t = time.perf_counter()
            fingerprint_bytes(data, limits=limits)
            totals["anshim"] += time.perf_counter() - t
            if vpdq is not None:
                t = time.perf_counter()
                vpdq.computeHash(str(path), seconds_per_hash=1.0, thread_count=1)
                totals["vpdq"] += time.perf_counter() - t
    return {
        "videos": len(videos),
        "video_seconds": duration,
        "rounds": rounds,
        "video_s_per_s_per_core": {k: duration * rounds / v for k, v in totals.items()},
    }


def bench_batch(paths: list[Path]) -> dict[str, Any]:
    workers = os.cpu_count() or 1
    fingerprint_files(paths[:workers], workers=workers)  # warm the pool path
    t = time.perf_counter()
    results = fingerprint_files(paths, workers=workers)
    elapsed = time.perf_counter() - t
    assert all(isinstance(r, ImageFingerprint) for r in results)
    return {"workers": workers, "images_per_s": len(paths) / elapsed}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--images", type=int, default=40, help="number of JPEGs (default 40)")
    ap.add_argument("--rounds", type=int, default=2, help="passes over the image set")
    ap.add_argument("--video-rounds", type=int, default=1, help="passes over the videos")
    ap.add_argument("--no-batch", action="store_true", help="skip the all-cores batch run")
    args = ap.parse_args(argv)

    paths = build_image_set(args.images)
    images = bench_images(paths, args.rounds)
    videos = bench_videos(args.video_rounds)
    batch = None if args.no_batch else bench_batch(paths)

    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(
        f"JPEGs: {images['images']} files, {images['megapixels_min']:.1f}-"
        f"{images['megapixels_max']:.1f} MP, {images['rounds']} rounds, one core"
    )
    rates = images["images_per_s_per_core"]
    base = rates.get("pdqhash+Pillow")
    print(f"{'method':<22}{'images/s/core':>15}{'vs pdqhash+Pillow':>20}")
    for name, rate in rates.items():
        ratio = f"{rate / base:.2f}x" if base else "-"
        print(f"{name:<22}{rate:>15.1f}{ratio:>20}")
    if base:
        print(
            f"anshim vs pdqhash: max {images['max_distance_vs_pdqhash']} bits, "
            f"max quality difference {images['max_quality_diff_vs_pdqhash']} (target: 3x)"
        )
    if videos:
        print(
            f"\nvideos: {videos['videos']} files, {videos['video_seconds']:.1f} s of video, "
            "1 hash/s, one core"
        )
        vrates = videos["video_s_per_s_per_core"]
        vbase = vrates.get("vpdq")
        print(f"{'method':<22}{'video s/s/core':>15}{'vs vpdq':>20}")
        for name, rate in vrates.items():
            ratio = f"{rate / vbase:.2f}x" if vbase else "-"
            print(f"{name:<22}{rate:>15.1f}{ratio:>20}")
    if batch:
        print(
            f"\nbatch (fingerprint_files, {batch['workers']} workers): "
            f"{batch['images_per_s']:.1f} images/s"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"images": images, "videos": videos, "batch": batch}
    (RESULTS / "bench_fingerprint.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
