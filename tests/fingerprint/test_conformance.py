"""Conformance against Meta's reference hashes in the shared conformance directory."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from anshim.fingerprint import (
    ImageFingerprint,
    VideoFingerprint,
    fingerprint_file,
    hamming_distance,
    parse_vpdq,
)
from anshim.fingerprint.pdq import bits_to_hex

from .media import require_conformance


def _reference_hashes(conf: Path) -> dict[str, str]:
    text = (conf / "README.md").read_text()
    return {name: h for h, name in re.findall(r"^([0-9a-f]{64})  (\S+)", text, re.M)}


def _image(path: Path, **kw: object) -> ImageFingerprint:
    fp = fingerprint_file(path, **kw)  # type: ignore[arg-type]
    assert isinstance(fp, ImageFingerprint)
    return fp


def test_dih_set_within_8_bits_of_cpp_reference() -> None:
    conf = require_conformance()
    refs = _reference_hashes(conf)
    files = sorted((conf / "pdq/reg-test-input/dih").glob("*.jpg"))
    assert len(files) == 8
    worst = 0
    for f in files:
        d = hamming_distance(_image(f).pdq, refs[f.name])
        worst = max(worst, d)
        assert d <= 8, f"{f.name}: {d} bits from the C++ reference"
    print(f"dih max distance to C++ reference: {worst}")


def test_dihedral_variants_of_original_match_rotated_files() -> None:
    conf = require_conformance()
    refs = _reference_hashes(conf)
    variants = _image(conf / "pdq/reg-test-input/dih/bridge-1-original.jpg", dihedral=True)
    assert variants.dihedral is not None
    names = {
        "original": "bridge-1-original.jpg",
        "rotate90": "bridge-2-rotate-90.jpg",
        "rotate180": "bridge-3-rotate-180.jpg",
        "rotate270": "bridge-4-rotate-270.jpg",
        "flipx": "bridge-5-flipx.jpg",
        "flipy": "bridge-6-flipy.jpg",
        "flip_plus1": "bridge-7-flip-plus-1.jpg",
        "flip_minus1": "bridge-8-flip-minus-1.jpg",
    }
    for variant, name in names.items():
        assert hamming_distance(variants.dihedral[variant], refs[name]) <= 16, variant


def test_python_reference_list_within_16_bits() -> None:
    conf = require_conformance()
    checked = 0
    for name, ref in _reference_hashes(conf).items():
        if "/" not in name:
            continue
        path = conf / "pdq" / name
        if not path.exists():
            continue
        d = hamming_distance(_image(path).pdq, ref)
        assert d <= 16, f"{name}: {d} bits from the Python reference"
        checked += 1
    assert checked >= 9


def test_bridge_mods_match_original() -> None:
    conf = require_conformance()
    folder = conf / "pdq/bridge-mods"
    original = _image(folder / "aaa-orig.jpg").pdq
    for f in sorted(folder.glob("*.jpg")):
        assert hamming_distance(_image(f).pdq, original) <= 31, f.name


def test_every_pillow_mode_close_to_original() -> None:
    conf = require_conformance()
    folder = conf / "pdq/misc-images/modes"
    original = _image(folder / "original.jpg").pdq
    files = [f for f in sorted(folder.iterdir()) if f.suffix != ".md"]
    assert len(files) >= 10
    for f in files:
        assert hamming_distance(_image(f).pdq, original) <= 10, f.name


def test_exif_orientation_applied() -> None:
    conf = require_conformance()
    folder = conf / "pdq/reg-test-input/exif-rotn"
    for f in sorted(folder.glob("*.jpg")):
        fp = _image(f)
        shown = ImageOps.exif_transpose(Image.open(f)).convert("RGB")
        assert (fp.width, fp.height) == shown.size
        pdqhash = pytest.importorskip("pdqhash")
        bits, quality = pdqhash.compute(np.asarray(shown))
        assert hamming_distance(fp.pdq, bits_to_hex(bits.astype(bool))) <= 8, f.name
        assert abs(fp.quality - int(quality)) <= 5, f.name


def test_quality_in_reference_band() -> None:
    pdqhash = pytest.importorskip("pdqhash")
    conf = require_conformance()
    files = [
        f
        for f in sorted((conf / "pdq").rglob("*"))
        if f.suffix.lower() in {".jpg", ".png", ".webp"} and "exif-rotn" not in f.parts
    ]  # exif-rotn (12 MP) is checked in test_exif_orientation_applied
    for f in files:
        shown = ImageOps.exif_transpose(Image.open(f)).convert("RGB")
        _, ref_quality = pdqhash.compute(np.asarray(shown))
        q = _image(f).quality
        assert abs(q - int(ref_quality)) <= 5, f.name
        assert (q >= 50) == (int(ref_quality) >= 50), f.name


# The four 22-second chair videos are near-duplicates; two of them keep the suite fast.
_SKIPPED_VIDEOS = {"chair-22-sd-grey-bar.mp4", "chair-orig-22-sd-bar.mp4"}


def _video_pairs(conf: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for video in sorted((conf / "vpdq/videos").glob("*.mp4")):
        if video.name in _SKIPPED_VIDEOS:
            continue
        ref = conf / "vpdq/hashes" / (video.stem + ".txt")
        if ref.exists():
            pairs.append((video, ref))
    return pairs


def test_vpdq_frames_within_31_of_reference() -> None:
    conf = require_conformance()
    pairs = _video_pairs(conf)
    assert pairs
    worst = 0
    for video, ref_path in pairs:
        fp = fingerprint_file(video, seconds_per_hash=0)
        assert isinstance(fp, VideoFingerprint)
        ref = parse_vpdq(ref_path.read_text())
        assert len(fp.frames) == len(ref), video.name
        for mine, theirs in zip(fp.frames, ref, strict=True):
            assert mine.frame_number == theirs.frame_number
            assert abs(mine.timestamp - theirs.timestamp) < 0.002
            if theirs.quality >= 50:
                d = hamming_distance(mine.pdq, theirs.pdq)
                worst = max(worst, d)
                # These text hashes came from another FFmpeg build (6 bits off on some frames,
                # where the vpdq package on this machine agrees to 0): the 4-bit bound against
                # the package is in test_pdqhash_agreement.py.
                assert d <= 31, f"{video.name} frame {mine.frame_number}: {d} bits"
    print(f"vPDQ max per-frame distance: {worst}")
