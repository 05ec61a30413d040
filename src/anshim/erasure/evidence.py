"""Evidence records for police and court, signed with the center's Ed25519 key.

The key lives in `settings.ANSHIM_EVIDENCE_KEY_FILE` (default: DATA_DIR/evidence-ed25519.pem),
created on first use with owner-only permissions. The signature covers a canonical JSON form
of the record (sorted keys, UTF-8), so anyone holding the public key can check a package.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from anshim.erasure.models import Evidence
from anshim.security.evidence_key import key_id, key_path, public_key_bytes, signing_key

__all__ = [
    "canonical", "evidence_payload", "key_id", "key_path", "public_key_b64", "public_key_bytes",
    "seal", "sign", "signing_key", "verify", "verify_record",
]


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
