"""Fetching a page's HTML in memory, size-limited (no Django: Ray workers import this)."""

from __future__ import annotations

import urllib.error
import urllib.request

from anshim.crawl import CrawlConfig
from anshim.crawl.netguard import NO_POLICY_EXEMPTIONS, HostPolicy, guarded_urlopen

#: The page's HTML kept as evidence is cut here (the text is what matters, not the scripts).
MAX_PAGE_BYTES = 2 * 1024 * 1024


def fetch_page_html(url: str, *, timeout: float = 20.0, limit: int = MAX_PAGE_BYTES,
                    policy: HostPolicy = NO_POLICY_EXEMPTIONS) -> str:
    """The page's HTML, in memory and size-limited (only for pages with a match). Public
    addresses only, unless `policy` allows the host (`anshim.crawl.netguard`)."""
    if not url.startswith(("http://", "https://")):
        return ""
    req = urllib.request.Request(url, headers={"User-Agent": CrawlConfig.user_agent})  # noqa: S310
    try:
        with guarded_urlopen(req, timeout=timeout, policy=policy) as resp:
            ctype = resp.headers.get("Content-Type", "")
            if "html" not in ctype.lower():
                return ""
            data = resp.read(limit)
            charset = resp.headers.get_content_charset() or "utf-8"
    except (urllib.error.URLError, OSError, ValueError):
        return ""
    return data.decode(charset, errors="replace")
