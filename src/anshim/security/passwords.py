"""Password rules beyond Django's validators: no common word or site word dressed up with digits.

Django's `CommonPasswordValidator` only refuses exact entries of its list, and the minimum
length lets `counselor2024` (13 characters) through. Sprayers try exactly such passwords: a
role, the centre's name or a common password with a year or a few symbols around it. This
validator strips digits, punctuation and spaces and refuses what is left when it is a common
password, a word of this site, or shorter than four letters.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.password_validation import CommonPasswordValidator
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from anshim.security.roles import Role

# Words anyone would guess for this site, lower case, letters only.
SITE_WORDS = frozenset({
    "anshim", "ansim", "center", "centre", "seoul", "staff", "welcome", "letmein", "victim",
    "support", "hotline", "counsel", "counseling", "counselling", "erasure", "takedown",
    "prevention", "expert", "supervisor", "admin", "administrator", "password", "passwd",
    *(role.value for role in Role),
    *(str(role.label).lower().replace(" ", "") for role in Role),
})
MIN_LETTERS = 4
_NOT_LETTERS = re.compile(r"[\W\d_]+", re.UNICODE)


class DecoratedWordValidator:
    """Refuse a common or site word with digits and symbols around it (`counselor2024!`)."""

    def __init__(self) -> None:
        self._common = CommonPasswordValidator().passwords

    def core(self, password: str) -> str:
        return _NOT_LETTERS.sub("", password).lower()

    def validate(self, password: str, user: Any = None) -> None:
        core = self.core(password)
        if len(core) < MIN_LETTERS:
            raise ValidationError(
                _("This password is mostly digits and symbols. Use several words."),
                code="password_few_letters")
        if core in SITE_WORDS or core in self._common:
            raise ValidationError(
                _("This password is a common word with digits or symbols added, which is "
                  "among the first guesses of an attacker. Use several unrelated words."),
                code="password_decorated_word")

    def get_help_text(self) -> str:
        return _("Your password can't be a common word or the name of a role with a few "
                 "digits or symbols added.")
