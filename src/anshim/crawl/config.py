"""What a crawl may do: seeds, scope, depth, politeness and size/time limits."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit


class CrawlConfigError(ValueError):
    """A crawl was configured with values that cannot work (bad seed URL, negative depth...)."""


@dataclass(frozen=True)
class CrawlConfig:
    seeds: tuple[str, ...]
    allowed_domains: tuple[str, ...] = ()  # default: the seeds' hosts
    #: Hosts that may be fetched although they resolve to a loopback or private address (a
    #: test site); every other such address is refused (`anshim.crawl.netguard`).
    allowed_private_hosts: tuple[str, ...] = ()
    depth: int = 1  # 0 = only the seed pages
    per_host_rate: float = 4.0  # requests per second to one host
    per_host_concurrency: int = 4
    max_media_bytes: int = 64 * 1024 * 1024
    max_page_bytes: int = 5 * 1024 * 1024
    timeout_seconds: float = 20.0
    max_redirects: int = 5
    max_pages: int = 10_000
    user_agent: str = "AnshimBot/0.1 (+support-center content removal)"
    obey_robots: bool = False  # the center removes illegal content; configurable per source
    state_path: str | None = None  # SQLite file remembering media already fetched (resume)
    seconds_per_hash: float = 1.0
    workers: int = 1  # 1: a thread in the crawl process; N > 1: N fingerprinting processes
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise CrawlConfigError("At least one seed URL is required.")
        for seed in self.seeds:
            parts = urlsplit(seed)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise CrawlConfigError(f"Seed {seed!r} is not an http(s) URL.")
        if self.depth < 0:
            raise CrawlConfigError("Depth must be 0 or more.")
        if self.per_host_rate <= 0 or self.per_host_concurrency < 1:
            raise CrawlConfigError("Rate and concurrency must be positive.")
        if self.workers < 1:
            raise CrawlConfigError("At least one fingerprinting worker is required.")

    @property
    def domains(self) -> tuple[str, ...]:
        if self.allowed_domains:
            return self.allowed_domains
        return tuple(dict.fromkeys(urlsplit(s).hostname or "" for s in self.seeds))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CrawlConfig:
        data = json.loads(text)
        data["seeds"] = tuple(data["seeds"])
        data["allowed_domains"] = tuple(data.get("allowed_domains") or ())
        data["allowed_private_hosts"] = tuple(data.get("allowed_private_hosts") or ())
        return cls(**data)
