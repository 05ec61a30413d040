from __future__ import annotations

import re

import pytest

from anshim.portal import passphrases


def test_generated_passphrase_shape_and_alphabet():
    seen = {passphrases.generate_passphrase() for _ in range(50)}
    assert len(seen) == 50
    for p in seen:
        assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}(-[2-9A-HJKMNP-Z]{4}){3}", p), p
        assert not set(p) & set("01OIL")


@pytest.mark.parametrize(
    "typed", ["abcd-efgh-jkmn-pqrs", "ABCD EFGH JKMN PQRS", " abcdefghjkmnpqrs "]
)
def test_normalize_forgives_case_spaces_and_dashes(typed):
    assert passphrases.normalize(typed) == "ABCD-EFGH-JKMN-PQRS"


def test_hash_is_argon2_and_verifies_typed_variants():
    p = passphrases.generate_passphrase()
    encoded = passphrases.hash_passphrase(p)
    assert encoded.startswith("argon2$") and p not in encoded
    assert passphrases.verify_passphrase(p.lower().replace("-", " "), encoded)
    assert not passphrases.verify_passphrase("WRONG-WRONG-WRONG-WRNG", encoded)


def test_verify_without_hash_still_checks_a_dummy_and_fails():
    assert passphrases.verify_passphrase("ABCD-EFGH-JKMN-PQRS", None) is False
    assert passphrases.verify_passphrase("ABCD-EFGH-JKMN-PQRS", "") is False
    assert passphrases._DUMMY_HASH and passphrases._DUMMY_HASH.startswith("argon2$")
