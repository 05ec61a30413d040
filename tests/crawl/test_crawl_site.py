"""A real crawl (Scrapy in a child process) of a small site served on loopback."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from anshim.crawl import CrawlConfig, CrawlConfigError, crawl

#: The test site is on loopback: allowed explicitly (the crawler refuses it otherwise).
LOOPBACK = ("127.0.0.1",)


def site_config(base: str, **options: Any) -> CrawlConfig:
    return CrawlConfig(seeds=(base,), allowed_private_hosts=LOOPBACK, **options)


def _png(seed: int, size: int = 96) -> bytes:
    rng = np.random.default_rng(seed)
    arr = (rng.random((size // 8, size // 8, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(arr).resize((size, size), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    (tmp_path / "img").mkdir()
    for i in range(3):
        (tmp_path / "img" / f"p{i}.png").write_bytes(_png(i))
    (tmp_path / "img" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "index.html").write_text(
        '<html><body><img src="img/p0.png"><a href="page2.html">2</a>'
        '<img src="img/missing.png"></body></html>')
    (tmp_path / "page2.html").write_text(
        '<html><body><img src="img/p1.png"><img src="img/p0.png">'
        '<a href="page3.html">3</a><img src="img/broken.jpg"></body></html>')
    (tmp_path / "page3.html").write_text('<html><body><img src="img/p2.png"></body></html>')

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", tmp_path
    finally:
        server.shutdown()


def _media(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["page_url"].rsplit("/", 1)[-1], r["media_url"].rsplit("/", 1)[-1]): r
            for r in records if r["type"] == "media"}


def test_crawl_fingerprints_media_on_every_page_within_depth(site: tuple[str, Path]) -> None:
    base, _ = site
    records = crawl(site_config(base, depth=1, per_host_rate=100))
    media = _media(records)
    assert ("", "p0.png") in media and ("page2.html", "p0.png") in media
    assert ("page2.html", "p1.png") in media
    assert not any(m == "p2.png" for _, m in media)  # page3 is beyond depth 1
    assert len(media[("", "p0.png")]["pdq"]) == 64
    assert media[("", "p0.png")]["pdq"] == media[("page2.html", "p0.png")]["pdq"]
    assert media[("page2.html", "broken.jpg")]["error"]  # typed engine error, crawl goes on
    assert media[("", "missing.png")]["gone"] is True


def test_resume_does_not_fetch_unchanged_media_again(site: tuple[str, Path], tmp_path_factory: Any
                                                      ) -> None:
    base, _ = site
    state = tmp_path_factory.mktemp("state") / "crawl.sqlite3"
    config = site_config(base, depth=2, per_host_rate=100, state_path=str(state))
    first = _media(crawl(config))
    assert "unchanged" not in first[("", "p0.png")]
    # A new crawl (a fresh job directory: the first one finished) revalidates media instead of
    # downloading it: the server answers 304 and the stored fingerprint is reused.
    for job in state.parent.glob("*.job"):
        import shutil

        shutil.rmtree(job)
    second = _media(crawl(config))
    assert second[("", "p0.png")].get("unchanged") is True
    assert second[("", "p0.png")]["pdq"] == first[("", "p0.png")]["pdq"]


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(CrawlConfigError):
        CrawlConfig(seeds=("ftp://x.test/",))
    with pytest.raises(CrawlConfigError):
        CrawlConfig(seeds=())


def test_image_records_carry_robust_query_hashes(site: tuple[str, Path]) -> None:
    base, _ = site
    records = crawl(site_config(base, depth=0, per_host_rate=100))
    media = _media(records)[("", "p0.png")]
    strategies = {q["strategy"] for q in media["robust"]}
    assert any(s.startswith("dihedral") for s in strategies)
    assert all(len(q["pdq"]) == 64 for q in media["robust"])


def test_fingerprinting_processes_give_the_same_records_as_the_thread(
        site: tuple[str, Path]) -> None:
    base, _ = site
    one = _media(crawl(site_config(base, depth=1, per_host_rate=100, workers=1)))
    pool = _media(crawl(site_config(base, depth=1, per_host_rate=100, workers=2)))
    assert one.keys() == pool.keys()
    for key, rec in one.items():
        for field in ("pdq", "quality", "sha256", "robust", "gone"):
            assert rec.get(field) == pool[key].get(field), (key, field)
        assert bool(rec.get("error")) == bool(pool[key].get("error"))


def test_zero_workers_is_refused() -> None:
    with pytest.raises(CrawlConfigError, match="worker"):
        CrawlConfig(seeds=("http://x.test/",), workers=0)


def test_a_crawl_that_cannot_start_fails_loudly(site: tuple[str, Path]) -> None:
    """Scrapy only logs a crawl that breaks down at start; the worker must not then report a
    finished crawl with nothing found (the runner turns the missing end into CrawlFailed)."""
    import subprocess
    import sys

    base, _ = site
    code = (
        "import sys\n"
        "from anshim.crawl import spider, worker\n"
        "def broken(self, *a, **kw):\n"
        "    raise RuntimeError('spider cannot start')\n"
        "spider.MediaSpider.__init__ = broken\n"
        "sys.exit(worker.main())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          input=site_config(base, depth=0).to_json(), timeout=120)
    assert proc.returncode == 1
    assert '"done"' not in proc.stdout
    assert "spider cannot start" in proc.stderr


def test_a_worker_dying_on_a_hostile_file_costs_that_file_only(site: tuple[str, Path]) -> None:
    """A fingerprinting process that dies breaks its pool: the crawl replaces the pool,
    retries the other files, reports the killer file as WorkerCrashed and finishes."""
    import json
    import subprocess
    import sys

    from .crashing import MARKER

    base, root = site
    (root / "img" / "killer.jpg").write_bytes(b"\xff\xd8\xff\xe0" + MARKER)
    (root / "index.html").write_text(
        '<html><body><img src="img/p0.png"><img src="img/killer.jpg"><img src="img/p1.png">'
        '<img src="img/p2.png"></body></html>')
    code = (
        "import sys\n"
        "from anshim.crawl import spider, worker\n"
        "from tests.crawl.crashing import fingerprint_or_die\n"
        "spider.fingerprint_media = fingerprint_or_die\n"
        "sys.exit(worker.main())\n"
    )
    config = site_config(base, depth=0, per_host_rate=100, workers=2)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          input=config.to_json(), timeout=180,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert records[-1] == {"type": "done"}
    media = _media(records)
    assert media[("", "killer.jpg")]["error"] == "WorkerCrashed"
    for name in ("p0.png", "p1.png", "p2.png"):
        assert len(media[("", name)].get("pdq", "")) == 64, media[("", name)]
