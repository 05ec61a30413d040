"""Issue 20: the engine's default fingerprints agree with Meta's reference bindings.

PDQ against ``pdqhash`` (Meta's C++ PDQ) on Pillow's RGB of the same file as displayed, and vPDQ
frames against the ``vpdq`` package: within 4 bits at most, 0 bits median, on every image the
reference rates quality >= 50 (Meta's rule: lower-quality hashes are not used for matching).
Benign inputs only: the conformance set and generated pictures.
"""

from __future__ import annotations

import io
import statistics
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from anshim.fingerprint import (
    ImageFingerprint,
    VideoFingerprint,
    bits_to_hex,
    fingerprint_bytes,
    fingerprint_file,
    hamming_distance,
)
from anshim.fingerprint.types import DECODE_EXACT, DECODE_REDUCED, ENGINE_VERSION

from .media import require_conformance

pdqhash = pytest.importorskip("pdqhash")

MAX_BITS = 4


def reference(data: bytes) -> tuple[str, int]:
    """pdqhash on Pillow's RGB of the image as displayed (EXIF orientation applied)."""
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    bits, quality = pdqhash.compute(np.asarray(im))
    return bits_to_hex(bits.astype(bool)), int(quality)


def _image(data: bytes, **kw: object) -> ImageFingerprint:
    fp = fingerprint_bytes(data, **kw)  # type: ignore[arg-type]
    assert isinstance(fp, ImageFingerprint)
    return fp


def test_conformance_images_agree_with_pdqhash() -> None:
    conf = require_conformance()
    files = [f for f in sorted((conf / "pdq").rglob("*"))
             if f.suffix.lower() in {".jpg", ".png", ".webp"}]
    assert len(files) >= 40
    distances = []
    for f in files:
        data = f.read_bytes()
        ref_hex, ref_quality = reference(data)
        fp = _image(data)
        assert fp.decode == DECODE_EXACT and fp.engine == ENGINE_VERSION
        if ref_quality >= 50:
            d = hamming_distance(fp.pdq, ref_hex)
            assert d <= MAX_BITS, f"{f.relative_to(conf)}: {d} bits from pdqhash"
            assert abs(fp.quality - ref_quality) <= 1, f.name
            distances.append(d)
    assert len(distances) >= 40
    assert statistics.median(distances) == 0


def test_reduced_decode_is_opt_in_and_flagged() -> None:
    conf = require_conformance()
    data = (conf / "pdq/reg-test-input/dih/bridge-1-original.jpg").read_bytes()
    assert _image(data).decode == DECODE_EXACT
    reduced = _image(data, min_side=160)
    assert reduced.decode == DECODE_REDUCED
    assert reduced.to_dict()["decode"] == "reduced"


def test_vpdq_frames_agree_with_vpdq_package() -> None:
    vpdq = pytest.importorskip("vpdq")
    conf = require_conformance()
    distances = []
    for name in ("pattern-sd-grey-bar.mp4", "test-padded-dimensions.mp4",
                 "doorknob-hd-no-bar.mp4"):
        path = conf / "vpdq/videos" / name
        fp = fingerprint_file(path, seconds_per_hash=1.0)
        assert isinstance(fp, VideoFingerprint)
        ref = {f.frame_number: f for f in vpdq.computeHash(str(path), seconds_per_hash=1.0,
                                                           thread_count=1)}
        for frame in fp.frames:
            theirs = ref[frame.frame_number]
            if theirs.quality >= 50:
                d = hamming_distance(frame.pdq, theirs.hex)
                assert d <= MAX_BITS, f"{name} frame {frame.frame_number}: {d} bits"
                distances.append(d)
    assert distances and statistics.median(distances) == 0


# --- Generated photographs (a held-out-style property test) -------------------------------


def _picture(kind: str, width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "gradient":
        a, b, c = rng.uniform(-1, 1, 3)
        base = 128 + 100 * np.tanh(a * xx / width + b * yy / height + c)
        rgb = np.stack([base, base * rng.uniform(0.5, 1), 255 - base], axis=-1)
        rgb += rng.normal(0, 2, rgb.shape)
    elif kind == "noise":
        small = rng.uniform(0, 255, (max(2, height // 16), max(2, width // 16), 3))
        up = Image.fromarray(small.astype(np.uint8)).resize((width, height),
                                                           Image.Resampling.BICUBIC)
        rgb = np.asarray(up, dtype=np.float32) + rng.normal(0, 12, (height, width, 3))
    elif kind == "blobs":
        rgb = np.zeros((height, width, 3), np.float32) + rng.uniform(0, 255, 3)
        for _ in range(12):
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            r = rng.uniform(0.05, 0.4) * max(width, height)
            mask = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
            rgb += mask[..., None] * rng.uniform(-120, 120, 3)
    else:  # "text" and "flat": large flat areas with sharp shapes and writing
        im = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(0, 255, 3)))
        draw = ImageDraw.Draw(im)
        for _ in range(6 if kind == "flat" else 2):
            x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
            x1, y1 = x0 + int(rng.integers(10, width)), y0 + int(rng.integers(10, height))
            draw.rectangle((x0, y0, x1, y1),
                           fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        if kind == "text":
            for line in range(0, height, 24):
                draw.text((8, line), "benign sample text 0123 " * 8,
                          fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        return im.filter(ImageFilter.GaussianBlur(0.6))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def _encode(im: Image.Image, fmt: str, orientation: int, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt in ("JPEG", "JPEG-progressive", "JPEG-444"):
        exif = Image.Exif()
        if orientation != 1:
            exif[0x0112] = orientation
        im.save(buf, "JPEG", quality=quality, progressive=fmt == "JPEG-progressive",
                subsampling=0 if fmt == "JPEG-444" else 2, exif=exif.tobytes())
    elif fmt == "JPEG-CMYK":
        im.convert("CMYK").save(buf, "JPEG", quality=quality)
    elif fmt == "PNG":
        im.save(buf, "PNG")
    elif fmt == "WEBP":
        im.save(buf, "WEBP", quality=quality)
    else:
        im.save(buf, "HEIF", quality=quality)
    return buf.getvalue()


_SHAPES = {"normal": (640, 480), "wide": (1800, 140), "tall": (150, 1600), "large": (1600, 1200)}


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["gradient", "noise", "blobs", "text", "flat"]),
    shape=st.sampled_from(sorted(_SHAPES)),
    fmt=st.sampled_from(["JPEG", "JPEG-progressive", "JPEG-444", "JPEG-CMYK", "PNG", "WEBP",
                         "HEIF"]),
    orientation=st.integers(1, 8),
    quality=st.integers(80, 95),
    seed=st.integers(0, 2**16),
)
def test_generated_photographs_agree_with_pdqhash(
    kind: str, shape: str, fmt: str, orientation: int, quality: int, seed: int
) -> None:
    width, height = _SHAPES[shape]
    data = _encode(_picture(kind, width, height, seed), fmt, orientation, quality)
    ref_hex, ref_quality = reference(data)
    fp = _image(data)
    assert fp.decode == DECODE_EXACT
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert (fp.width, fp.height) == shown.size
    if ref_quality >= 50:
        assert hamming_distance(fp.pdq, ref_hex) <= MAX_BITS
        assert abs(fp.quality - ref_quality) <= 1


def test_generated_set_median_is_zero(tmp_path: Path) -> None:
    distances = []
    for i, kind in enumerate(["gradient", "noise", "blobs", "text", "flat"] * 3):
        data = _encode(_picture(kind, 900, 700, seed=i), "JPEG", 1 + i % 8, 85)
        ref_hex, ref_quality = reference(data)
        if ref_quality >= 50:
            distances.append(hamming_distance(_image(data).pdq, ref_hex))
    assert len(distances) >= 8
    assert statistics.median(distances) == 0 and max(distances) <= MAX_BITS


@pytest.mark.parametrize("orientation", range(1, 9))
def test_fused_filter_turns_the_filters_not_the_pixels(orientation: int) -> None:
    from anshim.fingerprint.decode_image import apply_orientation
    from anshim.fingerprint.pdq import downsample_64, downsample_64_rgb, luma_from_rgb

    rgb = np.random.default_rng(orientation).integers(0, 256, (301, 517, 3), dtype=np.uint8)
    plain = downsample_64(np.ascontiguousarray(apply_orientation(luma_from_rgb(rgb),
                                                                 orientation)))
    assert np.abs(downsample_64_rgb(rgb, orientation) - plain).max() < 1e-3
