"""Benign test media, generated in memory (no real content, no files written)."""

from __future__ import annotations

import io
import os
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def conformance_dir() -> Path:
    """The conformance data directory (env ANSHIM_CONFORMANCE_DIR or ../shared/conformance)."""
    env = os.environ.get("ANSHIM_CONFORMANCE_DIR")
    return Path(env) if env else (REPO / ".." / "shared" / "conformance").resolve()


def require_conformance() -> Path:
    d = conformance_dir()
    if not (d / "pdq").is_dir() or not (d / "vpdq").is_dir():
        pytest.skip(f"conformance data not found at {d} (set ANSHIM_CONFORMANCE_DIR)")
    return d


def synthetic_rgb(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """A smooth photo-like RGB image: gradients, blobs and some texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), dtype=np.float32)
    for c in range(3):
        img[..., c] = 80 + 60 * np.sin(x / (17 + 7 * c + seed)) * np.cos(y / (23 + 5 * c))
    for _ in range(6):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.05, 0.25) * min(width, height)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(-90, 120, size=3)
    img += rng.normal(0, 4, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def image_bytes(fmt: str, arr: np.ndarray | None = None, **save: object) -> bytes:
    im = Image.fromarray(arr if arr is not None else synthetic_rgb())
    buf = io.BytesIO()
    im.save(buf, format=fmt, **save)
    return buf.getvalue()


def animated_bytes(fmt: str = "GIF", frames: int = 12, duration_ms: int = 250) -> bytes:
    ims = [Image.fromarray(synthetic_rgb(96, 64, seed=i // 4)) for i in range(frames)]
    buf = io.BytesIO()
    ims[0].save(buf, format=fmt, save_all=True, append_images=ims[1:], duration=duration_ms, loop=0)
    return buf.getvalue()


def video_bytes(
    container: str = "mp4",
    codec: str = "mpeg4",
    frames: int = 30,
    rate: int = 10,
    size: tuple[int, int] = (96, 64),
    pix_fmt: str = "yuv420p",
) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        for i in range(frames):
            arr = synthetic_rgb(size[0], size[1], seed=i // 10)
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def audio_only_bytes(container: str = "matroska") -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        stream.layout = "mono"
        samples = np.zeros((1, 800), dtype=np.int16)
        for i in range(5):
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = 8000
            frame.pts = i * 800
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def long_pts_video_bytes(seconds: int = 10_000_000) -> bytes:
    """A tiny MKV whose second frame is stamped ``seconds`` after the first."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="matroska") as out:
        stream = out.add_stream("mjpeg", rate=10)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuvj420p"
        stream.codec_context.time_base = Fraction(1, 10)
        for i, pts in enumerate((0, seconds * 10)):
            frame = av.VideoFrame.from_ndarray(synthetic_rgb(64, 48, seed=i), format="rgb24")
            frame.pts = pts
            frame.time_base = Fraction(1, 10)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def gif_bomb(width: int = 5000, height: int = 5000, frames: int = 400) -> bytes:
    """A small GIF with a big logical screen and many tiny frames."""
    out = bytearray(b"GIF89a")
    out += struct.pack("<HHBBB", width, height, 0x80, 0, 0)  # global colour table, 2 colours
    out += b"\x00\x00\x00\xff\xff\xff"
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for _ in range(frames):
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # 100 ms
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
        out += b"\x02\x02\x44\x01\x00"  # LZW: 1 pixel
    out += b"\x3b"
    return bytes(out)
