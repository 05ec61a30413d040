"""The Scrapy spider: pages → media links → media fetched and fingerprinted by the workers.

Pages are fetched by Scrapy. Media URLs found on them are queued per host (politeness:
concurrency, rate, robots.txt when configured) and handed to the fingerprinting workers, which
fetch each one themselves with `anshim.crawl.fetch` (the same SSRF guard, size and time limits)
and fingerprint it where the bytes arrived. Each result is handed to `emit` as a plain dict;
media bytes never reach the reactor, never leave the worker that fetched them and are never
written to disk (no HTTP cache, no files pipeline).
"""

from __future__ import annotations

import hashlib
import ipaddress
import multiprocessing
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import (
    CancelledError,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import scrapy
from protego import Protego
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import defer
from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from anshim.crawl.config import CrawlConfig
from anshim.crawl.extract import extract_links, is_media_url
from anshim.crawl.fetch import FetchRequest
from anshim.crawl.media import fetch_media, fetch_robots, fingerprint_media, warm_up
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


@dataclass
class _HostSlot:
    """Media fetches of one host: queued, in flight, and when the next one may start."""

    waiting: deque[tuple[str, str, defer.Deferred[None]]] = field(default_factory=deque)
    in_flight: int = 0
    next_start: float = 0.0
    wake_up_pending: bool = False


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
        # Media are fetched and fingerprinted by the workers themselves (`anshim.crawl.fetch`,
        # outside Scrapy: its per-response machinery cost as much CPU as the fingerprinting).
        # More than one worker: child processes, so hashing runs on every core while this
        # process (the reactor) fetches the pages. One worker: a thread here, no process to
        # start (decoding releases the GIL; the reactor has little left to do).
        self.pool: Executor
        if config.workers > 1:
            self.pool = self._new_pool(config.workers)
        else:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anshim-media")
        # Files of a pool that broke, retried one at a time (see _run_in_pool).
        self._solo: ProcessPoolExecutor | None = None
        self._solo_lock = defer.DeferredLock()
        # Politeness for the media fetches, which Scrapy's downloader no longer sees: per host,
        # at most per_host_concurrency in flight, started at most per_host_rate a second.
        self._hosts: dict[str, _HostSlot] = {}
        self._delay = 1.0 / config.per_host_rate if config.per_host_rate < 1000 else 0.0
        self._running = 0
        self._capacity = config.workers * (1 if self._delay else 2)
        self._robots: dict[str, defer.Deferred[Any]] = {}

    def closed(self, reason: str) -> None:
        for pool in (self.pool, self._solo):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, pool: Executor, fn: Callable[..., Any], *args: Any,
                ) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()

        # Imported here: importing the reactor at module level would install Twisted's
        # default one before Scrapy installs the asyncio reactor it is configured for.
        from twisted.internet import reactor

        def done(fut: Future[Any]) -> None:
            # Runs on the pool's thread: hand the result to the reactor's thread.
            exc = CancelledError() if fut.cancelled() else fut.exception()
            if exc is not None:
                reactor.callFromThread(d.errback, exc)  # type: ignore[attr-defined]
            else:
                reactor.callFromThread(d.callback, fut.result())  # type: ignore[attr-defined]

        try:
            pool.submit(fn, *args).add_done_callback(done)
        except (BrokenProcessPool, RuntimeError) as exc:
            return defer.fail(exc)
        return d

    def _replace_pool(self, broken: Executor) -> None:
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

    async def _run_in_pool(self, fn: Callable[..., dict[str, Any]], *args: Any,
                           ) -> dict[str, Any]:
        """Run a media task in a worker. A worker process that dies (a decoder crashing on a
        hostile file) breaks the whole pool, and which of its files did it is unknown: the
        pool is replaced and each of those files is retried alone in a one-process pool, so
        a crash there names its file (reported as WorkerCrashed) and the crawl goes on."""
        pool = self.pool
        try:
            return await maybe_deferred_to_future(self._submit(pool, fn, *args))  # type: ignore[no-any-return]
        except BrokenProcessPool:
            self._replace_pool(pool)
        await maybe_deferred_to_future(self._solo_lock.acquire())
        try:
            if self._solo is None:
                self._solo = self._new_pool(1)
            try:
                return await maybe_deferred_to_future(  # type: ignore[no-any-return]
                    self._submit(self._solo, fn, *args))
            except BrokenProcessPool:
                self._solo.shutdown(wait=False, cancel_futures=True)
                self._solo = None
                return {"outcome": "error", "error": "WorkerCrashed",
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

    def _fetch_request(self, url: str, *, max_bytes: int) -> FetchRequest:
        headers: list[tuple[str, str]] = []
        known = self.media_state.get(url)
        if known is not None and known.fingerprint is not None:
            if known.etag:
                headers.append(("If-None-Match", known.etag))
            if known.last_modified:
                headers.append(("If-Modified-Since", known.last_modified))
        return FetchRequest(url=url, user_agent=self.config.user_agent, max_bytes=max_bytes,
                            timeout=self.config.timeout_seconds,
                            max_redirects=self.config.max_redirects,
                            allowed_private_hosts=self.config.allowed_private_hosts,
                            headers=tuple(headers))

    async def parse_page(self, response: Response) -> AsyncIterator[scrapy.Request]:
        depth = int(response.meta.get("anshim_depth", 0))
        content_type = (response.headers.get("Content-Type") or b"").decode("latin-1").lower()
        if not content_type.startswith(("text/html", "application/xhtml")):
            if content_type.startswith(("image/", "video/")) or is_media_url(response.url):
                # A seed or link that points straight at a media file: Scrapy has its bytes.
                self.media_pages.setdefault(response.url, set()).add(response.url)
                await self._fingerprint(response, page_url=response.url)
            return
        self.pages_seen += 1
        links = extract_links(response.text, response.url)
        self.emit({"type": "page", "url": response.url, "status": response.status,
                   "title": links.title, "media": list(links.media), "depth": depth})
        pending: list[defer.Deferred[None]] = []
        for media_url in links.media:
            pages = self.media_pages.setdefault(media_url, set())
            first_time = not pages
            pages.add(response.url)
            if first_time:
                pending.append(self._queue_media(media_url, response.url))
            elif media_url in self.media_results:
                self._emit_media(media_url, response.url, self.media_results[media_url])
        if depth < self.config.depth and self.pages_seen < self.config.max_pages:
            for page_url in links.pages:
                yield self._page_request(page_url, depth + 1)
        # This callback lasts until its page's media are done: Scrapy keeps the crawl open
        # while they are fetched outside its downloader, and its scraper's limit on active
        # responses bounds how many pages' media wait at once.
        if pending:
            await maybe_deferred_to_future(defer.DeferredList(pending))

    # --- media fetched by the workers --------------------------------------------------------

    def _queue_media(self, url: str, page_url: str) -> defer.Deferred[None]:
        done: defer.Deferred[None] = defer.Deferred()
        host = urlsplit(url).hostname or ""
        slot = self._hosts.setdefault(host, _HostSlot())
        slot.waiting.append((url, page_url, done))
        self._pump()
        return done

    def _pump(self) -> None:
        """Start what may start now. A fetch is handed to the workers only when one is free
        (when a rate applies; one queued per worker otherwise, to hide the hand-over), so it
        starts when it is handed over and the per-host rate holds at the server, not just
        here; a host whose next start is later gets a wake-up then."""
        from twisted.internet import reactor

        now = time.monotonic()
        for slot in self._hosts.values():
            while (slot.waiting and slot.in_flight < self.config.per_host_concurrency
                   and self._running < self._capacity):
                if slot.next_start > now:
                    if not slot.wake_up_pending:
                        slot.wake_up_pending = True
                        reactor.callLater(slot.next_start - now,  # type: ignore[attr-defined,arg-type]
                                          self._wake_up, slot)
                    break
                url, page_url, done = slot.waiting.popleft()
                slot.in_flight += 1
                self._running += 1
                slot.next_start = now + self._delay
                self._start_media(slot, url, page_url, done)

    def _wake_up(self, slot: _HostSlot) -> None:
        slot.wake_up_pending = False
        self._pump()

    def _start_media(self, slot: _HostSlot, url: str, page_url: str,
                     done: defer.Deferred[None]) -> None:
        # deferred_from_coro: under the asyncio reactor the coroutine awaits asyncio futures.
        work: defer.Deferred[Any] = deferred_from_coro(self._media(url, page_url))

        def finished(result: Any) -> None:
            slot.in_flight -= 1
            self._running -= 1
            self._pump()
            if isinstance(result, Failure):
                # A bug here must show up in the results, not vanish with the Deferred.
                self.emit({"type": "error", "url": url, "page_url": page_url,
                           "error": result.type.__name__ if result.type else "Error",
                           "message": str(result.value)[:300]})
            done.callback(None)

        work.addBoth(finished)

    async def _robots_allow(self, url: str) -> bool:
        if not self.config.obey_robots:
            return True
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:
            request = FetchRequest(url=origin + "/robots.txt", user_agent=self.config.user_agent,
                                   max_bytes=512 * 1024, timeout=self.config.timeout_seconds,
                                   max_redirects=self.config.max_redirects,
                                   allowed_private_hosts=self.config.allowed_private_hosts)
            # A failed fetch of robots.txt (even a crashed worker) means "no rules".
            self._robots[origin] = self._submit(self.pool, fetch_robots, request).addErrback(
                lambda _failure: None)
        d: defer.Deferred[Any] = defer.Deferred()

        def relay(text: Any) -> Any:
            d.callback(text)  # each waiting fetch gets its own Deferred of the one text
            return text

        self._robots[origin].addCallback(relay)
        text = await maybe_deferred_to_future(d)
        if not isinstance(text, str):
            return True  # no robots.txt (or it failed): allowed, as Scrapy does
        return bool(Protego.parse(text).can_fetch(url, self.config.user_agent))

    async def _media(self, url: str, page_url: str) -> None:
        if not await self._robots_allow(url):
            self.emit({"type": "error", "url": url, "page_url": page_url,
                       "error": "IgnoreRequest", "message": "Forbidden by robots.txt"})
            return
        request = self._fetch_request(url, max_bytes=self.config.max_media_bytes)
        # `fingerprint_media` is looked up here, at call time: tests replace it.
        out = await self._run_in_pool(fetch_media, request, self.config.seconds_per_hash,
                                      fingerprint_media)
        outcome = out.pop("outcome", "error")
        if outcome == "error" and out.get("error") != "WorkerCrashed":
            self.emit({"type": "error", "url": out.get("url", url), "page_url": page_url,
                       "error": out.get("error", "Error"), "message": out.get("message", "")})
            return
        if outcome == "error":  # the file that killed its worker: a media record, as before
            result: dict[str, Any] = out
        elif outcome == "unchanged":
            known = self.media_state.get(url)
            result = {"unchanged": True, "http_status": 304,
                      **((known.fingerprint if known else None) or {})}
        elif outcome == "gone":
            result = {"http_status": out["http_status"], "gone": True}
        else:
            result = out
            if "error" not in out:
                headers = out.get("headers") or {}
                fp = {k: v for k, v in out.items()
                      if k not in ("http_status", "headers", "bytes")}
                self.media_state.put(url, etag=headers.get("etag"),
                                     last_modified=headers.get("last-modified"),
                                     sha256=out.get("sha256"), fingerprint=fp)
        self.media_results[url] = result
        for page in sorted(self.media_pages.get(url, {page_url})):
            self._emit_media(url, page, result)

    async def _fingerprint(self, response: Response, page_url: str) -> None:
        """A media file Scrapy fetched (a seed or page link that was a media file)."""
        body = response.body
        headers = _headers(response)
        fp = await self._run_in_pool(fingerprint_media, body, self.config.seconds_per_hash)
        fp.pop("outcome", None)
        # The engine hashed the bytes already; only a file it refused is hashed here.
        sha256 = fp.get("sha256") or hashlib.sha256(body).hexdigest()
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
