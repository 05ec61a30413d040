"""Exact (cryptographic) hashes of the bytes."""

from __future__ import annotations

import hashlib

__all__ = ["md5_hex", "sha256_hex"]


def md5_hex(data: bytes) -> str:
    """MD5 of ``data`` as 32 lowercase hex characters (for exchange with MD5 hash lists)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lowercase hex characters."""
    return hashlib.sha256(data).hexdigest()
