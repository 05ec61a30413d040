"""Fetching one media file outside Scrapy: a plain, pooled HTTP/1.1 client under the SSRF guard.

The crawl's fingerprinting workers fetch the media themselves (issue 15, bench-scan): Scrapy's
per-response machinery cost about 4 ms of CPU per image, as much as fingerprinting it, and the
bytes had to cross the reactor and a pipe. Here a worker keeps one keep-alive connection per
origin and the bytes go from the socket to the decoder in the same process. Pages stay with
Scrapy.

The rules are the crawl's, as they were for media fetched by Scrapy:

* every connection goes through :mod:`anshim.crawl.netguard` — the URL is checked before it
  is fetched (scheme, literal and resolved addresses) and the address connected to is checked
  again (no second look-up to rebind); every redirect target is a new URL, checked the same
  way; at most ``max_redirects`` hops;
* ``max_bytes``: a Content-Length over it is refused before the body is read, and a body (also
  chunked, also after decompression) is cut and refused as soon as it passes it;
* ``timeout``: each socket operation and the whole download (connect, redirects, body) are
  bounded;
* transient failures (connection errors, 408/429/5xx) are retried twice, as Scrapy's
  RetryMiddleware did; a keep-alive connection the server closed meanwhile is reopened once
  without counting as a retry;
* no cookies, no proxy from the environment, no cache, nothing written to disk.

TLS certificates are not verified, as Scrapy's default context does not verify them for the
pages: a monitored site with a broken certificate is still scanned.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from anshim.crawl.netguard import BlockedAddress, HostPolicy, _guarded_create_connection

__all__ = ["FetchError", "FetchRequest", "FetchResponse", "close_connections", "fetch"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Scrapy's RETRY_HTTP_CODES.
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 522, 524})
_CHUNK = 256 * 1024
#: Statuses the caller handles itself (everything else that is not 2xx is an HttpError).
HANDLED_STATUSES = frozenset({304, 404, 410})
_KEPT_HEADERS = ("content-type", "content-length", "etag", "last-modified", "server", "date")


class FetchError(Exception):
    """A media fetch that failed; ``kind`` names it as the crawl's error records do
    (``BlockedRequest``, ``HttpError``, ``MediaTooLarge``, ``TimeoutError``,
    ``ConnectionError``, ``TooManyRedirects``) and ``url`` is the URL that failed (a redirect
    target for a refused hop)."""

    def __init__(self, kind: str, url: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.url, self.message = kind, url, message


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """What to fetch and under which limits (picklable: it goes to a worker process)."""

    url: str
    user_agent: str
    max_bytes: int
    timeout: float
    max_redirects: int = 5
    allowed_private_hosts: tuple[str, ...] = ()
    #: Conditional-request validators of a copy fetched before (``If-None-Match`` ...).
    headers: tuple[tuple[str, str], ...] = ()
    retries: int = 2


@dataclass(frozen=True, slots=True)
class FetchResponse:
    url: str  # after redirects
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = field(default=b"", repr=False)


Origin = tuple[str, str, int]


class _Connections:
    """One keep-alive connection per origin, per thread (a worker process has one thread
    fetching; the crawl's single-worker mode uses one thread too)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _pool(self) -> dict[tuple[Origin, frozenset[str]], http.client.HTTPConnection]:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        return pool  # type: ignore[no-any-return]

    def get(self, origin: Origin, policy: HostPolicy, timeout: float,
            ) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to ``origin`` and whether it was used before (may be stale)."""
        key = (origin, policy.allowed_hosts)
        conn = self._pool().get(key)
        if conn is not None:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            return conn, True
        scheme, host, port = origin
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                               context=ssl._create_unverified_context())  # noqa: S323
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        # The address connected to is checked, whatever the name resolves to this time.
        conn._create_connection = _guarded_create_connection(policy)  # type: ignore[attr-defined]
        self._pool()[key] = conn
        return conn, False

    def drop(self, origin: Origin, policy: HostPolicy) -> None:
        conn = self._pool().pop((origin, policy.allowed_hosts), None)
        if conn is not None:
            conn.close()

    def close_all(self) -> None:
        pool = self._pool()
        for conn in pool.values():
            conn.close()
        pool.clear()


_CONNECTIONS = _Connections()


def close_connections() -> None:
    """Close this thread's keep-alive connections."""
    _CONNECTIONS.close_all()


def _origin(url: str) -> tuple[Origin, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("BlockedRequest", url, f"not an http(s) URL: {url[:200]}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchError("BlockedRequest", url, f"bad port in {url[:200]}") from None
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return (parts.scheme, parts.hostname, port), target


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self, url: str) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise FetchError("TimeoutError", url,
                             f"the download took longer than {self.seconds:g} s")
        return left


def _read_body(resp: http.client.HTTPResponse, url: str, max_bytes: int,
               deadline: _Deadline, sock: socket.socket | None) -> bytes:
    encoding = (resp.getheader("Content-Encoding") or "identity").strip().lower()
    inflate = None
    if encoding in ("gzip", "x-gzip"):
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflate = zlib.decompressobj()
    elif encoding not in ("identity", ""):
        raise FetchError("HttpError", url, f"unsupported Content-Encoding {encoding[:40]}")
    parts: list[bytes] = []
    size = 0
    while True:
        if sock is not None:
            sock.settimeout(min(deadline.left(url), deadline.seconds))
        # read(), not read1(): it marks the response closed at its end, so the connection
        # can carry the next request (read1 leaves it "busy" and forces a new connection).
        chunk = resp.read(_CHUNK)
        if not chunk:
            break
        if inflate is not None:
            # Decompressed in bounded steps: a small "bomb" never expands past the limit.
            chunk = inflate.decompress(chunk, max_bytes + 1 - size)
            while inflate.unconsumed_tail and size + len(chunk) <= max_bytes:
                chunk += inflate.decompress(inflate.unconsumed_tail, max_bytes + 1 - size
                                            - len(chunk))
        size += len(chunk)
        if size > max_bytes:
            raise FetchError("MediaTooLarge", url,
                             f"the response is over the limit of {max_bytes} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _once(request: FetchRequest, url: str, policy: HostPolicy, deadline: _Deadline,
          ) -> FetchResponse:
    """One HTTP exchange (no redirects followed), on a pooled connection."""
    try:
        policy.check_url(url)
    except BlockedAddress as exc:
        raise FetchError("BlockedRequest", url, str(exc)) from None
    except ValueError as exc:
        raise FetchError("BlockedRequest", url, str(exc)) from None
    origin, target = _origin(url)
    host_header = origin[1] if origin[2] == (443 if origin[0] == "https" else 80) else (
        f"{origin[1]}:{origin[2]}")
    if ":" in origin[1]:  # an IPv6 literal
        host_header = f"[{origin[1]}]" + ("" if host_header == origin[1] else f":{origin[2]}")
    headers = {"Host": host_header, "User-Agent": request.user_agent, "Accept": "*/*",
               "Accept-Encoding": "gzip, deflate", "Connection": "keep-alive",
               **dict(request.headers)}
    for attempt in (0, 1):
        conn, reused = _CONNECTIONS.get(origin, policy, min(deadline.left(url), request.timeout))
        try:
            conn.request("GET", target, headers=headers)
            resp = conn.getresponse()
        except BlockedAddress as exc:
            _CONNECTIONS.drop(origin, policy)
            raise FetchError("BlockedRequest", url, str(exc)) from None
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                http.client.CannotSendRequest, http.client.BadStatusLine) as exc:
            _CONNECTIONS.drop(origin, policy)
            if reused and attempt == 0:
                continue  # the server closed an idle keep-alive connection: a fresh one
            raise FetchError("ConnectionError", url, f"{type(exc).__name__}: {exc}") from None
        except TimeoutError:
            _CONNECTIONS.drop(origin, policy)
            raise FetchError("TimeoutError", url,
                             f"no answer within {request.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            _CONNECTIONS.drop(origin, policy)
            raise FetchError("ConnectionError", url, f"{type(exc).__name__}: {exc}") from None
        break
    try:
        length = resp.getheader("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > request.max_bytes:
            raise FetchError("MediaTooLarge", url, f"Content-Length {int(length)} is over the "
                             f"limit of {request.max_bytes} bytes")
        status = resp.status
        if status in _REDIRECTS or status in HANDLED_STATUSES or not 200 <= status < 300:
            body = b""  # not read: the limits do not apply to what is thrown away
            _CONNECTIONS.drop(origin, policy)  # cheaper than draining an unknown body
        else:
            body = _read_body(resp, url, request.max_bytes, deadline, conn.sock)
        kept = {name: value for name in _KEPT_HEADERS
                if (value := resp.getheader(name)) is not None}
        if status in _REDIRECTS and resp.getheader("Location"):
            kept["location"] = resp.getheader("Location") or ""
        if resp.will_close:
            _CONNECTIONS.drop(origin, policy)
        return FetchResponse(url=url, status=status, headers=kept, body=body)
    except FetchError:
        _CONNECTIONS.drop(origin, policy)
        raise
    except TimeoutError:
        _CONNECTIONS.drop(origin, policy)
        raise FetchError("TimeoutError", url,
                         f"the body did not arrive within {request.timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        _CONNECTIONS.drop(origin, policy)
        raise FetchError("ConnectionError", url, f"{type(exc).__name__}: {exc}") from None


def fetch(request: FetchRequest) -> FetchResponse:
    """GET ``request.url`` under the SSRF guard and the limits, following redirects.

    Returns 2xx responses with their body and 304/404/410 without; raises :class:`FetchError`
    for everything else (refused addresses, other statuses, limits, timeouts, network errors).
    """
    policy = HostPolicy.allowing(request.allowed_private_hosts)
    deadline = _Deadline(request.timeout)
    url = request.url
    seen = {url}
    hops = 0
    attempt = 0
    while True:
        try:
            response = _once(request, url, policy, deadline)
        except FetchError as exc:
            if exc.kind in ("ConnectionError", "TimeoutError") and attempt < request.retries:
                attempt += 1
                continue
            raise
        status = response.status
        if status in _REDIRECTS and "location" in response.headers:
            hops += 1
            if hops > request.max_redirects:
                raise FetchError("TooManyRedirects", url,
                                 f"more than {request.max_redirects} redirects")
            url = urljoin(url, response.headers["location"].strip())
            if url in seen:
                raise FetchError("TooManyRedirects", url, "a redirect loop")
            seen.add(url)
            continue
        if status in _RETRY_STATUSES and attempt < request.retries:
            attempt += 1
            continue
        if 200 <= status < 300 or status in HANDLED_STATUSES:
            return response
        raise FetchError("HttpError", url, f"Ignoring non-200 response (HTTP {status})")
