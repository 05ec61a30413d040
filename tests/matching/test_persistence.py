import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from anshim.matching import CorruptIndexError, NotAttachedError, PDQIndex, format_pdq_hex

from .helpers import random_codes

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _saved(tmp_path, n=500):
    codes = random_codes(np.random.default_rng(7), n)
    index = PDQIndex.from_codes(np.arange(n) * 2, codes, chunk_bits=16, durable=False)
    index.save(tmp_path / "bank")
    return index, format_pdq_hex(codes)


def test_save_load_round_trip_is_mmapped(tmp_path):
    index, hexes = _saved(tmp_path)
    loaded = PDQIndex.load(tmp_path / "bank")
    assert isinstance(loaded._base.codes, np.memmap)
    assert len(loaded) == 500
    assert loaded.search(hexes[:50], 31) == index.search(hexes[:50], 31)
    assert loaded.search([hexes[1]])[0] == [(2, 0)]
    in_memory = PDQIndex.load(tmp_path / "bank", mmap=False, verify=True)
    assert not isinstance(in_memory._base.codes, np.memmap)
    assert in_memory.search(hexes[:50]) == index.search(hexes[:50])


def test_bank_threshold_is_saved(tmp_path):
    codes = random_codes(np.random.default_rng(8), 50)
    PDQIndex.from_codes(np.arange(50), codes, threshold=12).save(tmp_path / "b")
    assert PDQIndex.load(tmp_path / "b").threshold == 12
    assert PDQIndex.load(tmp_path / "b", threshold=31).threshold == 31


def test_change_log_replay(tmp_path):
    index, hexes = _saved(tmp_path)
    index.add([-1], ["0" * 64])
    index.remove([0, 2])
    log = tmp_path / "bank" / "gen-000001" / "changes.log"
    assert log.read_text().splitlines() == [f"+ -1 {'0' * 64}", "- 0", "- 2"]
    loaded = PDQIndex.load(tmp_path / "bank")
    assert len(loaded) == 499
    assert loaded.search(["0" * 64, hexes[0], hexes[1]], 0) == [[(-1, 0)], [], []]


def test_torn_last_record_is_ignored(tmp_path):
    index, _hexes = _saved(tmp_path)
    index.remove([0])
    log = tmp_path / "bank" / "gen-000001" / "changes.log"
    with log.open("a") as fh:
        fh.write("- 2")  # writer died mid-line
    loaded = PDQIndex.load(tmp_path / "bank")
    assert 0 not in loaded and 2 in loaded


def test_compaction_and_new_generation(tmp_path):
    index, hexes = _saved(tmp_path)
    index.remove([0])
    index.add([1001], [hexes[0]])
    index.compact()
    assert (tmp_path / "bank" / "CURRENT").read_text().strip() == "gen-000002"
    assert not (tmp_path / "bank" / "gen-000001").exists()
    loaded = PDQIndex.load(tmp_path / "bank")
    assert loaded.stats()["delta_entries"] == 0
    assert loaded.search([hexes[0]], 0) == [[(1001, 0)]]
    index.save(tmp_path / "bank")  # saving again to the same directory: next generation
    assert (tmp_path / "bank" / "CURRENT").read_text().strip() == "gen-000003"


def test_refresh_sees_changes_of_another_process(tmp_path):
    _, hexes = _saved(tmp_path)
    reader = PDQIndex.load(tmp_path / "bank")
    assert reader.search([hexes[5]], 0) == [[(10, 0)]]
    writer_code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {SRC!r})
        from anshim.matching import PDQIndex
        w = PDQIndex.load({str(tmp_path / "bank")!r})
        w.remove([10])
        w.add([5001], [{"1" * 64!r}])
        if sys.argv[1] == "compact":
            w.remove([12])
            w.compact()
    """)
    subprocess.run([sys.executable, "-c", writer_code, "log"], check=True)
    assert reader.refresh() == 2
    assert reader.search([hexes[5], "1" * 64], 0) == [[], [(5001, 0)]]
    assert reader.refresh() == 0
    subprocess.run([sys.executable, "-c", writer_code.replace("[10]", "[14]").replace(
        "5001", "5003"), "compact"], check=True)
    reader.refresh()
    assert reader.stats()["generation"] == 2
    assert reader.search([hexes[7], hexes[6], "1" * 64], 0) == [[], [], [(5001, 0), (5003, 0)]]


def test_refresh_interval_picks_up_changes_on_search(tmp_path):
    _, hexes = _saved(tmp_path)
    reader = PDQIndex.load(tmp_path / "bank", refresh_interval=0.0)
    writer = PDQIndex.load(tmp_path / "bank", durable=False)
    writer.remove([10])
    assert reader.search([hexes[5]], 0) == [[]]
    lazy = PDQIndex.load(tmp_path / "bank", refresh_interval=3600.0)
    writer.remove([12])
    assert lazy.search([hexes[6]], 0) == [[(12, 0)]]  # not yet refreshed
    lazy.refresh()
    assert lazy.search([hexes[6]], 0) == [[]]


def test_refresh_needs_attached_index():
    with pytest.raises(NotAttachedError):
        PDQIndex().refresh()


def test_missing_index(tmp_path):
    with pytest.raises(CorruptIndexError, match="CURRENT"):
        PDQIndex.load(tmp_path)


def test_truncated_array_is_corrupt(tmp_path):
    _saved(tmp_path)
    codes = tmp_path / "bank" / "gen-000001" / "codes.npy"
    codes.write_bytes(codes.read_bytes()[:1000])
    with pytest.raises(CorruptIndexError):
        PDQIndex.load(tmp_path / "bank")


@pytest.mark.parametrize(("name", "position"), [("rows.npy", -5), ("sketches.npy", -3)])
def test_flipped_byte_caught_by_verify(tmp_path, name, position):
    _saved(tmp_path)
    path = tmp_path / "bank" / "gen-000001" / name
    data = bytearray(path.read_bytes())
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError, match="checksum"):
        PDQIndex.load(tmp_path / "bank", verify=True)


def test_damaged_offsets_are_corrupt(tmp_path):
    _saved(tmp_path)
    path = tmp_path / "bank" / "gen-000001" / "offsets.npy"
    offsets = np.load(path)
    offsets[65536] = 3
    np.save(path, offsets)
    with pytest.raises(CorruptIndexError, match="posting"):
        PDQIndex.load(tmp_path / "bank")


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: m.update(format="other"),
        lambda m: m.update(count=m["count"] + 1),
        lambda m: m["layout"].update(radii=[0] * 16),
        lambda m: m.pop("files"),
    ],
)
def test_bad_manifest_is_corrupt(tmp_path, damage):
    _saved(tmp_path)
    path = tmp_path / "bank" / "gen-000001" / "manifest.json"
    manifest = json.loads(path.read_text())
    damage(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(CorruptIndexError):
        PDQIndex.load(tmp_path / "bank")


def test_garbage_manifest_and_log(tmp_path):
    _saved(tmp_path)
    gen = tmp_path / "bank" / "gen-000001"
    (gen / "changes.log").write_text("+ 1 nothex\n")
    with pytest.raises(CorruptIndexError, match="record 1"):
        PDQIndex.load(tmp_path / "bank")
    (gen / "changes.log").write_text("- 999999\n")
    with pytest.raises(CorruptIndexError, match="does not apply"):
        PDQIndex.load(tmp_path / "bank")
    (gen / "manifest.json").write_text("{not json")
    with pytest.raises(CorruptIndexError):
        PDQIndex.load(tmp_path / "bank")
    (tmp_path / "bank" / "CURRENT").write_text("elsewhere")
    with pytest.raises(CorruptIndexError):
        PDQIndex.load(tmp_path / "bank")


def _as_version_1(gen: Path) -> None:
    """Rewrite a generation as the format before sketches (version 1) wrote it."""
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["version"] = 1
    del manifest["files"]["sketches"]
    (gen / "sketches.npy").unlink()
    (gen / "manifest.json").write_text(json.dumps(manifest))


def test_version_1_snapshot_rebuilds_its_sketches(tmp_path):
    index, hexes = _saved(tmp_path)
    _as_version_1(tmp_path / "bank" / "gen-000001")
    loaded = PDQIndex.load(tmp_path / "bank", verify=True)
    assert np.array_equal(loaded._base.sketches, index._base.sketches)
    assert loaded.search(hexes[:50], 31) == index.search(hexes[:50], 31)


def test_sketches_of_the_wrong_shape_are_corrupt(tmp_path):
    _saved(tmp_path)
    path = tmp_path / "bank" / "gen-000001" / "sketches.npy"
    np.save(path, np.load(path)[:, :-1])
    manifest_path = tmp_path / "bank" / "gen-000001" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["sketches"]["shape"][1] -= 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CorruptIndexError, match="shapes"):
        PDQIndex.load(tmp_path / "bank")


def test_compact_snapshot_round_trip(tmp_path):
    codes = random_codes(np.random.default_rng(9), 400)
    index = PDQIndex.from_codes(np.arange(400), codes, sketches=False, durable=False)
    index.save(tmp_path / "bank")
    loaded = PDQIndex.load(tmp_path / "bank", verify=True)
    assert not loaded._base.has_sketches
    hexes = format_pdq_hex(codes[:40])
    assert loaded.search(hexes, 31) == index.search(hexes, 31)


def test_version_1_snapshot_of_a_large_bank_stays_compact(tmp_path, monkeypatch):
    from anshim.matching import snapshot

    index, hexes = _saved(tmp_path)
    _as_version_1(tmp_path / "bank" / "gen-000001")
    monkeypatch.setattr(snapshot, "sketches_for", lambda count: False)
    loaded = PDQIndex.load(tmp_path / "bank")
    assert not loaded._base.has_sketches
    assert loaded.search(hexes[:50], 31) == index.search(hexes[:50], 31)
