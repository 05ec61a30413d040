"""Fuzz the decoders with mutated files (hypothesis): only typed errors, never a crash."""

from __future__ import annotations

import functools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anshim.fingerprint import FingerprintError, fingerprint_bytes

from . import media


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    return (
        media.image_bytes("JPEG", media.synthetic_rgb(64, 48)),
        media.image_bytes("PNG", media.synthetic_rgb(64, 48)),
        media.image_bytes("WEBP", media.synthetic_rgb(64, 48)),
        media.image_bytes("TIFF", media.synthetic_rgb(32, 24)),
        media.image_bytes("BMP", media.synthetic_rgb(32, 24)),
        media.animated_bytes("GIF", frames=4),
        media.video_bytes("mp4", "mpeg4", frames=6),
        media.video_bytes("matroska", "libx264", frames=6),
    )


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_seeds())))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated())
def test_mutated_media_gives_result_or_typed_error(data: bytes) -> None:
    try:
        fp = fingerprint_bytes(data)
    except FingerprintError as exc:
        assert exc.message
    else:
        assert len(fp.sha256) == 64
