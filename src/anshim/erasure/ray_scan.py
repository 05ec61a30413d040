"""Fanning a scan out over a Ray cluster: `anshim scan --ray ADDRESS URL...`.

The driver walks the site level by level (depth 0 = the seeds): each level's pages are split
into chunks, and each Ray task crawls its chunk with depth 0 (fetch the pages, fetch and
fingerprint their media: the expensive part) while discovery tasks collect the links to the
next level. The driver then matches the records against the banks and records sightings,
exactly as a local run does, so both give the same results. Media bytes stay inside the
workers' crawl processes; only URLs, headers and fingerprints travel.

ADDRESS is what `ray.init` takes: "local" starts a private instance on this machine, "auto"
joins the cluster this machine belongs to, "ray://head:10001" a remote one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from anshim.crawl import CrawlConfig, extract_links, iter_crawl

CHUNK_PAGES = 8


def crawl_chunk(pages: list[str], options: dict[str, Any]) -> list[dict[str, Any]]:
    """(Ray task) Fetch `pages` and fingerprint their media; the crawl's records."""
    return list(iter_crawl(CrawlConfig(seeds=tuple(pages), depth=0, **options)))


def discover_links(pages: list[str], max_bytes: int,
                   allowed_private_hosts: tuple[str, ...] = ()) -> list[str]:
    """(Ray task) The links to further pages on `pages`."""
    from anshim.crawl.netguard import HostPolicy
    from anshim.erasure.fetch import fetch_page_html

    policy = HostPolicy.allowing(allowed_private_hosts)
    out: list[str] = []
    for page in pages:
        html = fetch_page_html(page, limit=max_bytes, policy=policy)
        if html:
            out.extend(extract_links(html, page).pages)
    return out


def _in_scope(url: str, domains: tuple[str, ...]) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in domains)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def ray_records(seeds: Iterable[str], *, address: str, depth: int = 1,
                allowed_domains: Iterable[str] = (), per_host_rate: float = 4.0,
                per_host_concurrency: int = 4, chunk_pages: int = CHUNK_PAGES,
                allowed_private_hosts: Iterable[str] = (),
                ) -> Iterator[dict[str, Any]]:
    """Crawl records like `iter_crawl`'s, produced by Ray tasks."""
    import ray

    config = CrawlConfig(seeds=tuple(seeds), depth=depth, allowed_domains=tuple(allowed_domains),
                         per_host_rate=per_host_rate, per_host_concurrency=per_host_concurrency,
                         allowed_private_hosts=tuple(allowed_private_hosts))
    started_here = not ray.is_initialized()
    if started_here:
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    crawl_task = ray.remote(crawl_chunk)
    discover_task = ray.remote(discover_links)
    options = {"allowed_domains": config.domains, "per_host_rate": per_host_rate,
               "per_host_concurrency": per_host_concurrency,
               "allowed_private_hosts": config.allowed_private_hosts}
    try:
        frontier = list(dict.fromkeys(config.seeds))
        seen = set(frontier)
        for level in range(depth + 1):
            crawls = [crawl_task.remote(chunk, options)
                      for chunk in _chunks(frontier, chunk_pages)]
            found = ([discover_task.remote(chunk, config.max_page_bytes,  # type: ignore[call-arg]
                                           config.allowed_private_hosts)
                      for chunk in _chunks(frontier, chunk_pages)] if level < depth else [])
            for ref in crawls:
                yield from ray.get(ref)
            nxt: list[str] = []
            for links_ref in found:
                links: list[str] = ray.get(links_ref)
                for url in links:
                    if url not in seen and _in_scope(url, config.domains):
                        seen.add(url)
                        nxt.append(url)
            frontier = nxt
            if not frontier:
                break
    finally:
        if started_here:
            ray.shutdown()
