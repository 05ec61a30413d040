"""Typed errors of the fingerprinting engine.

Every failure to fingerprint a piece of media is a :class:`FingerprintError`; callers can catch the
base class or one of the specific subclasses. Messages describe the problem and never contain the
media bytes themselves.
"""

from __future__ import annotations

__all__ = [
    "CorruptMedia",
    "FingerprintError",
    "MediaTooLarge",
    "NoVideoStream",
    "UnsupportedMedia",
]


class FingerprintError(Exception):
    """Base class: the media could not be fingerprinted."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[type[FingerprintError], tuple[str]]:
        # Keep the exception picklable across process-pool boundaries.
        return (type(self), (self.message,))

    @property
    def code(self) -> str:
        """A short machine-readable name of the error class (e.g. ``"corrupt_media"``)."""
        name = type(self).__name__
        return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class UnsupportedMedia(FingerprintError):
    """The bytes are not an image or video format the engine accepts (or are empty)."""


class CorruptMedia(FingerprintError):
    """The format was recognised but the data is truncated, damaged or cannot be decoded."""


class MediaTooLarge(FingerprintError):
    """The media exceeds a configured limit (pixels, frames, duration, bytes or decode time)."""


class NoVideoStream(FingerprintError):
    """A container format was recognised but it holds no decodable video stream."""
