import numpy as np
import pytest

from anshim.matching import (
    DuplicateIdError,
    MatchingError,
    PDQIndex,
    UnknownIdError,
    format_pdq_hex,
)

from .helpers import random_codes


def _index(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    codes = random_codes(rng, n)
    ids = np.arange(n, dtype=np.int64) + 10
    return PDQIndex.from_codes(ids, codes, chunk_bits=16), ids, format_pdq_hex(codes)


def test_removal_invisible_to_next_query_base_and_delta():
    index, _ids, hexes = _index()
    assert index.search([hexes[3]])[0] == [(13, 0)]
    index.remove([13])
    assert index.search([hexes[3]])[0] == []
    index.add([99999], [hexes[3]])
    assert index.search([hexes[3]])[0] == [(99999, 0)]
    index.remove([99999])
    assert index.search([hexes[3]])[0] == []
    assert 13 not in index and 99999 not in index and 14 in index


def test_add_visible_to_next_query():
    index, _, _ = _index()
    h = "ab" * 32
    index.add([-5], [h])
    assert index.search([h], 0) == [[(-5, 0)]]
    assert len(index) == 1001


def test_readd_after_removal():
    index, _, hexes = _index()
    index.remove([10])
    index.add([10], [hexes[1]])
    assert index.search([hexes[1]], 0)[0] == [(10, 0), (11, 0)]
    assert index.hashes_of([10]) == [hexes[1]]


def test_duplicate_ids_rejected_atomically():
    index, _, hexes = _index()
    with pytest.raises(DuplicateIdError, match="already"):
        index.add([5000, 10], [hexes[0], hexes[1]])
    assert 5000 not in index
    with pytest.raises(DuplicateIdError, match="twice"):
        index.add([6000, 6000], [hexes[0], hexes[1]])
    index.add([7000], [hexes[0]])
    with pytest.raises(DuplicateIdError):
        index.add([7000], [hexes[0]])
    with pytest.raises(DuplicateIdError):
        PDQIndex.from_codes([1, 1], np.zeros((2, 4), dtype=np.uint64))


def test_unknown_ids_rejected_atomically():
    index, _, _hexes = _index()
    with pytest.raises(UnknownIdError, match="123456"):
        index.remove([10, 123456])
    assert 10 in index
    index.remove([10])
    with pytest.raises(UnknownIdError):
        index.remove([10])
    with pytest.raises(UnknownIdError):
        index.hashes_of([10])


def test_malformed_input():
    index, _, hexes = _index()
    with pytest.raises(MatchingError):
        index.add([1, 2], [hexes[0]])
    with pytest.raises(MatchingError):
        index.add(["a"], [hexes[0]])
    with pytest.raises(MatchingError):
        index.add([2**64], [hexes[0]])
    with pytest.raises(MatchingError):
        index.search(["zz" * 32])
    with pytest.raises(MatchingError):
        index.search_any(["0" * 64])


def test_delta_swap_remove_keeps_ids_right():
    index = PDQIndex()
    hexes = format_pdq_hex(random_codes(np.random.default_rng(3), 50))
    index.add(list(range(50)), hexes)
    index.remove(list(range(0, 50, 3)))
    for i, h in enumerate(hexes):
        assert index.search([h], 0)[0] == ([] if i % 3 == 0 else [(i, 0)])
    assert len(index) == 50 - 17


def test_ids_beyond_int32_next_to_int32_column():
    index, _, hexes = _index()  # ids fit int32: the base stores them as int32
    assert index._base.ids.dtype == np.int32
    big = 2**40 + 10
    with pytest.raises(UnknownIdError):
        index.remove([big])
    index.add([big, -(2**40)], [hexes[0], hexes[1]])
    assert index.search([hexes[0]], 0)[0] == [(10, 0), (big, 0)]
    index.remove([big])
    index.compact()
    assert index._base.ids.dtype == np.int64
    assert index.search([hexes[1]], 0)[0] == [(-(2**40), 0), (11, 0)]
