"""The center's Ed25519 key: it signs evidence packages for police and court, and audit anchors.

One key for everything the center attests, whose public half police and courts already hold. It
lives in `settings.ANSHIM_EVIDENCE_KEY_FILE` (default: DATA_DIR/evidence-ed25519.pem), created on
first use with owner-only permissions. It is here, in the security app, because both the audit
chain (below every app) and the erasure app's evidence records use it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

__all__ = ["key_id", "key_path", "public_key_bytes", "signing_key"]


def key_path() -> Path:
    configured = getattr(settings, "ANSHIM_EVIDENCE_KEY_FILE", None)
    return Path(configured) if configured else Path(settings.DATA_DIR) / "evidence-ed25519.pem"


def signing_key() -> Ed25519PrivateKey:
    path = key_path()
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    return loaded


def public_key_bytes(key: Ed25519PrivateKey | None = None) -> bytes:
    key = key or signing_key()
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]
