import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anshim.matching import InvalidThresholdError, PDQIndex, format_pdq_hex, parse_pdq_hex

from .helpers import brute_force, clustered_codes, queries_near, random_codes

THRESHOLDS = [0, 1, 7, 15, 16, 24, 31, 32, 40, 64, 256]


def _bank(kind: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    codes = random_codes(rng, n) if kind == "uniform" else clustered_codes(rng, n, max(1, n // 20))
    ids = rng.permutation(n * 5)[:n].astype(np.int64) - n
    return rng, ids, codes


@pytest.mark.parametrize("kind", ["uniform", "clustered"])
@pytest.mark.parametrize("chunk_bits", [None, 8, 16, 21])
@pytest.mark.parametrize("sketches", [True, False])
def test_search_equals_brute_force(kind, chunk_bits, sketches):
    rng, ids, codes = _bank(kind, 3000, 1)
    index = PDQIndex.from_codes(ids, codes, chunk_bits=chunk_bits, sketches=sketches)
    assert index._base.has_sketches is sketches
    queries = queries_near(rng, codes, 70)
    hexes = format_pdq_hex(queries)
    for threshold in THRESHOLDS:
        assert index.search(hexes, threshold) == brute_force(ids, codes, queries, threshold)


def test_default_threshold_is_31_and_per_bank():
    rng, ids, codes = _bank("clustered", 500, 2)
    queries = queries_near(rng, codes, 65)
    hexes = format_pdq_hex(queries)
    assert PDQIndex.from_codes(ids, codes).search(hexes) == brute_force(ids, codes, queries, 31)
    strict = PDQIndex.from_codes(ids, codes, threshold=10)
    assert strict.search(hexes) == brute_force(ids, codes, queries, 10)
    assert strict.search(hexes, 31) == brute_force(ids, codes, queries, 31)


def test_wide_max_threshold_is_indexed_exactly():
    rng, ids, codes = _bank("clustered", 800, 3)
    index = PDQIndex.from_codes(ids, codes, max_threshold=48, chunk_bits=16)
    assert index.stats()["layout"]["max_threshold"] == 48
    queries = queries_near(rng, codes, 65)
    assert index.search(format_pdq_hex(queries), 48) == brute_force(ids, codes, queries, 48)


def test_base_delta_and_tombstones_together():
    rng, ids, codes = _bank("clustered", 2000, 4)
    index = PDQIndex.from_codes(ids[:1500], codes[:1500], chunk_bits=16)
    index.add(ids[1500:].tolist(), format_pdq_hex(codes[1500:]))
    gone = np.concatenate([ids[:100], ids[1500:1600]])
    index.remove(gone.tolist())
    keep = ~np.isin(ids, gone)
    queries = queries_near(rng, codes, 65)
    for threshold in (0, 16, 31, 45):
        expected = brute_force(ids[keep], codes[keep], queries, threshold)
        assert index.search(format_pdq_hex(queries), threshold) == expected
    index.compact()
    assert index.stats()["delta_entries"] == 0 and index.stats()["tombstones"] == 0
    assert index.search(format_pdq_hex(queries)) == brute_force(ids[keep], codes[keep], queries, 31)


def test_empty_index_and_empty_query():
    index = PDQIndex()
    assert index.search(["0" * 64]) == [[]]
    assert index.search([]) == []
    assert len(index) == 0


@pytest.mark.parametrize("bad", [-1, 257, 3.5, "31"])
def test_invalid_threshold(bad):
    with pytest.raises(InvalidThresholdError):
        PDQIndex().search(["0" * 64], bad)


def test_results_in_query_order_with_duplicate_queries():
    index = PDQIndex()
    index.add([5, 6], ["0" * 64, "f" * 64])
    assert index.search(["f" * 64, "0" * 64, "f" * 64], 0) == [[(6, 0)], [(5, 0)], [(6, 0)]]


def test_many_results_overflow_buffers():
    # every entry matches every query: exercises output-buffer growth
    n = 70_000
    codes = np.zeros((n, 4), dtype=np.uint64)
    codes[:, 3] = np.arange(n, dtype=np.uint64) & np.uint64(0xF)
    index = PDQIndex.from_codes(np.arange(n), codes, chunk_bits=16)
    res = index.search(["0" * 64, "0" * 64], 4)
    assert [len(r) for r in res] == [n, n]


def test_search_any_dihedral_best_distance():
    index = PDQIndex()
    a, b = "0" * 64, "f" * 64
    near_b = "e" + "f" * 63
    index.add([1, 2], [a, b])
    assert index.search_any([[a, near_b], [near_b, b], ["5" * 64]], 1) == [
        [(1, 0), (2, 1)],
        [(2, 0)],
        [],
    ]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    threshold=st.integers(0, 70),
    chunk_bits=st.sampled_from([8, 11, 16, 19]),
    flips=st.lists(st.integers(0, 80), min_size=1, max_size=8),
    sketches=st.booleans(),
)
def test_property_exact_against_brute_force(seed, n, threshold, chunk_bits, flips, sketches):
    rng = np.random.default_rng(seed)
    codes = clustered_codes(rng, n, max(1, n // 10))
    ids = np.arange(n, dtype=np.int64) * 7
    index = PDQIndex.from_codes(ids, codes, chunk_bits=chunk_bits, sketches=sketches)
    src = codes[rng.integers(0, n, len(flips))]
    queries = src.copy()
    for k, f in enumerate(flips):
        for p in rng.choice(256, size=f, replace=False):
            queries[k, p >> 6] ^= np.uint64(1) << np.uint64(p & 63)
    expected = brute_force(ids, codes, queries, threshold)
    assert index.search(format_pdq_hex(queries), threshold) == expected
    counts, _found_ids, _dists = index.search_codes(queries, threshold)
    assert counts.tolist() == [len(e) for e in expected]


def test_search_codes_matches_hex_search():
    _rng, ids, codes = _bank("uniform", 200, 5)
    index = PDQIndex.from_codes(ids, codes)
    counts, found, _dists = index.search_codes(codes[:3], 0)
    assert counts.tolist() == [1, 1, 1]
    assert found.tolist() == ids[:3].tolist()
    assert np.array_equal(parse_pdq_hex(index.hashes_of(ids[:3].tolist())), codes[:3])


@pytest.mark.parametrize("sketches", [True, False])
def test_four_byte_row_numbers(monkeypatch, sketches):
    # banks of 2**24 entries and more store row numbers in 4 bytes instead of 3
    from anshim.matching import segment

    monkeypatch.setattr(segment, "row_bytes_for", lambda size: 4)
    rng, ids, codes = _bank("clustered", 1500, 9)
    index = PDQIndex.from_codes(ids, codes, chunk_bits=16, sketches=sketches)
    assert index._base.rows.shape == (16, 1500 * 4)
    queries = queries_near(rng, codes, 65)
    assert index.search(format_pdq_hex(queries)) == brute_force(ids, codes, queries, 31)


@pytest.mark.parametrize("threshold", [0, 12, 31])
def test_distance_all_in_the_sketch_words_at_the_threshold(threshold):
    # Every bit of difference lies in the words the tables keep as sketches: the sketch
    # filter must let a candidate at exactly the threshold through, and stop one bit more.
    rng = np.random.default_rng(3)
    codes = random_codes(rng, 2000)
    index = PDQIndex.from_codes(np.arange(2000), codes, chunk_bits=16)
    near, far = codes[5].copy(), codes[5].copy()
    bits = rng.choice(128, size=threshold + 1, replace=False) + 128  # words 2 and 3
    for k, p in enumerate(bits):
        if k < threshold:
            near[p >> 6] ^= np.uint64(1) << np.uint64(p & 63)
        far[p >> 6] ^= np.uint64(1) << np.uint64(p & 63)
    found = index.search(format_pdq_hex(np.stack([near, far])), threshold)
    assert found == [[(5, threshold)], []]


def test_large_banks_are_compact_by_default(monkeypatch):
    from anshim.matching import layout

    monkeypatch.setattr(layout, "SKETCHES_BELOW", 1000)
    rng, ids, codes = _bank("uniform", 1500, 4)
    index = PDQIndex.from_codes(ids, codes)
    assert not index._base.has_sketches
    assert index._base.sketches.shape == (index._base.layout.tables, 0, 2)
    small = PDQIndex.from_codes(ids[:999], codes[:999])
    assert small._base.has_sketches
    assert small._base.nbytes > index._base.nbytes * 999 / 1500
    queries = queries_near(rng, codes, 65)
    assert index.search(format_pdq_hex(queries)) == brute_force(ids, codes, queries, 31)
