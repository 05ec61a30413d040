"""Which platform a URL belongs to (by host name; unknown hosts get a platform of their own)."""

from __future__ import annotations

from urllib.parse import urlsplit

from anshim.erasure.models import Platform, PlatformKind


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def platform_for_url(url: str, *, create: bool = True) -> Platform | None:
    """The registered platform whose domain is the URL's host or a parent of it (the longest
    domain wins); with `create`, an unknown host becomes a new platform to be filled in."""
    host = host_of(url)
    if not host:
        return None
    best: tuple[int, Platform] | None = None
    for platform in Platform.objects.all():
        for domain in platform.domain_list:
            if (host == domain or host.endswith("." + domain)) and (
                    best is None or len(domain) > best[0]):
                best = (len(domain), platform)
    if best is not None:
        return best[1]
    if not create:
        return None
    platform, _ = Platform.objects.get_or_create(
        name=host[:100], defaults={"domains": host, "kind": PlatformKind.OTHER})
    return platform
