"""AES-GCM encryption of personal data, and model fields that apply it transparently.

Stored form: ``enc1:<key id>:<base64(nonce || ciphertext+tag)>``. The associated data binds a
ciphertext to its table and column, so a value copied into another column fails to decrypt.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import models

from anshim.security.keyring import KeyRing, KeyRingError, get_keyring

PREFIX = "enc1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A stored value could not be decrypted (wrong key, tampering, or not ciphertext)."""


def encrypt(plaintext: str, *, context: str, ring: KeyRing | None = None) -> str:
    ring = ring or get_keyring()
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(ring.primary).encrypt(nonce, plaintext.encode("utf-8"), context.encode())
    return f"{PREFIX}:{ring.primary_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def decrypt(stored: str, *, context: str, ring: KeyRing | None = None) -> str:
    ring = ring or get_keyring()
    try:
        prefix, key_id, b64 = stored.split(":", 2)
    except ValueError:
        raise DecryptionError("Value is not in the encrypted format.") from None
    if prefix != PREFIX:
        raise DecryptionError(f"Unknown encryption format {prefix!r}.")
    try:
        raw = base64.b64decode(b64, validate=True)
        nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        data = AESGCM(ring.get(key_id)).decrypt(nonce, sealed, context.encode())
    except (InvalidTag, ValueError, KeyRingError) as exc:
        raise DecryptionError(f"Cannot decrypt value: {exc or 'authentication failed'}") from exc
    return data.decode("utf-8")


def key_id_of(stored: str) -> str | None:
    parts = stored.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == PREFIX else None


class EncryptedTextField(models.TextField):
    """Text encrypted at rest. Not searchable or orderable in the database, by design."""

    description = "Text encrypted with AES-GCM"

    def _context(self) -> str:
        return f"{self.model._meta.label_lower}.{self.attname}"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return self.to_python(decrypt(value, context=self._context()))

    def get_prep_value(self, value: Any) -> Any:
        # Field.get_prep_value only resolves lazy strings; TextField's would call to_python,
        # which for the date subclass turns the ISO text back into a date.
        value = self.serialize_plain(models.Field.get_prep_value(self, value))
        if value is None or value == "":
            return value
        return encrypt(value, context=self._context())

    def serialize_plain(self, value: Any) -> Any:
        """The plaintext to encrypt: always `str` (or None / "" for an empty value)."""
        return value if value is None or isinstance(value, str) else str(value)


class EncryptedDateField(EncryptedTextField):
    """A date encrypted at rest (e.g. a birth date); Python sees `datetime.date`."""

    description = "Date encrypted with AES-GCM"

    def to_python(self, value: Any) -> Any:
        if value is None or value == "" or isinstance(value, dt.date):
            return value or None
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError as exc:
            from django.core.exceptions import ValidationError

            raise ValidationError(f"'{value}' is not a valid date (YYYY-MM-DD).") from exc

    def serialize_plain(self, value: Any) -> Any:
        value = self.to_python(value)
        return value.isoformat() if isinstance(value, dt.date) else value

    def formfield(self, **kwargs: Any) -> Any:
        from django import forms

        return forms.DateField(required=not self.blank, **kwargs)


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Every model with encrypted columns, for key rotation and the dump test."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        names = [
            f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)
        ]
        if names:
            found.append((model, names))
    return found
