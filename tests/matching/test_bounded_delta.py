"""The bounded delta (LSM-style merges): exact against brute force at every step.

`DELTA_LIMIT` is lowered so that a few hundred operations go through many freezes and
merges; the model is a plain dict checked with the brute-force oracle after each step.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anshim.matching import PDQIndex, format_pdq_hex, pdq_index

from .helpers import brute_force, flip_random_bits, random_codes


@pytest.fixture(autouse=True)
def _small_delta(monkeypatch):
    monkeypatch.setattr(pdq_index, "DELTA_LIMIT", 16)


def _check(index: PDQIndex, model: dict[int, np.ndarray], queries: np.ndarray, t: int) -> None:
    ids = np.array(sorted(model), dtype=np.int64)
    codes = (np.array([model[i] for i in ids.tolist()], dtype=np.uint64).reshape(-1, 4))
    assert index.search(format_pdq_hex(queries), t) == brute_force(ids, codes, queries, t)
    assert len(index) == len(model)


OPS = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "search"]), st.integers(1, 40),
              st.integers(0, 2**32)),
    min_size=1, max_size=40,
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, attached=st.booleans())
def test_interleaved_adds_removes_searches_match_brute_force(ops, attached, tmp_path_factory):
    index = PDQIndex(chunk_bits=16, durable=False)
    if attached:
        index.save(tmp_path_factory.mktemp("bank"))
    model: dict[int, np.ndarray] = {}
    next_id = 0
    for op, size, seed in ops:
        rng = np.random.default_rng(seed)
        if op == "add":
            codes = random_codes(rng, size)
            if model:  # near copies of held entries too, so matches exist
                held = np.array(list(model.values()), dtype=np.uint64)
                codes[: size // 2] = flip_random_bits(
                    rng, held[rng.integers(0, len(held), size // 2)], 20)
            ids = list(range(next_id, next_id + size))
            next_id += size
            index.add(ids, format_pdq_hex(codes))
            model.update(zip(ids, codes, strict=True))
        elif op == "remove" and model:
            gone = rng.choice(sorted(model), size=min(size, len(model)), replace=False)
            index.remove(gone.tolist())
            for ident in gone.tolist():
                del model[ident]
        held = np.array(list(model.values()), dtype=np.uint64).reshape(-1, 4)
        queries = random_codes(rng, 3)
        if held.size:
            queries = np.concatenate([queries, flip_random_bits(
                rng, held[rng.integers(0, len(held), 6)], int(rng.integers(0, 40)))])
        _check(index, model, queries, 31)
        assert index.stats()["delta_entries"] < pdq_index.DELTA_LIMIT
    if attached:  # what was merged in memory is all in the log: a reload agrees
        loaded = PDQIndex.load(index.stats()["path"])
        assert len(loaded) == len(model)
    if model:
        some = sorted(model)[:5]
        assert index.hashes_of(some) == format_pdq_hex(np.array([model[i] for i in some]))


def test_runs_stay_logarithmic_and_the_delta_bounded():
    index = PDQIndex(chunk_bits=16, durable=False)
    rng = np.random.default_rng(3)
    codes = random_codes(rng, 3000)
    for lo in range(0, 3000, 7):
        index.add(range(lo, min(lo + 7, 3000)), format_pdq_hex(codes[lo : lo + 7]))
        stats = index.stats()
        assert stats["delta_entries"] < 16
        assert len(stats["runs"]) <= int(np.log2(3000 / 16)) + 2
    queries = flip_random_bits(rng, codes[:50], 25)
    _check(index, dict(enumerate(codes)), queries, 31)


def test_one_large_add_is_one_segment_like_from_codes(monkeypatch):
    monkeypatch.setattr(pdq_index, "DELTA_LIMIT", 2048)
    codes = random_codes(np.random.default_rng(4), 5000)
    index = PDQIndex()
    index.add(range(5000), format_pdq_hex(codes))
    stats = index.stats()
    assert (stats["base_entries"], stats["runs"], stats["delta_entries"]) == (5000, [], 0)
    bulk = PDQIndex.from_codes(np.arange(5000), codes)
    assert index._base.layout == bulk._base.layout
    queries = format_pdq_hex(flip_random_bits(np.random.default_rng(5), codes[:40], 30))
    assert index.search(queries) == bulk.search(queries)


def test_concurrent_adds_removes_and_searches_stay_exact():
    index = PDQIndex(chunk_bits=16, durable=False)
    rng = np.random.default_rng(9)
    stable = random_codes(rng, 200)
    index.add(range(200), format_pdq_hex(stable))  # never removed: always found
    probes = format_pdq_hex(stable[:20])
    errors: list[str] = []
    stop = threading.Event()

    def writer(offset: int) -> None:
        local = np.random.default_rng(offset)
        for k in range(60):
            ids = list(range(offset + 10 * k, offset + 10 * k + 10))
            index.add(ids, format_pdq_hex(random_codes(local, 10)))
            if k % 2:
                index.remove(ids[:5])

    def reader() -> None:
        while not stop.is_set():
            found = index.search(probes, 0)
            if [hits[:1] for hits in found] != [[(i, 0)] for i in range(20)]:
                errors.append(repr(found[:2]))

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(10_000 * (w + 1),)) for w in range(3)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors
    assert len(index) == 200 + 3 * (600 - 30 * 5)
    assert index.stats()["delta_entries"] < 16
