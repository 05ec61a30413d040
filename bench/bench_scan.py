"""`make bench-scan`: crawl a generated local site of (default) 5,000 benign images and report
pages/s, images/s and the share of time spent outside fingerprinting.

Fingerprinting alone is measured first: the very work the crawl does for each image
(`anshim.crawl.media.fingerprint_media`: the engine's hashes plus the robust query hashes), on
the same bytes, in one process, sequentially. The crawl then fetches and fingerprints everything
through anshim.crawl, once per `--workers` setting (1: a fingerprinting thread inside the crawl
process; N > 1: N fingerprinting processes). Overhead = (crawl - fingerprint) / fingerprint;
the target (issue 5) is under 20 % on one machine.

The site is served by a separate process (Python's threading HTTP server, HTTP/1.1 keep-alive
like any real site), so its CPU competes with the crawl for this machine's cores but not for the
bench's interpreter lock.

    .venv/bin/python bench/bench_scan.py [--images 5000] [--per-page 50] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import http.server
import io
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from anshim.crawl import CrawlConfig, iter_crawl
from anshim.crawl.media import fingerprint_media


def make_site(root: Path, images: int, per_page: int, size: int) -> list[bytes]:
    (root / "img").mkdir(parents=True)
    rng = np.random.default_rng(1)
    blobs = []
    for i in range(images):
        blocks = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        # Photo-like: smooth gradients between the blocks, at a realistic size.
        im = Image.fromarray(blocks).resize((size, size), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
        blobs.append(buf.getvalue())
        (root / "img" / f"{i}.jpg").write_bytes(blobs[-1])
    pages = (images + per_page - 1) // per_page
    for p in range(pages):
        imgs = "".join(f'<img src="img/{i}.jpg">'
                       for i in range(p * per_page, min(images, (p + 1) * per_page)))
        (root / f"p{p}.html").write_text(f"<html><body>{imgs}</body></html>")
    links = "".join(f'<a href="p{p}.html">{p}</a>' for p in range(pages))
    (root / "index.html").write_text(f"<html><body>{links}</body></html>")
    return blobs


class _Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: files are sent with a Content-Length

    def log_message(self, *args: Any) -> None:
        pass


def _serve_forever(root: str, port: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    # A deep listen backlog: the default of 5 drops connections under 16 concurrent requests,
    # and every drop costs a one-second SYN retransmit.
    http.server.ThreadingHTTPServer.request_queue_size = 256
    os.chdir(root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port.put(server.server_address[1])
    server.serve_forever()


def serve(root: Path) -> tuple[multiprocessing.Process, str]:
    ctx = multiprocessing.get_context("spawn")
    port: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    proc = ctx.Process(target=_serve_forever, args=(str(root), port), daemon=True)
    proc.start()
    return proc, f"http://127.0.0.1:{port.get(timeout=30)}/"


def crawl_once(base: str, images: int, concurrency: int, workers: int) -> dict[str, float]:
    config = CrawlConfig(seeds=(base + "index.html",), depth=1, per_host_rate=100_000,
                         per_host_concurrency=concurrency, max_pages=images, workers=workers,
                         # The generated site is on loopback, which the crawler otherwise refuses.
                         allowed_private_hosts=("127.0.0.1",))
    t0 = time.perf_counter()
    pages = media = errors = 0
    for rec in iter_crawl(config):
        kind = rec["type"]
        pages += kind == "page"
        media += kind == "media" and "pdq" in rec
        errors += kind == "error" or (kind == "media" and "error" in rec)
    return {"seconds": time.perf_counter() - t0, "pages": pages, "media": media,
            "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--per-page", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--size", type=int, default=640, help="Image side in pixels.")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="Fingerprinting workers of the crawl (CrawlConfig.workers), "
                             "one crawl per value.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        blobs = make_site(root, args.images, args.per_page, args.size)
        t0 = time.perf_counter()
        for blob in blobs:
            fingerprint_media(blob, 1.0)
        t_fp = time.perf_counter() - t0
        print(f"images: {args.images} ({args.size} px JPEG), pages: "
              f"{(args.images + args.per_page - 1) // args.per_page + 1}, "
              f"{os.cpu_count()} cores")
        print(f"fingerprinting alone (the crawl's per-image work, one process): {t_fp:.1f} s "
              f"({args.images / t_fp:.0f} images/s)")
        server, base = serve(root)
        try:
            for workers in args.workers:
                r = crawl_once(base, args.images, args.concurrency, workers)
                t = r["seconds"]
                outside = max(0.0, t - t_fp)
                met = t < 1.2 * t_fp and r["media"] == args.images
                print(f"crawl, {workers} fingerprinting worker{'s' if workers > 1 else ''}: "
                      f"{t:.1f} s, {r['pages'] / t:.1f} pages/s, {r['media'] / t:.1f} images/s "
                      f"(fingerprinted {r['media']:.0f}, errors {r['errors']:.0f})")
                print(f"  share of crawl time outside fingerprinting: {outside / t:.1%}; "
                      f"crawling adds {(t - t_fp) / t_fp:+.1%} on top of fingerprinting "
                      f"(target < 20%: {'met' if met else 'NOT met'})")
        finally:
            server.terminate()
            server.join()


if __name__ == "__main__":
    main()
