from __future__ import annotations

import pytest

from anshim.cases import codes


def test_random_code_format_and_check() -> None:
    for _ in range(200):
        code = codes.random_code()
        assert codes.is_valid(code), code
        assert len(code) == len("AN-7K3F-Q9")
        assert not set(code[3:].replace("-", "")) & set("01OI")


def test_single_character_typo_is_detected() -> None:
    code = codes.random_code()
    body = code[3:]
    for i, ch in enumerate(body):
        if ch == "-":
            continue
        for replacement in codes.ALPHABET:
            if replacement == ch:
                continue
            typo = code[:3] + body[:i] + replacement + body[i + 1:]
            assert not codes.is_valid(typo)


@pytest.mark.parametrize("bad", ["", "AN-", "AN-0000-00", "XX-2345-67", "AN-2345-6", "garbage"])
def test_invalid_codes(bad: str) -> None:
    assert not codes.is_valid(bad)


def test_lowercase_and_spaces_accepted() -> None:
    code = codes.random_code()
    assert codes.is_valid(" " + code.lower() + " ")


def test_retry_on_collision() -> None:
    seen: list[str] = []

    def exists(code: str) -> bool:
        seen.append(code)
        return len(seen) < 3  # the first two collide

    code = codes.new_unique_code(exists)
    assert code == seen[-1] and len(seen) == 3


def test_gives_up_when_everything_collides() -> None:
    with pytest.raises(codes.CodeSpaceExhausted):
        codes.new_unique_code(lambda _c: True)
