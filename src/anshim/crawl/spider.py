"""The Scrapy spider: pages → media links → media fetched in memory → fingerprints.

Each result is handed to `emit` as a plain dict (see `records.py` for the shapes); the media
bytes never leave this process and are never written to disk (no HTTP cache, no files pipeline).
"""

from __future__ import annotations

import hashlib
import ipaddress
import multiprocessing
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import defer
from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from anshim.crawl.config import CrawlConfig
from anshim.crawl.extract import extract_links, is_media_url
from anshim.crawl.media import fingerprint_media, warm_up
from anshim.crawl.netguard import BlockedAddress, HostPolicy
from anshim.crawl.state import MediaState

Emit = Callable[[dict[str, Any]], None]
_KEPT_HEADERS = ("content-type", "content-length", "etag", "last-modified", "server", "date")


def _headers(response: Response) -> dict[str, str]:
    out = {}
    for name in _KEPT_HEADERS:
        value = response.headers.get(name)
        if value is not None:
            out[name] = value.decode("latin-1")
    return out


class BlockedRequest(IgnoreRequest):
    """A request to an address that is not public (see `anshim.crawl.netguard`)."""


class PrivateAddressGuard:
    """Downloader middleware: a request (seed, link, media, or the new request a redirect
    becomes: it passes here again) to a host that is or resolves to a non-public address is
    refused. The answer per host is kept for the crawl; the connection itself is guarded too
    (`_GuardedNameResolver`), so a name that resolves differently the second time gains
    nothing."""

    def __init__(self, policy: HostPolicy) -> None:
        self.policy = policy
        self._verdicts: dict[str, str | None] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> PrivateAddressGuard:
        return cls(HostPolicy.allowing(crawler.settings.getlist("ANSHIM_ALLOWED_PRIVATE_HOSTS")))

    def process_request(self, request: Request, spider: Any = None) -> None:
        host = urlsplit(request.url).hostname or ""
        if host not in self._verdicts:
            try:
                self.policy.check_url(request.url)
                self._verdicts[host] = None
            except BlockedAddress as exc:
                self._verdicts[host] = str(exc)
            except ValueError as exc:
                raise BlockedRequest(str(exc)) from None
        refusal = self._verdicts[host]
        if refusal is not None:
            raise BlockedRequest(refusal)


@implementer(IResolutionReceiver)
class _FilteringReceiver:
    def __init__(self, receiver: Any, host: str, policy: HostPolicy) -> None:
        self.receiver, self.host, self.policy = receiver, host, policy

    def resolutionBegan(self, resolution: Any) -> None:  # noqa: N802 (Twisted's interface)
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address: Any) -> None:  # noqa: N802
        try:
            ipaddress.ip_address(address.host)
        except (AttributeError, ValueError):
            return
        if self.policy.permits(self.host, address.host):
            self.receiver.addressResolved(address)

    def resolutionComplete(self) -> None:  # noqa: N802
        self.receiver.resolutionComplete()


@implementer(IHostnameResolver)
class _GuardedNameResolver:
    """Wraps the reactor's name resolver: connections get only the addresses the policy
    permits (none left: the request fails as a DNS error)."""

    def __init__(self, inner: Any, policy: HostPolicy) -> None:
        self.inner, self.policy = inner, policy

    def resolveHostName(self, resolutionReceiver: Any, hostName: str,  # noqa: N802, N803
                        portNumber: int = 0, addressTypes: Any = None,  # noqa: N803
                        transportSemantics: str = "TCP") -> Any:  # noqa: N803
        return self.inner.resolveHostName(
            _FilteringReceiver(resolutionReceiver, hostName, self.policy), hostName,
            portNumber, addressTypes, transportSemantics)


class MediaSpider(scrapy.Spider):
    name = "anshim-media"

    @classmethod
    def update_settings(cls, settings: Any) -> None:
        super().update_settings(settings)
        # Added to whatever the crawl process configured, before Scrapy's own middlewares
        # (redirects come back through it as new requests).
        middlewares = dict(settings.getdict("DOWNLOADER_MIDDLEWARES"))
        middlewares[f"{__name__}.PrivateAddressGuard"] = 50
        settings.set("DOWNLOADER_MIDDLEWARES", middlewares, priority="spider")

    def __init__(self, config: CrawlConfig, emit: Emit, state: MediaState, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.emit = emit
        self.media_state = state  # not `state`: Scrapy keeps its own spider.state with JOBDIR
        self.allowed_domains = list(config.domains)
        self.host_policy = HostPolicy.allowing(config.allowed_private_hosts)
        # media URL → pages it was seen on (one download serves every page that shows it)
        self.media_pages: dict[str, set[str]] = {}
        self.media_results: dict[str, dict[str, Any]] = {}
        self.pages_seen = 0
        # More than one worker: fingerprint in child processes, so hashing runs on every core
        # while this process (the reactor) keeps fetching. Bytes reach them through a pipe,
        # in memory like everywhere else. One worker: a thread here, no process to start.
        self.pool: ProcessPoolExecutor | None = None
        if config.workers > 1:
            self.pool = self._new_pool(config.workers)
        # Files of a pool that broke, retried one at a time (see _fingerprint_in_pool).
        self._solo: ProcessPoolExecutor | None = None
        self._solo_lock = defer.DeferredLock()

    def closed(self, reason: str) -> None:
        for pool in (self.pool, self._solo):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, pool: ProcessPoolExecutor, data: bytes) -> defer.Deferred[dict[str, Any]]:
        d: defer.Deferred[dict[str, Any]] = defer.Deferred()

        # Imported here: importing the reactor at module level would install Twisted's
        # default one before Scrapy installs the asyncio reactor it is configured for.
        from twisted.internet import reactor

        def done(fut: Future[dict[str, Any]]) -> None:
            # Runs on the pool's thread: hand the result to the reactor's thread.
            exc = fut.exception()
            if exc is not None:
                reactor.callFromThread(d.errback, exc)  # type: ignore[attr-defined]
            else:
                reactor.callFromThread(d.callback, fut.result())  # type: ignore[attr-defined]

        try:
            pool.submit(fingerprint_media, data, self.config.seconds_per_hash
                        ).add_done_callback(done)
        except BrokenProcessPool as exc:
            return defer.fail(exc)
        return d

    def _replace_pool(self, broken: ProcessPoolExecutor) -> None:
        if self.pool is broken:
            broken.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool(self.config.workers)

    @staticmethod
    def _new_pool(workers: int) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(max_workers=workers,
                                   mp_context=multiprocessing.get_context("spawn"))
        # Start every worker and load the engine now, while the first pages are fetched,
        # rather than when the first media is waiting.
        for _ in range(workers):
            pool.submit(warm_up)
        return pool

    async def _fingerprint_in_pool(self, data: bytes) -> dict[str, Any]:
        """Fingerprint in a worker process. A worker that dies (a decoder crashing on a
        hostile file) breaks the whole pool, and which of its files did it is unknown: the
        pool is replaced and each of those files is retried alone in a one-process pool, so
        a crash there names its file (reported as WorkerCrashed) and the crawl goes on."""
        pool = self.pool
        assert pool is not None
        try:
            return await maybe_deferred_to_future(self._submit(pool, data))
        except BrokenProcessPool:
            self._replace_pool(pool)
        await maybe_deferred_to_future(self._solo_lock.acquire())
        try:
            if self._solo is None:
                self._solo = self._new_pool(1)
            try:
                return await maybe_deferred_to_future(self._submit(self._solo, data))
            except BrokenProcessPool:
                self._solo.shutdown(wait=False, cancel_futures=True)
                self._solo = None
                return {"error": "WorkerCrashed",
                        "message": "the fingerprinting process died on this file"}
        finally:
            self._solo_lock.release()

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> MediaSpider:
        config = kwargs.get("config")
        if config is not None:
            crawler.settings.set("ANSHIM_ALLOWED_PRIVATE_HOSTS",
                                 list(config.allowed_private_hosts), priority="spider")
        spider = super().from_crawler(crawler, *args, **kwargs)
        return spider  # type: ignore[no-any-return]

    def _guard_connections(self) -> None:
        from twisted.internet import reactor

        if not isinstance(reactor.nameResolver, _GuardedNameResolver):  # type: ignore[attr-defined]
            reactor.installNameResolver(  # type: ignore[attr-defined]
                _GuardedNameResolver(reactor.nameResolver, self.host_policy))  # type: ignore[attr-defined]

    async def start(self) -> Any:  # Scrapy ≥ 2.13
        self._guard_connections()
        for seed in self.config.seeds:
            yield self._page_request(seed, depth=0)

    def _page_request(self, url: str, depth: int) -> scrapy.Request:
        return scrapy.Request(
            url, callback=self.parse_page, errback=self.on_error,
            meta={"anshim_depth": depth, "download_maxsize": self.config.max_page_bytes},
        )

    def _media_request(self, url: str, page_url: str) -> scrapy.Request:
        headers: dict[str, str] = {}
        known = self.media_state.get(url)
        if known is not None and known.fingerprint is not None:
            if known.etag:
                headers["If-None-Match"] = known.etag
            if known.last_modified:
                headers["If-Modified-Since"] = known.last_modified
        return scrapy.Request(
            url, callback=self.parse_media, errback=self.on_error, headers=headers,
            meta={"page_url": page_url, "download_maxsize": self.config.max_media_bytes,
                  "allow_offsite": True, "handle_httpstatus_list": [304, 404, 410]},
            priority=1,  # finish media before wandering further
        )

    async def parse_page(self, response: Response) -> AsyncIterator[scrapy.Request]:
        depth = int(response.meta.get("anshim_depth", 0))
        content_type = (response.headers.get("Content-Type") or b"").decode("latin-1").lower()
        if not content_type.startswith(("text/html", "application/xhtml")):
            if content_type.startswith(("image/", "video/")) or is_media_url(response.url):
                # A seed or link that points straight at a media file.
                self.media_pages.setdefault(response.url, set()).add(response.url)
                await self._fingerprint(response, page_url=response.url)
            return
        self.pages_seen += 1
        links = extract_links(response.text, response.url)
        self.emit({"type": "page", "url": response.url, "status": response.status,
                   "title": links.title, "media": list(links.media), "depth": depth})
        for media_url in links.media:
            pages = self.media_pages.setdefault(media_url, set())
            first_time = not pages
            pages.add(response.url)
            if first_time:
                yield self._media_request(media_url, response.url)
            elif media_url in self.media_results:
                self._emit_media(media_url, response.url, self.media_results[media_url])
        if depth < self.config.depth and self.pages_seen < self.config.max_pages:
            for page_url in links.pages:
                yield self._page_request(page_url, depth + 1)

    async def parse_media(self, response: Response) -> None:
        page_url = response.meta["page_url"]
        if response.status == 304:
            known = self.media_state.get(response.url)
            result = {"unchanged": True, "http_status": 304,
                      **((known.fingerprint if known else None) or {})}
            self.media_results[response.url] = result
            for page in sorted(self.media_pages.get(response.url, {page_url})):
                self._emit_media(response.url, page, result)
            return None
        if response.status in (404, 410):
            result = {"http_status": response.status, "gone": True}
            self.media_results[response.url] = result
            self._emit_media(response.url, page_url, result)
            return None
        await self._fingerprint(response, page_url)

    async def _fingerprint(self, response: Response, page_url: str) -> None:
        body = response.body
        sha256 = hashlib.sha256(body).hexdigest()
        headers = _headers(response)
        # One worker: a thread keeps the reactor responsive (decoding releases the GIL);
        # more: the process pool.
        if self.pool is not None:
            fp = await self._fingerprint_in_pool(body)
        else:
            fp = await maybe_deferred_to_future(
                deferToThread(fingerprint_media, body, self.config.seconds_per_hash))
        result = {"http_status": response.status, "headers": headers, "sha256": sha256,
                  "bytes": len(body), **fp}
        self.media_results[response.url] = result
        if "error" not in fp:
            self.media_state.put(response.url, etag=headers.get("etag"),
                           last_modified=headers.get("last-modified"), sha256=sha256,
                           fingerprint=fp)
        for page in sorted(self.media_pages.get(response.url, {page_url})):
            self._emit_media(response.url, page, result)

    def _emit_media(self, media_url: str, page_url: str, result: dict[str, Any]) -> None:
        self.emit({"type": "media", "media_url": media_url, "page_url": page_url, **result})

    def on_error(self, failure: Any) -> None:
        request = failure.request
        self.emit({"type": "error", "url": request.url,
                   "page_url": request.meta.get("page_url"),
                   "error": failure.type.__name__, "message": str(failure.value)[:300]})
