import numpy as np
import pytest

from anshim.matching import MalformedHashError, format_pdq_hex, hamming_matrix, parse_pdq_hex

H0 = "0" * 64
HF = "f" * 64


def test_parse_format_round_trip():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2**64, (20, 4), dtype=np.uint64, endpoint=False)
    hexes = format_pdq_hex(codes)
    assert all(len(h) == 64 for h in hexes)
    assert np.array_equal(parse_pdq_hex(hexes), codes)
    assert np.array_equal(parse_pdq_hex([h.upper() for h in hexes]), codes)


def test_word_order_is_big_endian():
    codes = parse_pdq_hex(["0123456789abcdef" + "0" * 48])
    assert codes[0, 0] == np.uint64(0x0123456789ABCDEF)
    assert codes[0, 1:].sum() == 0


def test_hamming():
    d = hamming_matrix(parse_pdq_hex([H0]), parse_pdq_hex([H0, HF, "1" + "0" * 63]))
    assert d.tolist() == [[0, 256, 1]]


def test_empty():
    assert parse_pdq_hex([]).shape == (0, 4)


@pytest.mark.parametrize(
    "bad",
    [
        "0" * 63, "0" * 65, "g" + "0" * 63, "00 " + "0" * 61, "", None, 12, b"0" * 64,
        "0" * 62 + " 0",
    ],
)
def test_malformed_hash_names_position(bad):
    with pytest.raises(MalformedHashError, match="hash #1"):
        parse_pdq_hex([H0, bad])


def test_single_string_rejected():
    with pytest.raises(MalformedHashError):
        parse_pdq_hex(H0)


def test_malformed_is_value_error():
    with pytest.raises(ValueError):
        parse_pdq_hex(["xyz"])
