"""A stand-in for `anshim.crawl.media.fingerprint_media` whose process dies on marked files,
as a decoder crashing on a hostile file would (importable by the spawned pool workers)."""

from __future__ import annotations

import os
from typing import Any

MARKER = b"CRASH-THE-DECODER"


def fingerprint_or_die(data: bytes, seconds_per_hash: float) -> dict[str, Any]:
    from anshim.crawl.media import fingerprint_media

    if MARKER in data:
        os._exit(70)
    return fingerprint_media(data, seconds_per_hash)
