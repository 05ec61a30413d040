"""Finding media in a page: pure functions over HTML, no network."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

from parsel import Selector

MEDIA_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif",
     ".mp4", ".m4v", ".webm", ".mov", ".mkv", ".avi"}
)


@dataclass(frozen=True)
class PageLinks:
    """Absolute, de-duplicated links found on one page, in document order."""

    media: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()
    title: str = ""
    text: str = field(default="", repr=False)


def _srcset_urls(srcset: str) -> list[str]:
    # "a.jpg 1x, b.jpg 2x" / "a.jpg 480w, b.jpg 800w": the URL is the first token of each part.
    return [part.strip().split()[0] for part in srcset.split(",") if part.strip()]


def is_media_url(url: str) -> bool:
    try:
        path = urlsplit(url).path.lower()
    except ValueError:
        return False
    return any(path.endswith(ext) for ext in MEDIA_EXTENSIONS)


def _absolute(base: str, href: str) -> str | None:
    href = href.strip()
    if not href or href.startswith(("javascript:", "mailto:", "tel:", "data:", "blob:")):
        return None
    try:
        url, _ = urldefrag(urljoin(base, href))
        return url if urlsplit(url).scheme in ("http", "https") else None
    except ValueError:  # e.g. "http://[::1" — a malformed link is skipped, not fatal
        return None


def extract_links(html: str, base_url: str) -> PageLinks:
    """Media (img and srcset, picture/video/audio sources, og:image/og:video, links to media
    files) and further pages (other links) of one HTML page."""
    sel = Selector(text=html or "<html></html>")
    base = _absolute(base_url, sel.css("base::attr(href)").get() or "") or base_url
    media_raw: list[str] = []
    media_raw += sel.css("img::attr(src), img::attr(data-src)").getall()
    for srcset in sel.css("img::attr(srcset), source::attr(srcset)").getall():
        media_raw += _srcset_urls(srcset)
    media_raw += sel.css("video::attr(src), video source::attr(src), video::attr(poster)").getall()
    media_raw += sel.css(
        'meta[property="og:image"]::attr(content), meta[property="og:image:url"]::attr(content), '
        'meta[property="og:video"]::attr(content), meta[property="og:video:url"]::attr(content), '
        'meta[name="twitter:image"]::attr(content)'
    ).getall()
    pages_raw: list[str] = []
    for href in sel.css("a::attr(href)").getall():
        absolute = _absolute(base, href)
        if absolute is not None:
            (media_raw if is_media_url(absolute) else pages_raw).append(href)

    def unique(raw: list[str]) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for href in raw:
            url = _absolute(base, href)
            if url is not None:
                seen.setdefault(url, None)
        return tuple(seen)

    media = unique(media_raw)
    pages = tuple(u for u in unique(pages_raw) if u not in set(media))
    title = (sel.css("title::text").get() or "").strip()
    text = " ".join(t.strip() for t in sel.xpath("//body//text()[not(ancestor::script)]"
                                                 "[not(ancestor::style)]").getall() if t.strip())
    return PageLinks(media=media, pages=pages, title=title[:300], text=text[:100_000])
