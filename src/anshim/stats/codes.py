"""Self-generated identification codes (SGIC) that link a student's tests across waves.

The scheme (docs/stats.md) asks for facts that stay the same between waves, that the student
knows without looking anything up, and that together do not identify anybody (no name, no full
birth date):

1. the first character of a parent's or guardian's given name (Hangul syllable or a letter:
   지 for 지영; J for Jennifer);
2. the student's birth month as two digits (01-12);
3. the number of older brothers and sisters (0-9; 9 for nine or more);
4. the last digit of the student's birth day (7 for the 7th, 17th or 27th).

Example: 지 + 03 + 1 + 7 -> ``지0317``. Codes are compared after :func:`normalise_code`
(Unicode NFKC, spaces and hyphens dropped, Latin letters upper-cased), so ``"j 03-1-7"`` and
``"J0317"`` link. With about 300 common initial syllables the scheme has some 36,000 codes,
enough that two students of one class rarely collide (a collision is reported, not linked).
"""

from __future__ import annotations

import re
import unicodedata

from .errors import StatsInputError

__all__ = ["CODE_PATTERN", "is_scheme_code", "make_code", "normalise_code"]

#: The documented scheme after normalisation: one letter or syllable, then four digits.
CODE_PATTERN = re.compile(r"^[^\W\d_]\d{4}$")

_DROP = re.compile(r"[\s\-_./]+")


def normalise_code(code: str) -> str:
    """The form codes are compared in; a code that is empty once normalised is an error."""
    if not isinstance(code, str):
        raise StatsInputError(f"a code must be text, got {type(code).__name__}")
    norm = _DROP.sub("", unicodedata.normalize("NFKC", code)).upper()
    if not norm:
        raise StatsInputError("an empty self-generated code")
    return norm


def is_scheme_code(code: str) -> bool:
    """Whether ``code`` follows the documented scheme (after normalisation)."""
    try:
        norm = normalise_code(code)
    except StatsInputError:
        return False
    return bool(CODE_PATTERN.match(norm)) and 1 <= int(norm[1:3]) <= 12


def make_code(parent_initial: str, birth_month: int, older_siblings: int, birth_day: int) -> str:
    """The code of the documented scheme from its four answers (for a form that asks them)."""
    init = normalise_code(parent_initial)[:1] if parent_initial.strip() else ""
    if not init or not init.isalpha():
        raise StatsInputError("the parent's initial must be a letter or a Hangul syllable")
    if not 1 <= birth_month <= 12:
        raise StatsInputError(f"birth month must be 1-12, got {birth_month}")
    if older_siblings < 0:
        raise StatsInputError("the number of older siblings must be >= 0")
    if not 1 <= birth_day <= 31:
        raise StatsInputError(f"birth day must be 1-31, got {birth_day}")
    return f"{init}{birth_month:02d}{min(older_siblings, 9)}{birth_day % 10}"
