import math

import pytest

from anshim.matching import plan_layout
from anshim.matching.layout import ChunkLayout, chunk_bits_for, sketches_for


@pytest.mark.parametrize("bits", [8, 12, 16, 19, 20, 21, 22, 24])
@pytest.mark.parametrize("threshold", [0, 1, 10, 15, 16, 31, 32])
def test_layout_tiles_and_is_exact(bits, threshold):
    layout = plan_layout(threshold, bits)
    assert sum(layout.widths) == 256
    assert layout.starts[0] == 0
    # pigeonhole: the radii + 1 add up to more than the threshold
    assert sum(r + 1 for r in layout.radii) > threshold
    assert ChunkLayout.from_json(layout.to_json()) == layout
    tables, _masks = layout.probe_arrays()
    assert len(tables) == layout.probes_per_query()


def test_ten_million_layout():
    layout = plan_layout(31, chunk_bits_for(10_000_000))
    assert layout.tables == 12
    assert layout.radii.count(2) == 8
    assert layout.probes_per_query() == 8 * (1 + 21 + math.comb(21, 2)) + 4 * 23


def test_too_wide_threshold_raises():
    with pytest.raises(ValueError):
        plan_layout(120, 24)


def test_invalid_layout_json():
    data = plan_layout(31, 16).to_json()
    data["radii"] = [0] * 16
    with pytest.raises(ValueError):
        ChunkLayout.from_json(data)


@pytest.mark.parametrize("bits", [8, 11, 16, 19, 21, 22, 24])
def test_sketch_words_avoid_the_chunk(bits):
    layout = plan_layout(31, bits)
    words = layout.sketch_words()
    assert words.shape == (layout.tables, 2)
    chunks = zip(layout.starts, layout.widths, strict=True)
    for (start, width), (a, b) in zip(chunks, words.tolist(), strict=True):
        touched = set(range(start // 64, (start + width - 1) // 64 + 1))
        assert a != b
        assert not touched & {a, b}


def test_chunk_width_by_bank_size():
    assert sketches_for(2_999_999) and not sketches_for(3_000_000)
    assert chunk_bits_for(0) == 16
    assert chunk_bits_for(1_000_000) == 16
    assert chunk_bits_for(2_999_999) == 16
    assert chunk_bits_for(1_000_000, sketches=False) == 20
    assert chunk_bits_for(10_000_000) == 22
    assert chunk_bits_for(10_000_000, sketches=True) == 16
    assert chunk_bits_for(10**9) == 22
