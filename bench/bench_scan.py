"""`make bench-scan`: crawl a generated local site of (default) 5,000 benign images and report
pages/s, images/s and the share of time spent outside fingerprinting.

Fingerprinting alone is measured first (the same bytes, in one process, sequentially); the crawl
then fetches and fingerprints everything through anshim.crawl. Overhead = (crawl - fingerprint)
/ fingerprint; the target is under 20 %.

    .venv/bin/python bench/bench_scan.py [--images 5000] [--per-page 50]
"""

from __future__ import annotations

import argparse
import http.server
import io
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from anshim.crawl import CrawlConfig, iter_crawl
from anshim.fingerprint import fingerprint_bytes


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


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args: Any) -> None:
            pass

    # A deep listen backlog: the default of 5 drops connections under 16 concurrent requests,
    # and every drop costs a one-second SYN retransmit.
    http.server.ThreadingHTTPServer.request_queue_size = 256
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--per-page", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--size", type=int, default=640, help="Image side in pixels.")
    parser.add_argument("--workers", type=int, default=1,
                        help="Fingerprinting threads in the crawl (CrawlConfig.workers).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        blobs = make_site(root, args.images, args.per_page, args.size)
        t0 = time.perf_counter()
        for blob in blobs:
            fingerprint_bytes(blob)
        t_fp = time.perf_counter() - t0
        server, base = serve(root)
        try:
            config = CrawlConfig(seeds=(base + "index.html",), depth=1, per_host_rate=100_000,
                                 per_host_concurrency=args.concurrency,
                                 max_pages=args.images, workers=args.workers)
            t0 = time.perf_counter()
            pages = media = errors = 0
            for rec in iter_crawl(config):
                kind = rec["type"]
                pages += kind == "page"
                media += kind == "media" and "pdq" in rec
                errors += kind == "error" or (kind == "media" and "error" in rec)
            t_crawl = time.perf_counter() - t0
        finally:
            server.shutdown()
    outside = max(0.0, t_crawl - t_fp)
    print(f"images: {args.images}  pages: {pages}  fingerprinted: {media}  errors: {errors}")
    print(f"fingerprinting alone: {t_fp:.1f} s ({args.images / t_fp:.0f} images/s)")
    print(f"crawl: {t_crawl:.1f} s  {pages / t_crawl:.1f} pages/s  {media / t_crawl:.1f} images/s")
    print(f"share of crawl time outside fingerprinting: {outside / t_crawl:.1%}  "
          f"(crawling adds {outside / t_fp:.1%} on top of fingerprinting; target < 20%)")


if __name__ == "__main__":
    main()
