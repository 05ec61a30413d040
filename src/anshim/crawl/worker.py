"""The crawl process: `python -m anshim.crawl.worker` reads a CrawlConfig (JSON) on stdin and
writes one JSON record a line on stdout.

A crawl runs in its own process because Twisted's reactor cannot be restarted within one, and
so that the media bytes stay inside this process: only URLs, headers and fingerprints come out.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from scrapy import signals
from scrapy.crawler import CrawlerProcess

from anshim.crawl.config import CrawlConfig
from anshim.crawl.spider import MediaSpider
from anshim.crawl.state import MediaState


def scrapy_settings(config: CrawlConfig, jobdir: str | None) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "USER_AGENT": config.user_agent,
        "ROBOTSTXT_OBEY": config.obey_robots,
        "DOWNLOAD_TIMEOUT": config.timeout_seconds,
        "DOWNLOAD_MAXSIZE": max(config.max_media_bytes, config.max_page_bytes),
        "DOWNLOAD_WARNSIZE": 0,
        "CONCURRENT_REQUESTS": max(16, config.per_host_concurrency * 4),
        "CONCURRENT_REQUESTS_PER_DOMAIN": config.per_host_concurrency,
        # Scrapy serialises a host's requests whenever a delay is set: only a real rate limit
        # (below ~1000 requests/s) gets one; otherwise concurrency alone bounds the load.
        "DOWNLOAD_DELAY": 1.0 / config.per_host_rate if config.per_host_rate < 1000 else 0.0,
        "DOWNLOAD_DELAY_JITTER": 0,
        "REDIRECT_MAX_TIMES": config.max_redirects,
        "RETRY_TIMES": 2,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        # Per-response bookkeeping nobody reads (the records are the results): a crawl of
        # thousands of media spends measurable CPU on it.
        "STATS_CLASS": "scrapy.statscollectors.DummyStatsCollector",
        "LOGSTATS_INTERVAL": 0,
        "MEMUSAGE_ENABLED": False,
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.stats.DownloaderStats": None,
        },
        "HTTPCACHE_ENABLED": False,  # never keep media bodies on disk
        "LOG_LEVEL": os.environ.get("ANSHIM_CRAWL_LOG_LEVEL", "ERROR"),
        # Scrapy starts this many asyncio tasks for the output of every response (default
        # 100): ours yields requests only, which need no parallelism, and the tasks cost more
        # CPU per image than the rest of the crawl.
        "CONCURRENT_ITEMS": 4,
        "REACTOR_THREADPOOL_MAXSIZE": max(2, config.workers * 2),
        "DEPTH_LIMIT": config.depth + 1,
    }
    if jobdir:
        # Scrapy's job directory keeps the pending requests (URLs only) to resume a crawl.
        settings["JOBDIR"] = jobdir
    return settings


def main() -> int:
    config = CrawlConfig.from_json(sys.stdin.read())
    state = MediaState(config.state_path)
    out = sys.stdout

    def emit(record: dict[str, Any]) -> None:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()

    jobdir = f"{config.state_path}.job" if config.state_path else None
    process = CrawlerProcess(settings=scrapy_settings(config, jobdir))
    crawler = process.create_crawler(MediaSpider)

    def on_spider_error(failure: Any, response: Any, spider: Any) -> None:
        # A bug or a hostile response must show up in the results, not only in a log.
        emit({"type": "error", "url": response.url, "error": failure.type.__name__,
              "message": str(failure.value)[:300]})

    crawler.signals.connect(on_spider_error, signal=signals.spider_error)
    failures: list[str] = []

    def on_crawl_failed(failure: Any) -> None:
        # The crawl could not start or broke down (Scrapy only logs this): the caller must
        # not read an empty result as "nothing found".
        failures.append(f"{failure.type.__name__}: {failure.value}")

    process.crawl(crawler, config=config, emit=emit, state=state).addErrback(on_crawl_failed)
    process.start()
    state.close()
    if failures:
        print("The crawl failed: " + "; ".join(failures), file=sys.stderr)
        return 1
    emit({"type": "done"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
