"""Human-friendly case codes such as ``AN-7K3F-Q9``.

Staff read codes aloud on the phone and copy them by hand, so the alphabet leaves out the
look-alikes 0/O and 1/I, and the last character is a check character (Luhn mod N) that catches
any single mistyped character and most swapped neighbours.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 characters: no 0, O, 1, I
PREFIX = "AN"
RANDOM_CHARS = 5  # 32**5 ≈ 33.5 million codes
MAX_ATTEMPTS = 20

_PATTERN = re.compile(rf"^{PREFIX}-[{ALPHABET}]{{4}}-[{ALPHABET}]{{2}}$")


class CodeSpaceExhausted(RuntimeError):
    """No free code was found in MAX_ATTEMPTS tries (practically impossible)."""


def check_character(payload: str) -> str:
    """Luhn mod N over `payload` (characters of ALPHABET)."""
    n = len(ALPHABET)
    factor = 2
    total = 0
    for char in reversed(payload):
        addend = factor * ALPHABET.index(char)
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def format_code(payload: str) -> str:
    full = payload + check_character(payload)
    return f"{PREFIX}-{full[:4]}-{full[4:]}"


def random_code() -> str:
    payload = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))
    return format_code(payload)


def normalize(code: str) -> str:
    """Upper-case and trim what a person typed (spaces and lower case are common)."""
    return code.strip().upper().replace(" ", "")


def is_valid(code: str) -> bool:
    code = normalize(code)
    if not _PATTERN.match(code):
        return False
    full = code[len(PREFIX) + 1 :].replace("-", "")
    return check_character(full[:-1]) == full[-1]


def new_unique_code(exists: Callable[[str], bool] | None = None) -> str:
    """A fresh code not yet used; `exists` defaults to a lookup in the Case table.

    The unique constraint on Case.code stays the final guard against a race between two
    intakes; the intake service retries on IntegrityError.
    """
    if exists is None:
        from anshim.cases.models import Case

        def exists(code: str) -> bool:
            return Case.objects.filter(code=code).exists()

    for _ in range(MAX_ATTEMPTS):
        code = random_code()
        if not exists(code):
            return code
    raise CodeSpaceExhausted("No free case code found.")
