"""Fetching pages and media from monitored sources (no Django).

`iter_crawl(CrawlConfig(seeds=...))` runs a Scrapy crawl in a child process and yields records:
``{"type": "page", ...}``, ``{"type": "media", "media_url", "page_url", "sha256", "kind",
"pdq"|"frames", ...}`` and ``{"type": "error", ...}``. Pages are fetched by Scrapy; media by the
fingerprinting workers themselves (`anshim.crawl.fetch`), and their bytes stay in the worker
that fetched them.
"""

from anshim.crawl.config import CrawlConfig, CrawlConfigError
from anshim.crawl.extract import PageLinks, extract_links, is_media_url
from anshim.crawl.runner import CrawlFailed, crawl, iter_crawl

__all__ = [
    "CrawlConfig", "CrawlConfigError", "CrawlFailed", "PageLinks", "crawl", "extract_links",
    "is_media_url", "iter_crawl",
]
