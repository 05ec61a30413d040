"""The engine writes no files and logs no bytes."""

from __future__ import annotations

import builtins
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from anshim.fingerprint import fingerprint_bytes

from . import media


def test_no_files_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [
        media.image_bytes("JPEG"),
        media.image_bytes("PNG"),
        media.animated_bytes("GIF"),
        media.video_bytes("mp4", "mpeg4"),
        media.video_bytes("webm", "libvpx"),
    ]
    watched = tmp_path / "watched"
    watched.mkdir()
    monkeypatch.chdir(watched)
    monkeypatch.setenv("TMPDIR", str(watched))
    monkeypatch.setattr(tempfile, "tempdir", str(watched))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the engine must not create temporary files")

    for name in (
        "mkstemp",
        "mkdtemp",
        "NamedTemporaryFile",
        "TemporaryFile",
        "SpooledTemporaryFile",
        "TemporaryDirectory",
    ):
        monkeypatch.setattr(tempfile, name, refuse)
    real_open = builtins.open

    def guarded_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(c in mode for c in "wax+"):
            raise AssertionError(f"the engine must not open files for writing ({mode!r})")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    for data in samples:
        fingerprint_bytes(data)
    assert os.listdir(watched) == []


def test_bytes_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    marker = b"SECRET-MARKER-0123456789"
    data = media.image_bytes("PNG")[:200] + marker
    caplog.set_level(logging.DEBUG)
    try:
        fingerprint_bytes(data)
    except Exception as exc:
        assert marker.decode() not in str(exc)
    assert marker.decode() not in caplog.text
