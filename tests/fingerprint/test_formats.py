"""Every accepted format gives the same fingerprint kind and a close hash."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

from anshim.fingerprint import (
    ImageFingerprint,
    VideoFingerprint,
    bits_to_hex,
    fingerprint_bytes,
    hamming_distance,
    luma_from_rgb,
    md5_hex,
    pdq_from_luma,
    sha256_hex,
)

from . import media


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return media.synthetic_rgb(640, 480, seed=7)


@pytest.fixture(scope="module")
def reference(rgb: np.ndarray) -> ImageFingerprint:
    fp = fingerprint_bytes(media.image_bytes("PNG", rgb))
    assert isinstance(fp, ImageFingerprint)
    return fp


@pytest.mark.parametrize(
    ("fmt", "save"),
    [
        ("JPEG", {"quality": 90}),
        ("PNG", {}),
        ("GIF", {}),
        ("WEBP", {"quality": 90}),
        ("BMP", {}),
        ("TIFF", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
    ],
)
def test_image_formats(
    fmt: str, save: dict[str, object], rgb: np.ndarray, reference: ImageFingerprint
) -> None:
    data = media.image_bytes(fmt, rgb, **save)
    fp = fingerprint_bytes(data)
    assert isinstance(fp, ImageFingerprint)
    assert (fp.width, fp.height) == (640, 480)
    assert fp.md5 == md5_hex(data) and fp.sha256 == sha256_hex(data)
    assert len(fp.pdq) == 64 and 0 <= fp.quality <= 100
    # Against the reference binding on the pixels Pillow decodes (GIF is palette-dithered, so
    # the pixels themselves differ from the PNG's).
    pdqhash = pytest.importorskip("pdqhash")
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    bits, quality = pdqhash.compute(pixels)
    assert hamming_distance(fp.pdq, bits_to_hex(bits.astype(bool))) <= 8, fmt
    assert abs(fp.quality - int(quality)) <= 5
    if fmt != "GIF":
        assert hamming_distance(fp.pdq, reference.pdq) <= 16, fmt


def test_heif(rgb: np.ndarray, reference: ImageFingerprint) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    buf = io.BytesIO()
    heif = pillow_heif.from_pillow(Image.fromarray(rgb))
    heif.save(buf, quality=90)
    fp = fingerprint_bytes(buf.getvalue())
    assert isinstance(fp, ImageFingerprint)
    assert fp.format == "HEIF"
    assert hamming_distance(fp.pdq, reference.pdq) <= 16


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(orientation: int, rgb: np.ndarray) -> None:
    """A JPEG stored transposed with the EXIF tag that undoes it hashes like the upright one."""
    upright = Image.fromarray(rgb)
    undo = {
        1: None,
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    stored = upright if undo is None else upright.transpose(undo)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, format="JPEG", quality=92, exif=exif.tobytes())
    upright_fp = fingerprint_bytes(media.image_bytes("JPEG", rgb, quality=92))
    fp = fingerprint_bytes(buf.getvalue())
    assert isinstance(fp, ImageFingerprint) and isinstance(upright_fp, ImageFingerprint)
    assert (fp.width, fp.height) == (640, 480)
    assert hamming_distance(fp.pdq, upright_fp.pdq) <= 12, orientation


def test_large_jpeg_reduced_decode_close_to_full(rgb: np.ndarray) -> None:
    big = np.asarray(Image.fromarray(rgb).resize((2000, 1500), Image.Resampling.BICUBIC))
    data = media.image_bytes("JPEG", big, quality=90)
    fast = fingerprint_bytes(data)
    full = fingerprint_bytes(data, min_side=0)
    assert isinstance(fast, ImageFingerprint) and isinstance(full, ImageFingerprint)
    assert hamming_distance(fast.pdq, full.pdq) <= 8
    assert abs(fast.quality - full.quality) <= 5


def test_dihedral_output(rgb: np.ndarray) -> None:
    fp = fingerprint_bytes(media.image_bytes("PNG", rgb), dihedral=True)
    assert isinstance(fp, ImageFingerprint) and fp.dihedral is not None
    assert len(fp.dihedral) == 8 and fp.dihedral["original"] == fp.pdq
    plain = fingerprint_bytes(media.image_bytes("PNG", rgb))
    assert isinstance(plain, ImageFingerprint) and plain.dihedral is None


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_images_are_videos(fmt: str) -> None:
    data = media.animated_bytes(fmt, frames=12, duration_ms=250)
    fp = fingerprint_bytes(data)
    assert isinstance(fp, VideoFingerprint)
    assert fp.format == fmt
    assert [f.timestamp for f in fp.frames][:2] == [0.0, 1.0]
    every = fingerprint_bytes(data, seconds_per_hash=0)
    assert isinstance(every, VideoFingerprint)
    assert len(every.frames) == every.frame_count >= 3


@pytest.mark.parametrize(
    ("container", "codec"),
    [
        ("mp4", "mpeg4"),
        ("mp4", "libx264"),
        ("webm", "libvpx"),
        ("webm", "libvpx-vp9"),
        ("matroska", "libx264"),
        ("mov", "mpeg4"),
        ("avi", "mpeg4"),
    ],
)
def test_video_containers(container: str, codec: str) -> None:
    data = media.video_bytes(container, codec, frames=30, rate=10)
    fp = fingerprint_bytes(data)
    assert isinstance(fp, VideoFingerprint)
    assert fp.frame_count == 30
    assert fp.frame_rate == pytest.approx(10.0)
    assert [f.frame_number for f in fp.frames] == [0, 10, 20]
    assert [f.timestamp for f in fp.frames] == pytest.approx([0.0, 1.0, 2.0])
    every = fingerprint_bytes(data, seconds_per_hash=0)
    assert isinstance(every, VideoFingerprint) and len(every.frames) == 30
    with av.open(io.BytesIO(data), mode="r") as opened:
        first = next(opened.decode(video=0)).to_ndarray(format="rgb24")
    expected, _ = pdq_from_luma(luma_from_rgb(first))
    # Tiny, saturated synthetic frames: RGB clipping makes the two luma paths differ a little.
    assert hamming_distance(fp.frames[0].pdq, expected) <= 20


def test_low_quality_large_jpeg_uses_full_decode() -> None:
    rng = np.random.default_rng(5)
    flat = np.clip(128 + rng.normal(0, 1.5, size=(1200, 1600, 3)), 0, 255).astype(np.uint8)
    data = media.image_bytes("JPEG", flat, quality=90)
    fast = fingerprint_bytes(data)
    full = fingerprint_bytes(data, min_side=0)
    assert isinstance(fast, ImageFingerprint) and isinstance(full, ImageFingerprint)
    assert fast.quality < 50
    assert (fast.pdq, fast.quality) == (full.pdq, full.quality)
