"""Issue 17, item 15: small hostile GIFs are refused in seconds, by the CLI and the crawl alike.

A 138 KB GIF of 150 one-pixel frames on a 5000 x 5000 screen took 67 s and 464 MB in
``anshim hash`` and exited 0: every frame is composited on the whole screen.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from anshim.crawl.media import fingerprint_media
from anshim.fingerprint import Limits, MediaTooLarge, VideoFingerprint, fingerprint_bytes
from anshim.fingerprint.cli import main as hash_main

from . import media


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = media.gif_bomb(5000, 5000, frames=150)
    assert len(data) < 10_000
    return data


def test_engine_refuses_the_bomb_in_seconds(bomb: bytes) -> None:
    started = time.monotonic()
    with pytest.raises(MediaTooLarge) as info:
        fingerprint_bytes(bomb)
    assert time.monotonic() - started < 5
    assert "pixels" in info.value.message


def test_cli_exits_non_zero_with_a_typed_error(bomb: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bomb.gif"
    path.write_bytes(bomb)
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    status = hash_main([str(path), "--workers", "1"], stdout=out, stderr=err)
    assert time.monotonic() - started < 5
    assert status == 1
    record = json.loads(out.getvalue())
    assert record["error_type"] == "MediaTooLarge" and "pixels" in record["error"]


def test_crawl_records_the_error(bomb: bytes) -> None:
    started = time.monotonic()
    record = fingerprint_media(bomb, 1.0)
    assert time.monotonic() - started < 5
    assert record["error"] == "MediaTooLarge"


def test_animation_time_budget() -> None:
    # Under the pixel limit but over a (tiny) time budget: stopped with a typed error.
    data = media.animated_bytes("GIF", frames=12)
    with pytest.raises(MediaTooLarge) as info:
        fingerprint_bytes(data, limits=Limits(max_animation_seconds=0.0))
    assert "longer than" in info.value.message


def test_real_animations_still_hash() -> None:
    fp = fingerprint_bytes(media.animated_bytes("GIF", frames=12))
    assert isinstance(fp, VideoFingerprint) and fp.frames
