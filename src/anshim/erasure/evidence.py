"""Evidence records for police and court, signed with the center's Ed25519 key.

The key lives in `settings.ANSHIM_EVIDENCE_KEY_FILE` (default: DATA_DIR/evidence-ed25519.pem),
created on first use with owner-only permissions. The signature covers a canonical JSON form
of the record (sorted keys, UTF-8), so anyone holding the public key can check a package.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from anshim.erasure.models import Evidence


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


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def evidence_payload(ev: Evidence) -> dict[str, Any]:
    """The signed content of one record."""
    return {
        "reference": ev.reference if ev.pk else None,
        "captured_at": ev.captured_at.isoformat(),
        "page_url": ev.page_url,
        "media_url": ev.media_url,
        "http_status": ev.http_status,
        "headers": ev.headers,
        "media_sha256": ev.media_sha256,
        "fingerprint": ev.fingerprint,
        "distance": ev.distance,
        "page_html_sha256": hashlib.sha256((ev.page_html or "").encode()).hexdigest(),
        "entry_id": ev.sighting.entry_id,
        "case": ev.sighting.case.code if ev.sighting.case is not None else None,
    }


def sign(data: bytes) -> tuple[str, str]:
    key = signing_key()
    return key.sign(data).hex(), key_id(public_key_bytes(key))


def verify(data: bytes, signature_hex: str, public: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(bytes.fromhex(signature_hex), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def seal(ev: Evidence) -> Evidence:
    """Sign a saved record (the reference needs its primary key)."""
    ev.signature, ev.key_id = sign(canonical(evidence_payload(ev)))
    ev.save(update_fields=["signature", "key_id"])
    return ev


def verify_record(ev: Evidence) -> bool:
    return verify(canonical(evidence_payload(ev)), ev.signature, public_key_bytes())


def public_key_b64() -> str:
    return base64.b64encode(public_key_bytes()).decode()
