"""The ``anshim hash`` command and the batch API."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from anshim.fingerprint import (
    FingerprintError,
    ImageFingerprint,
    UnsupportedMedia,
    VideoFingerprint,
    fingerprint_files,
)
from anshim.fingerprint.cli import main

from . import media


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    paths = {
        "image": folder / "a.jpg",
        "video": folder / "b.mp4",
        "bad": folder / "c.png",
        "gif": folder / "d.gif",
    }
    paths["image"].write_bytes(media.image_bytes("JPEG"))
    paths["video"].write_bytes(media.video_bytes())
    paths["bad"].write_bytes(b"not an image at all")
    paths["gif"].write_bytes(media.animated_bytes("GIF"))
    return paths


def _run(argv: list[str]) -> tuple[int, list[dict[str, object]], str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return code, lines, err.getvalue()


def test_cli_success(files: dict[str, Path]) -> None:
    code, lines, _ = _run(["--json", "--workers", "1", str(files["image"]), str(files["video"])])
    assert code == 0
    image, video = lines
    assert image["path"] == str(files["image"]) and image["kind"] == "image"
    assert len(str(image["pdq"])) == 64 and "quality" in image and "dihedral" not in image
    assert len(str(image["md5"])) == 32 and len(str(image["sha256"])) == 64
    assert video["kind"] == "video"
    frames = video["vpdq"]
    assert isinstance(frames, list) and frames
    assert set(frames[0]) == {"frame_number", "quality", "pdq", "timestamp"}


def test_cli_dihedral(files: dict[str, Path]) -> None:
    code, lines, _ = _run(["--dihedral", "--workers", "1", str(files["image"])])
    assert code == 0
    dihedral = lines[0]["dihedral"]
    assert isinstance(dihedral, dict) and len(dihedral) == 8


def test_cli_failure_exits_nonzero(files: dict[str, Path]) -> None:
    code, lines, _ = _run(["--workers", "1", str(files["image"]), str(files["bad"])])
    assert code == 1
    assert "error" not in lines[0]
    assert lines[1]["path"] == str(files["bad"])
    assert "unrecognised format" in str(lines[1]["error"])
    assert lines[1]["error_type"] == "UnsupportedMedia"


def test_cli_capsys(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--workers", "1", str(files["gif"])]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["kind"] == "video" and record["format"] == "GIF"


def test_cli_usage_error() -> None:
    code, _, _ = _run([])
    assert code == 2


def test_batch_in_order_with_errors_as_values(files: dict[str, Path]) -> None:
    order = [files["video"], files["bad"], files["image"], files["gif"]]
    seen: list[tuple[int, int]] = []
    results = fingerprint_files(order, workers=2, progress=lambda d, t: seen.append((d, t)))
    assert isinstance(results[0], VideoFingerprint)
    assert isinstance(results[1], UnsupportedMedia) and isinstance(results[1], FingerprintError)
    assert isinstance(results[2], ImageFingerprint)
    assert isinstance(results[3], VideoFingerprint)
    assert seen[-1] == (4, 4)
    single = fingerprint_files(order, workers=1)
    assert [type(r) for r in single] == [type(r) for r in results]
    assert single[2] == results[2]
