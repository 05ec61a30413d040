"""One decode per file on the match and crawl paths (issue 15 item 5): `analyze_bytes` gives what
`fingerprint_bytes` then `query_fingerprints` gave, from one full-size decode."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simplejpeg
from PIL import Image, ImageFile, JpegImagePlugin

from anshim.fingerprint import FingerprintError, ImageFingerprint, VideoFingerprint, robust_strategy
from anshim.fingerprint import analyze as analyze_module
from anshim.fingerprint import decode_image as decode_module
from anshim.fingerprint.analyze import analyze_bytes
from anshim.fingerprint.engine import fingerprint_bytes
from anshim.fingerprint.robust_strategy import query_fingerprints

from .media import require_conformance, synthetic_rgb

_MEDIA_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def _conformance_files() -> list[Path]:
    conf = require_conformance()
    return sorted(p for p in (conf / "pdq").rglob("*") if p.suffix.lower() in _MEDIA_SUFFIXES)


def _old_two_decodes(data: bytes, dihedral: bool) -> tuple[Any, list[Any]]:
    fp = fingerprint_bytes(data, dihedral=dihedral)
    if not isinstance(fp, ImageFingerprint):
        return fp, []
    try:
        queries = [q for q in query_fingerprints(data) if q.strategy != "original"]
    except (FingerprintError, ValueError):
        queries = []
    return fp, queries


def test_same_results_as_the_two_decodes_on_every_conformance_image() -> None:
    files = _conformance_files()
    assert len(files) >= 40
    compared = 0
    for path in files:
        data = path.read_bytes()
        try:
            old_fp, old_queries = _old_two_decodes(data, dihedral=True)
        except FingerprintError as exc:
            with pytest.raises(type(exc)):
                analyze_bytes(data, dihedral=True)
            continue
        new = analyze_bytes(data, dihedral=True)
        # 0 bits: the very same hashes, qualities, sizes and dihedral variants.
        assert new.fingerprint == old_fp, path.name
        assert list(new.queries) == old_queries, path.name
        compared += 1
    assert compared >= 40


class _Counter:
    """Wraps a decoding function and counts its calls."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> dict[str, _Counter]:
    """Count the full-size decodes (simplejpeg's libjpeg-turbo decode, Pillow's `load` of
    pixels at full scale) and the reduced-scale ones (Pillow's `load` of a JPEG after
    `draft` asked libjpeg to scale)."""
    counters = {"simplejpeg": _Counter(simplejpeg.decode_jpeg)}
    monkeypatch.setattr(decode_module.simplejpeg, "decode_jpeg", counters["simplejpeg"])
    full, reduced = _Counter(lambda: None), _Counter(lambda: None)
    real_load = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile) -> Any:
        # Only a load with tiles left decodes; later calls return the loaded pixels.
        if self.tile:
            (reduced if getattr(self, "_anshim_drafted", False) else full)()
        return real_load(self)

    real_draft = JpegImagePlugin.JpegImageFile.draft

    def draft(self: JpegImagePlugin.JpegImageFile, mode: Any, size: Any) -> Any:
        result = real_draft(self, mode, size)
        if result is not None:
            self._anshim_drafted = True  # type: ignore[attr-defined]
        return result

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", draft)
    counters["pillow_full"] = full
    counters["pillow_reduced"] = reduced
    return counters


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def test_one_full_size_decode_per_jpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _jpeg(synthetic_rgb(640, 480, seed=3))
    counters = _count_decodes(monkeypatch)
    result = analyze_bytes(data, dihedral=True)
    assert isinstance(result.fingerprint, ImageFingerprint) and result.queries
    assert counters["simplejpeg"].calls + counters["pillow_full"].calls == 1
    # The reduced-scale IDCT decode (the hash of entries registered before issue 20) is the
    # only other decode, at 1/4 of the size here.
    assert counters["pillow_reduced"].calls == 1
    assert {q.strategy for q in result.queries} >= {"dihedral-rotate90", "dihedral-flipx"}


def test_the_two_decode_path_decoded_twice_at_full_size(monkeypatch: pytest.MonkeyPatch,
                                                        ) -> None:
    """What the counter above measures: the old path's full-size decodes."""
    data = _jpeg(synthetic_rgb(640, 480, seed=3))
    counters = _count_decodes(monkeypatch)
    _old_two_decodes(data, dihedral=True)
    assert counters["simplejpeg"].calls + counters["pillow_full"].calls == 2


def test_one_decode_per_png_and_no_reduced_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _png(synthetic_rgb(320, 240, seed=4))
    counters = _count_decodes(monkeypatch)
    result = analyze_bytes(data)
    assert isinstance(result.fingerprint, ImageFingerprint)
    assert counters["pillow_full"].calls == 1
    assert counters["simplejpeg"].calls == 0 and counters["pillow_reduced"].calls == 0


def test_reduced_false_skips_the_reduced_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _jpeg(synthetic_rgb(640, 480, seed=5))
    counters = _count_decodes(monkeypatch)
    result = analyze_bytes(data, reduced=False)
    assert counters["simplejpeg"].calls + counters["pillow_full"].calls == 1
    assert counters["pillow_reduced"].calls == 0
    assert all(q.strategy != "reduced" for q in result.queries)


def test_robust_false_gives_the_fingerprint_only() -> None:
    data = _jpeg(synthetic_rgb(320, 240, seed=6))
    result = analyze_bytes(data, robust=False)
    assert result.queries == ()
    assert result.fingerprint == fingerprint_bytes(data)
    assert result.sha256 == result.fingerprint.sha256 and len(result.md5) == 32


def test_video_and_animation_get_vpdq_and_no_robust_queries() -> None:
    frames = [Image.fromarray(synthetic_rgb(96, 96, seed=s)) for s in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=200)
    result = analyze_bytes(buf.getvalue())
    assert isinstance(result.fingerprint, VideoFingerprint) and result.queries == ()
    assert result.fingerprint == fingerprint_bytes(buf.getvalue())


def test_bad_input_is_the_engines_typed_error() -> None:
    with pytest.raises(FingerprintError):
        analyze_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(TypeError):
        analyze_bytes("text")  # type: ignore[arg-type]


def test_robust_hashes_failing_alone_leave_the_fingerprint(monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise FingerprintError("robust part failed")

    monkeypatch.setattr(analyze_module, "query_fingerprints_of_luma", broken)
    data = _jpeg(synthetic_rgb(320, 240, seed=7))
    result = analyze_bytes(data)
    assert result.queries == () and result.fingerprint == fingerprint_bytes(data)
    assert robust_strategy.query_fingerprints_of_luma is not broken
