"""Case passphrases for the portal: generated once, shown once, stored only as an Argon2 hash."""

from __future__ import annotations

import secrets

from django.contrib.auth.hashers import check_password, make_password

# No 0/O, 1/I/L: a child reads it off a screen and types it on a phone.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
GROUPS, GROUP_LEN = 4, 4  # 16 symbols of log2(31) bits = 79 bits of entropy

# A valid Argon2 hash of a random value: compared against when no case matches, so that an
# unknown code costs the same time as a wrong passphrase.
_DUMMY_HASH: str | None = None


def generate_passphrase() -> str:
    return "-".join(
        "".join(secrets.choice(ALPHABET) for _ in range(GROUP_LEN)) for _ in range(GROUPS)
    )


def normalize(passphrase: str) -> str:
    cleaned = "".join(ch for ch in passphrase.upper() if ch.isalnum())
    return "-".join(cleaned[i : i + GROUP_LEN] for i in range(0, len(cleaned), GROUP_LEN))


def hash_passphrase(passphrase: str) -> str:
    return make_password(normalize(passphrase), hasher="argon2")


def verify_passphrase(passphrase: str, encoded: str | None) -> bool:
    global _DUMMY_HASH
    if not encoded:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = make_password(secrets.token_hex(16), hasher="argon2")
        check_password(normalize(passphrase), _DUMMY_HASH)
        return False
    return check_password(normalize(passphrase), encoded)
