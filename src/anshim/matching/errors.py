"""Typed errors raised by the matching engine."""

from __future__ import annotations


class MatchingError(Exception):
    """Base class of every error the matching engine raises."""


class MalformedHashError(MatchingError, ValueError):
    """A hash is not of the expected form (PDQ: 64 hex characters)."""


class DuplicateIdError(MatchingError, KeyError):
    """An id is added that the index already holds (or twice in one batch)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "duplicate id"


class UnknownIdError(MatchingError, KeyError):
    """An id is removed that the index does not hold."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown id"


class CorruptIndexError(MatchingError):
    """A snapshot or change log on disk is damaged or of an unknown format."""


class NotAttachedError(MatchingError):
    """An operation needs an index that was saved to or loaded from a directory."""
