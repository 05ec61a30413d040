"""Issue 8 for video in the banks: a re-encoded, trimmed, letterboxed or cropped copy of a
robustly registered video is found through vPDQ, with the strategy that found it.

Benign conformance videos only (vPDQ's test set), transformed in memory with PyAV.
"""

from __future__ import annotations

import functools
import io
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps

from anshim.erasure.matcher import match_bytes
from anshim.erasure.models import Bank, Fingerprint, FingerprintKind
from anshim.erasure.services import register_image_robust, withdraw_entry

av = pytest.importorskip("av")

_DEFAULT_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
_CONFORMANCE = Path(os.environ.get("ANSHIM_CONFORMANCE_DIR", _DEFAULT_DIR))
_VIDEOS = _CONFORMANCE / "vpdq" / "videos"
REGISTERED = "doorknob-hd-no-bar.mp4"  # the shortest (4 s)
UNRELATED = "pattern-sd-grey-bar.mp4"

pytestmark = pytest.mark.skipif(not (_VIDEOS / REGISTERED).exists(),
                                reason="vPDQ conformance videos not available")


def _decode(data: bytes) -> tuple[list[np.ndarray], float]:
    with av.open(io.BytesIO(data), "r") as c:
        s = c.streams.video[0]
        rate = float(s.average_rate or 25)
        return [f.to_ndarray(format="rgb24") for f in c.decode(s)], rate


def _encode(frames: list[np.ndarray], rate: float, crf: int = 23) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(rate).limit_denominator(1001))
        h, w = frames[0].shape[:2]
        s.width, s.height = w - w % 2, h - h % 2
        s.pix_fmt = "yuv420p"
        s.options = {"crf": str(crf), "preset": "ultrafast"}
        for arr in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(arr[: s.height, : s.width],
                                                         format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def _map(frames: list[np.ndarray], fn: Any) -> list[np.ndarray]:
    return [np.asarray(fn(Image.fromarray(f))) for f in frames]


def _half(im: Image.Image) -> Image.Image:
    return im.resize((im.width // 2, im.height // 2))


def _letterbox(im: Image.Image) -> Image.Image:
    pad = int(im.height * 0.12)
    return ImageOps.expand(im, border=(0, pad, 0, pad), fill=(0, 0, 0))


def _crop(im: Image.Image) -> Image.Image:
    w, h = im.size
    return im.crop((int(w * 0.05), int(h * 0.05), w - int(w * 0.05), h - int(h * 0.05)))


@functools.cache
def _original() -> bytes:
    return (_VIDEOS / REGISTERED).read_bytes()


@functools.cache
def _copies() -> dict[str, bytes]:
    frames, rate = _decode(_original())
    n = len(frames)
    return {
        "re-encoded": _encode(_map(frames, _half), rate, crf=30),
        "trimmed": _encode(frames[int(n * 0.2): int(n * 0.8)], rate),
        "letterboxed": _encode(_map(frames, _letterbox), rate),
        "cropped": _encode(_map(frames, _crop), rate),
    }


@pytest.fixture
def video_entry(bank: Bank, make_case: Any) -> Any:
    return register_image_robust(bank, data=_original(), case=make_case(),
                                 source="staff_evidence", actor=None, label="video")


def _found(data: bytes) -> dict[int, str]:
    return {m.entry_id: m.strategy for m in match_bytes(data)}


def test_registration_stores_the_video_variants_on_one_entry(video_entry: Any) -> None:
    rows = Fingerprint.objects.filter(entry=video_entry, kind=FingerprintKind.VPDQ)
    variants = set(rows.values_list("variant", flat=True))
    assert "original" in variants
    assert any(v.startswith("crop-") for v in variants)
    assert not rows.filter(frame_number__isnull=True).exists()
    assert not rows.filter(timestamp__isnull=True).exists()
    assert video_entry.media_kind == "video"


def test_transformed_copies_are_found_with_their_strategy(video_entry: Any) -> None:
    copies = _copies()
    assert _found(_original()) == {video_entry.pk: "sha256"}
    assert _found(copies["re-encoded"]) == {video_entry.pk: "vpdq"}
    assert _found(copies["trimmed"]) == {video_entry.pk: "vpdq"}
    assert _found(copies["letterboxed"]) == {video_entry.pk: "trim"}
    assert _found(copies["cropped"]) == {video_entry.pk: "crop"}
    (cropped,) = match_bytes(copies["cropped"])
    assert cropped.variant.startswith("crop-")
    assert cropped.query_percent is not None and cropped.query_percent >= 50.0


def test_unrelated_video_does_not_match(video_entry: Any) -> None:
    assert _found((_VIDEOS / UNRELATED).read_bytes()) == {}


def test_withdrawal_removes_every_variant_row(video_entry: Any) -> None:
    assert _found(_copies()["letterboxed"])  # the matcher is built and warm
    withdraw_entry(video_entry.pk, actor=None, reason="test")
    assert not Fingerprint.objects.filter(entry_id=video_entry.pk).exists()
    for data in (_original(), *_copies().values()):
        assert _found(data) == {}


def test_plain_registration_misses_the_cropped_copy(bank: Bank) -> None:
    from anshim.erasure.services import register_fingerprints
    from anshim.fingerprint.engine import fingerprint_bytes

    fp = fingerprint_bytes(_original())
    entry = register_fingerprints(bank, fingerprints=fp, source="staff_evidence", actor=None)
    assert set(Fingerprint.objects.filter(entry=entry, kind=FingerprintKind.VPDQ)
               .values_list("variant", flat=True)) == {"original"}
    assert entry.pk not in _found(_copies()["cropped"])


def test_allow_list_suppresses_robust_video_matches(video_entry: Any) -> None:
    from anshim.erasure.models import BankPurpose
    from anshim.erasure.services import create_bank

    allow = create_bank("allowed", purpose=BankPurpose.ALLOW_LIST)
    register_image_robust(allow, data=_original(), source="staff_evidence", actor=None)
    for name in ("re-encoded", "letterboxed", "cropped"):
        assert _found(_copies()[name]) == {}
