"""AES-GCM encryption of personal data, and model fields that apply it transparently.

Stored form: ``enc1:<key id>@<row pk>:<base64(nonce || ciphertext+tag)>``. The associated data
binds a ciphertext to its table, column *and row*: ``app.model.column#pk``. A value copied into
another column fails to decrypt; a value copied into another row of the same column decrypts
(the pk in the stored form is authenticated) but names a different row, and loading the model
instance refuses it (`post_init` check), so values cannot be swapped between victims.

A row inserted with an auto-increment key has no pk yet when its values are encrypted: those
are written unbound (``enc1:<key id>:<...>``, associated data ``app.model.column``, the format
before rows were bound) and re-bound by an UPDATE right after the insert (`post_save`), in the
same transaction when the caller has one. `bulk_create` and `QuerySet.update()` write unbound
values too; `anshim keys rotate --resume` (and migration security 0004) binds every unbound
value, and `anshim keys status` counts them.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import models
from django.db.models.signals import post_init, post_save

from anshim.security.keyring import KeyRing, KeyRingError, get_keyring

PREFIX = "enc1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A stored value could not be decrypted (wrong key, tampering, or not ciphertext)."""


UNBOUND = ""  # the bound pk of a value that is not bound to a row


def _aad(context: str, pk: str) -> bytes:
    return (f"{context}#{pk}" if pk != UNBOUND else context).encode()


def encrypt(plaintext: str, *, context: str, ring: KeyRing | None = None,
            pk: object = None) -> str:
    """Seal `plaintext` for column `context` ("app.model.field"), bound to row `pk` when given."""
    ring = ring or get_keyring()
    nonce = secrets.token_bytes(NONCE_BYTES)
    bound = UNBOUND if pk is None else str(pk)
    if "@" in bound or ":" in bound:
        raise ValueError(f"Cannot bind to primary key {bound!r}.")
    sealed = AESGCM(ring.primary).encrypt(nonce, plaintext.encode("utf-8"), _aad(context, bound))
    key = ring.primary_id if bound == UNBOUND else f"{ring.primary_id}@{bound}"
    return f"{PREFIX}:{key}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def decrypt_bound(stored: str, *, context: str, ring: KeyRing | None = None) -> tuple[str, str]:
    """(plaintext, the pk the value is bound to, or UNBOUND)."""
    ring = ring or get_keyring()
    try:
        prefix, key_part, b64 = stored.split(":", 2)
    except ValueError:
        raise DecryptionError("Value is not in the encrypted format.") from None
    if prefix != PREFIX:
        raise DecryptionError(f"Unknown encryption format {prefix!r}.")
    key_id, _, bound = key_part.partition("@")
    try:
        raw = base64.b64decode(b64, validate=True)
        nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        data = AESGCM(ring.get(key_id)).decrypt(nonce, sealed, _aad(context, bound))
    except (InvalidTag, ValueError, KeyRingError) as exc:
        raise DecryptionError(f"Cannot decrypt value: {exc or 'authentication failed'}") from exc
    return data.decode("utf-8"), bound


def decrypt(stored: str, *, context: str, ring: KeyRing | None = None) -> str:
    return decrypt_bound(stored, context=context, ring=ring)[0]


def key_id_of(stored: str) -> str | None:
    parts = stored.split(":", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    return parts[1].partition("@")[0]


def bound_pk_of(stored: str) -> str | None:
    """The row a stored value is bound to (UNBOUND for an unbound one; None: not encrypted)."""
    parts = stored.split(":", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    return parts[1].partition("@")[2]


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(f"{PREFIX}:")


@dataclass(frozen=True)
class Seal:
    """A plaintext on its way to the database, with the row it is to be bound to."""

    value: Any
    pk: object


class BoundText(str):
    """Decrypted text that remembers which row its ciphertext was bound to."""

    anshim_bound_pk: str = UNBOUND


class BoundDate(dt.date):
    anshim_bound_pk: str = UNBOUND


def _remember_bound(value: Any, bound: str) -> Any:
    if isinstance(value, str):
        text = BoundText(value)
        text.anshim_bound_pk = bound
        return text
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        day = BoundDate(value.year, value.month, value.day)
        day.anshim_bound_pk = bound
        return day
    return value


_PENDING = "_anshim_unbound_fields"


def _check_rows(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """Every loaded encrypted value must be bound to this row (or to none)."""
    pk = instance.pk
    if pk is None:
        return
    for field in _encrypted_of(sender):
        value = instance.__dict__.get(field.attname)
        bound = getattr(value, "anshim_bound_pk", UNBOUND)
        if bound != UNBOUND and bound != str(pk):
            raise DecryptionError(
                f"The value of {sender._meta.label_lower}.{field.attname} in row {pk} belongs "
                f"to row {bound}: it was copied from another row.")


def _bind_after_insert(sender: type[models.Model], instance: models.Model, raw: bool = False,
                       using: str = "default", **kwargs: Any) -> None:
    """Values encrypted before the insert gave the row its pk: bind them now."""
    pending = instance.__dict__.pop(_PENDING, None)
    if not pending or raw or instance.pk is None:
        return
    values = {name: Seal(getattr(instance, name), instance.pk) for name in sorted(pending)}
    sender._base_manager.using(using).filter(pk=instance.pk).update(**values)


def _encrypted_of(model: type[models.Model]) -> list[EncryptedTextField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]


class EncryptedTextField(models.TextField):
    """Text encrypted at rest. Not searchable or orderable in the database, by design."""

    description = "Text encrypted with AES-GCM"

    def _context(self) -> str:
        return f"{self.model._meta.label_lower}.{self.attname}"

    def contribute_to_class(self, cls: type[models.Model], name: str, *args: Any,
                            **kwargs: Any) -> None:
        super().contribute_to_class(cls, name, *args, **kwargs)
        if not cls._meta.abstract:
            label = cls._meta.label_lower
            # One receiver per model (whichever encrypted field comes first connects them).
            post_init.connect(_check_rows, sender=cls,
                              dispatch_uid=f"anshim-seal-check-{label}-{id(cls)}")
            post_save.connect(_bind_after_insert, sender=cls,
                              dispatch_uid=f"anshim-seal-bind-{label}-{id(cls)}")

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        plain, bound = decrypt_bound(value, context=self._context())
        return _remember_bound(self.to_python(plain), bound)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = getattr(model_instance, self.attname)
        if model_instance.pk is None and value not in (None, ""):
            # Auto-increment insert: bound after the insert (see `_bind_after_insert`).
            model_instance.__dict__.setdefault(_PENDING, set()).add(self.attname)
        return Seal(value, model_instance.pk)

    def get_prep_value(self, value: Any) -> Any:
        pk = None
        if isinstance(value, Seal):
            value, pk = value.value, value.pk
        # Field.get_prep_value only resolves lazy strings; TextField's would call to_python,
        # which for the date subclass turns the ISO text back into a date.
        value = self.serialize_plain(models.Field.get_prep_value(self, value))
        if value is None or value == "":
            return value
        return encrypt(value, context=self._context(), pk=pk)

    def serialize_plain(self, value: Any) -> Any:
        """The plaintext to encrypt: always `str` (or None / "" for an empty value)."""
        if value is None or type(value) is str:
            return value
        return str.__str__(value) if isinstance(value, str) else str(value)


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


def encrypted_fields(registry: Any = None) -> list[tuple[type[models.Model], list[str]]]:
    """Every model with encrypted columns, for key rotation and the dump test (`registry`: a
    migration's historical apps, by default the current models)."""
    from django.apps import apps as current

    found = []
    for model in (registry or current).get_models():
        names = [
            f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)
        ]
        if names:
            found.append((model, names))
    return found
