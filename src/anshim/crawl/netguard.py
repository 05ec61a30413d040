"""Server-side request forgery guard: fetch only public addresses (no Django).

The crawler follows links found on hostile pages and the staff preview fetches URLs that a
crawl recorded, so an address chosen by a stranger must never reach the server's own
loopback, the private network it sits in, link-local ranges or a cloud metadata service. The
rule: an address is fetched only when it is globally routable (`ipaddress.is_global`, which
excludes loopback, RFC 1918 and 6598 ranges, link-local 169.254/16 with the metadata address,
unique-local IPv6 and the reserved ranges) and not multicast. It is checked after DNS
resolution, on the address the connection is made to (no second look-up to rebind), and again
on every redirect (each one is a new connection). A host named in `HostPolicy.allowed_hosts`
(a monitored source's explicit "allowed private hosts", e.g. a test site on 127.0.0.1) is
exempt.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

AddrInfo = tuple[Any, ...]


class BlockedAddress(OSError):
    """The URL's host is, or resolves to, an address that is not public (an OSError so that
    urllib reports it like any other connection failure: as `URLError.reason`)."""

    def __init__(self, host: str, address: str = "") -> None:
        self.host = host
        self.address = address
        where = f" ({address})" if address and address != host else ""
        super().__init__(f"refused to fetch {host}{where}: not a public address")


def is_forbidden_ip(value: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for every address a server-side fetch must not reach."""
    ip = ipaddress.ip_address(value) if isinstance(value, str) else value
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 and friends reach the IPv4 address they embed.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and is_forbidden_ip(embedded):
            return True
    return not ip.is_global or ip.is_multicast


def _ip_or_none(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class HostPolicy:
    """Which hosts may be fetched although they are not public (normally none)."""

    allowed_hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def allowing(cls, hosts: Iterable[str]) -> HostPolicy:
        return cls(frozenset(normalise_host(h) for h in hosts if h.strip()))

    def allows_host(self, host: str) -> bool:
        return normalise_host(host) in self.allowed_hosts

    def permits(self, host: str, address: str) -> bool:
        """May a connection to `host` go to `address` (an IP string)?"""
        return self.allows_host(host) or not is_forbidden_ip(address.split("%", 1)[0])

    def resolve(self, host: str, port: int | None = None,
                family: int = socket.AF_UNSPEC) -> list[AddrInfo]:
        """The host's addresses for a TCP connection; BlockedAddress when any is not public
        (a name that also resolves to a private address is not trusted with the others)."""
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
        for info in infos:
            address = str(info[4][0])
            if not self.permits(host, address):
                raise BlockedAddress(host, address)
        return infos

    def check_url(self, url: str) -> None:
        """Raise BlockedAddress (or ValueError for a URL that is not http(s)) before fetching."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url[:200]}")
        host = parts.hostname
        if self.allows_host(host):
            return
        ip = _ip_or_none(host)
        if ip is not None:
            if is_forbidden_ip(ip):
                raise BlockedAddress(host, str(ip))
            return
        try:
            self.resolve(host, parts.port)
        except socket.gaierror:
            return  # unresolvable: the fetch itself fails with its own error


NO_POLICY_EXEMPTIONS = HostPolicy()


# --- urllib ------------------------------------------------------------------------------------


def _guarded_create_connection(policy: HostPolicy) -> Callable[..., socket.socket]:
    """`socket.create_connection` that connects only to addresses the policy permits: the
    address checked is the address connected to."""

    def create(address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
               source_address: tuple[str, int] | None = None, **kwargs: Any) -> socket.socket:
        host, port = address
        error: OSError | None = None
        for family, type_, proto, _canon, sockaddr in policy.resolve(host, port):
            sock = socket.socket(family, type_, proto)
            try:
                if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error or OSError(f"no address for {host}")

    return create


def _connection_class(base: type[http.client.HTTPConnection], policy: HostPolicy,
                      ) -> Callable[..., http.client.HTTPConnection]:
    def make(host: str, **kwargs: Any) -> http.client.HTTPConnection:
        conn = base(host, **kwargs)
        conn._create_connection = _guarded_create_connection(policy)  # type: ignore[attr-defined]
        return conn

    return make


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: HostPolicy) -> None:
        super().__init__()
        self.policy = policy

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_connection_class(http.client.HTTPConnection, self.policy), req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: HostPolicy) -> None:
        super().__init__()
        self.policy = policy

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_connection_class(http.client.HTTPSConnection, self.policy), req,
                            context=self._context)  # type: ignore[attr-defined]


class _GuardedRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Every redirect target is checked (scheme and address) before it is followed."""

    def __init__(self, policy: HostPolicy) -> None:
        super().__init__()
        self.policy = policy

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> urllib.request.Request | None:
        self.policy.check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def guarded_opener(policy: HostPolicy = NO_POLICY_EXEMPTIONS) -> urllib.request.OpenerDirector:
    """A urllib opener for http(s) only, that reaches public addresses only (and the policy's
    allowed hosts). No proxy from the environment: the address checked must be the one
    connected to."""
    # Assembled by hand: build_opener would add the file:, ftp: and data: handlers too.
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler({}), urllib.request.UnknownHandler(),
                    _GuardedHTTPHandler(policy), _GuardedHTTPSHandler(policy),
                    urllib.request.HTTPDefaultErrorHandler(), _GuardedRedirectHandler(policy),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def guarded_urlopen(req: str | urllib.request.Request, *, timeout: float,
                    policy: HostPolicy = NO_POLICY_EXEMPTIONS) -> Any:
    """`urllib.request.urlopen` under the policy (BlockedAddress arrives as URLError.reason)."""
    url = req if isinstance(req, str) else req.full_url
    policy.check_url(url)
    return guarded_opener(policy).open(req, timeout=timeout)
