"""Hostile and broken input: typed errors, bounded time, no crash."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from anshim.fingerprint import (
    CorruptMedia,
    FingerprintError,
    ImageFingerprint,
    Limits,
    MediaTooLarge,
    NoVideoStream,
    UnsupportedMedia,
    VideoFingerprint,
    fingerprint_bytes,
    fingerprint_file,
)

from . import media


def _raises(exc: type[FingerprintError], data: bytes, **kw: object) -> FingerprintError:
    started = time.monotonic()
    with pytest.raises(exc) as info:
        fingerprint_bytes(data, **kw)  # type: ignore[arg-type]
    assert time.monotonic() - started < 10
    assert info.value.message
    return info.value


def test_zero_bytes() -> None:
    err = _raises(UnsupportedMedia, b"")
    assert "empty" in err.message


@pytest.mark.parametrize(
    "data",
    [b"hello world" * 100, b"%PDF-1.7\n" + b"x" * 100, b"PK\x03\x04" + bytes(100), bytes(4096)],
)
def test_non_media_bytes(data: bytes) -> None:
    _raises(UnsupportedMedia, data)


@pytest.mark.parametrize(
    "make",
    [
        lambda: media.image_bytes("JPEG"),
        lambda: media.image_bytes("PNG"),
        lambda: media.image_bytes("WEBP"),
        lambda: media.image_bytes("TIFF"),
        lambda: media.image_bytes("BMP"),
        lambda: media.image_bytes("GIF"),
    ],
)
def test_truncated_images(make: Callable[[], bytes]) -> None:
    data = make()
    for cut in (12, 40, len(data) // 3, len(data) // 2):
        with pytest.raises(FingerprintError):
            fingerprint_bytes(data[:cut])


def test_truncated_and_corrupt_videos() -> None:
    data = media.video_bytes()
    _raises(CorruptMedia, data[:2000])
    for start in (40, 400, len(data) // 2):
        corrupt = bytearray(data)
        corrupt[start : start + 300] = bytes(300)
        try:  # damaged packets may be skipped: a partial fingerprint is fine, a crash is not
            fp = fingerprint_bytes(bytes(corrupt))
        except FingerprintError as exc:
            assert exc.message
        else:
            assert isinstance(fp, VideoFingerprint)


def test_png_decompression_bomb_rejected_before_decoding() -> None:
    data = media.png_bomb(50_000, 50_000)
    assert len(data) < 200
    err = _raises(MediaTooLarge, data)
    assert "pixels" in err.message or "too large" in err.message


def test_pixel_limit_is_configurable() -> None:
    data = media.image_bytes("PNG")  # 320 x 240
    _raises(MediaTooLarge, data, limits=Limits(max_pixels=10_000))
    assert isinstance(fingerprint_bytes(data), ImageFingerprint)


def test_huge_animated_gif() -> None:
    data = media.gif_bomb(5000, 5000, frames=400)
    err = _raises(MediaTooLarge, data)
    assert "frames" in err.message


def test_animation_frame_limit() -> None:
    data = media.animated_bytes("GIF", frames=12)
    _raises(MediaTooLarge, data, limits=Limits(max_animation_frames=2))


def test_audio_only_container() -> None:
    err = _raises(NoVideoStream, media.audio_only_bytes())
    assert "audio" in err.message


def test_absurd_duration() -> None:
    _raises(MediaTooLarge, media.long_pts_video_bytes(10_000_000))


def test_video_frame_limit() -> None:
    _raises(MediaTooLarge, media.video_bytes(frames=30), limits=Limits(max_video_frames=10))


def test_wrong_extension(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("wrong-ext")
    png_as_mp4 = folder / "photo.mp4"
    png_as_mp4.write_bytes(media.image_bytes("PNG"))
    video_as_jpg = folder / "clip.jpg"
    video_as_jpg.write_bytes(media.video_bytes())
    assert isinstance(fingerprint_file(png_as_mp4), ImageFingerprint)
    assert isinstance(fingerprint_file(video_as_jpg), VideoFingerprint)


def test_byte_limit() -> None:
    _raises(MediaTooLarge, media.image_bytes("PNG"), limits=Limits(max_bytes=100))


def test_missing_file() -> None:
    with pytest.raises(FingerprintError):
        fingerprint_file("/nonexistent/definitely/not/here.jpg")


def test_errors_are_picklable() -> None:
    import pickle

    err = CorruptMedia("broken")
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, CorruptMedia) and back.message == "broken"
    assert err.code == "corrupt_media"
