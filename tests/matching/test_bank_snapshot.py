"""Build once, map everywhere (issue 15 item 3): the matching core mapped from a snapshot tagged
with its change-log checkpoint answers exactly what a core read from the store answers, a new
snapshot is built while cores keep matching, and a withdrawal in one process is seen by another
real process within a second."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from anshim.matching.bank_snapshot import build_snapshot, current_snapshot, open_snapshot
from anshim.matching.core import FileQuery, MatchingCore
from anshim.matching.errors import CorruptIndexError
from anshim.matching.pdq_codes import hamming_matrix, parse_pdq_hex
from anshim.matching.sqlite_store import SqliteBankStore
from anshim.matching.store import BankLoad, MemoryBankStore
from anshim.matching.strategy import QueryHash

_rnd = random.Random(3)


def code() -> str:
    return f"{_rnd.getrandbits(256):064x}"


def near(h: str, bits: int) -> str:
    return f"{int(h, 16) ^ (((1 << bits) - 1) << (256 - bits)):064x}"


def q(h: str) -> FileQuery:
    return FileQuery(images=[QueryHash(h, 100, "original")])


def found(core: MatchingCore, hashes: list[str]) -> list[list[tuple[int, int, str]]]:
    return [[(m.entry_id, m.distance, m.strategy) for m in r]
            for r in core.match_files([q(h) for h in hashes])]


def test_a_mapped_core_answers_what_a_store_core_answers(tmp_path: Path) -> None:
    store = MemoryBankStore()
    bank, other = store.add_bank("victims"), store.add_bank("other", threshold=20)
    hashes = [code() for _ in range(300)]
    entries = [store.add_entry(bank if i % 3 else other, [("pdq", h, 100, "original")])
               for i, h in enumerate(hashes)]
    info = build_snapshot(store, tmp_path)
    assert info.seq == store.latest_seq() and info.rows == 300
    # Changes after the checkpoint: replayed by the mapped core, not in the snapshot.
    for e in entries[:40]:
        store.withdraw(e)
    late = [code() for _ in range(30)]
    for h in late:
        store.add_entry(bank, [("pdq", h, 100, "original")])
    third = store.add_bank("third")
    newest = code()
    store.add_entry(third, [("pdq", newest, 100, "original")])
    store.configure(other, threshold=10)
    mapped = MatchingCore(store, snapshot_root=tmp_path)
    plain = MatchingCore(store)
    queries = [near(h, _rnd.randint(0, 25)) for h in [*hashes, *late, newest]]
    assert found(mapped, queries) == found(plain, queries)
    assert mapped.snapshot == info.path and plain.snapshot is None
    assert sum(map(bool, found(mapped, queries))) > 200


def test_a_new_snapshot_is_built_while_cores_keep_matching_exactly(tmp_path: Path) -> None:
    store = MemoryBankStore()
    bank = store.add_bank("victims")
    hashes = [code() for _ in range(2000)]
    ids = [store.add_entry(bank, [("pdq", h, 100, "original")]) for h in hashes]
    build_snapshot(store, tmp_path)
    # Looking for a newer snapshot before every batch: it switches while the builder writes.
    core = MatchingCore(store, snapshot_root=tmp_path, snapshot_interval=0.0)
    first = current_snapshot(tmp_path)
    more = [code() for _ in range(500)]
    ids += [store.add_entry(bank, [("pdq", h, 100, "original")]) for h in more]
    every = [*hashes, *more]
    done = threading.Event()

    def rebuild() -> None:
        try:
            for _ in range(3):
                build_snapshot(store, tmp_path)
        finally:
            done.set()

    builder = threading.Thread(target=rebuild)
    builder.start()
    codes = parse_pdq_hex(every)
    rounds = 0
    while not done.is_set() or rounds == 0:
        sample = _rnd.sample(range(len(every)), 50)
        queries = [near(every[i], _rnd.randint(0, 31)) for i in sample]
        dist = hamming_matrix(parse_pdq_hex(queries), codes)
        got = [{e for e, _, _ in r} for r in found(core, queries)]
        want = [{ids[int(j)] for j in np.nonzero(row <= 31)[0]} for row in dist]
        assert got == want  # brute force
        rounds += 1
    builder.join()
    assert current_snapshot(tmp_path) != first
    assert len(list(tmp_path.glob("snap-*"))) == 2  # the newest and the one before
    fresh = MatchingCore(store, snapshot_root=tmp_path)
    copies = [near(h, 5) for h in every[::97]]
    assert found(fresh, copies) == found(core, copies)
    assert core.snapshot == fresh.snapshot == current_snapshot(tmp_path)
    snap = open_snapshot(tmp_path)
    assert snap is not None and snap.seq == store.latest_seq()


_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from anshim.matching.core import FileQuery, MatchingCore
    from anshim.matching.sqlite_store import SqliteBankStore
    from anshim.matching.strategy import QueryHash
    store = SqliteBankStore(sys.argv[1])
    core = MatchingCore(store, snapshot_root=Path(sys.argv[2]))
    query = FileQuery(images=[QueryHash(sys.argv[3], 100, "original")])
    core.match_files([query])
    print("ready", core.snapshot is not None, flush=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not core.match_files([query])[0]:
            print("gone", time.time(), flush=True)
            break
        time.sleep(0.01)
""")


@pytest.mark.slow
def test_a_withdrawal_is_seen_by_another_process_within_a_second(tmp_path: Path) -> None:
    db, snaps = tmp_path / "banks.sqlite3", tmp_path / "snapshots"
    store = SqliteBankStore(db)
    bank = store.add_bank("victims")
    target = code()
    [entry] = store.add_entries(bank, [([("pdq", target, 100, "original")], "", "", None, "")])
    store.add_entries(bank, [([("pdq", code(), 100, "original")], "", "", None, "")
                             for _ in range(500)])
    build_snapshot(store, snaps)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(db), str(snaps), near(target, 6)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().split() == ["ready", "True"]
        withdrawn_at = time.time()
        store.withdraw(entry)
        line = child.stdout.readline().split()
        assert line and line[0] == "gone", line
        assert float(line[1]) - withdrawn_at < 1.0
    finally:
        child.kill()
        child.wait()


def test_a_snapshot_of_another_store_is_not_used(tmp_path: Path) -> None:
    one, two = MemoryBankStore(), MemoryBankStore()
    for store in (one, two):
        bank = store.add_bank("victims")
        store.add_entry(bank, [("pdq", code(), 100, "original")])
    two.withdraw(2)
    two.add_entry(1, [("pdq", code(), 100, "original")])
    one.add_entry(1, [("pdq", code(), 100, "original")])
    assert one.latest_seq() == two.latest_seq() - 1
    one.add_bank("other")  # same length of log, other last record
    build_snapshot(one, tmp_path)
    core = MatchingCore(two, snapshot_root=tmp_path)
    core.refresh()
    assert core.snapshot is None  # read from its own store instead
    own = MatchingCore(one, snapshot_root=tmp_path)
    own.refresh()
    assert own.snapshot is not None


def test_the_dihedral_variant_names_are_the_engines() -> None:
    from anshim.fingerprint.types import DIHEDRAL_NAMES
    from anshim.matching.strategy import DIHEDRAL_VARIANTS

    assert frozenset(DIHEDRAL_NAMES[1:]) == DIHEDRAL_VARIANTS


def test_the_matching_core_loads_no_media_decoder() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys, anshim.matching.core, "
                          "anshim.matching.sqlite_store; print('anshim.fingerprint' in "
                          "sys.modules, 'PIL' in sys.modules)"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]


# --- running processes switch to a newer snapshot ---------------------------------------------


def brute_force(store: SqliteBankStore | MemoryBankStore, queries: list[str],
                threshold: int = 31) -> list[set[int]]:
    """The entries within `threshold` of each query, from every live row of the store."""
    loaded = store.load()
    rows = [r for rs in loaded.fingerprints.values() for r in rs]
    dist = hamming_matrix(parse_pdq_hex(queries), parse_pdq_hex([r.value for r in rows]))
    return [{rows[int(j)].entry_id for j in np.nonzero(row <= threshold)[0]} for row in dist]


def probes(hashes: list[str], k: int = 60) -> list[str]:
    """Near copies of registered hashes (0..31 bits off) and a few random codes."""
    return [near(h, _rnd.randint(0, 31)) for h in _rnd.sample(hashes, k)] + [code(), code()]


class CountingStore(MemoryBankStore):
    """The in-memory store, counting full reads (what a mapped core must not need)."""

    loads = 0

    def load(self, bank_ids: object = None) -> BankLoad:  # type: ignore[override]
        self.loads += 1
        return super().load(bank_ids)  # type: ignore[arg-type]


def test_a_running_core_switches_to_a_newer_snapshot_and_stays_exact(tmp_path: Path) -> None:
    store = CountingStore()
    bank = store.add_bank("victims")
    hashes = [code() for _ in range(600)]
    ids = [store.add_entry(bank, [("pdq", h, 100, "original")]) for h in hashes]
    first = build_snapshot(store, tmp_path).path
    core = MatchingCore(store, snapshot_root=tmp_path, snapshot_interval=0.0)
    sample = probes(hashes)
    assert [{e for e, _, _ in r} for r in found(core, sample)] == brute_force(store, sample)
    assert core.snapshot == first
    # Changes after the first checkpoint, then a second snapshot holding some of them and
    # changes after its own checkpoint: the core replays them into the new state before use.
    for e in ids[:50]:
        store.withdraw(e)
    more = [code() for _ in range(200)]
    for h in more[:150]:
        store.add_entry(bank, [("pdq", h, 100, "original")])
    found(core, probes(hashes))  # replayed onto the first snapshot
    second = build_snapshot(store, tmp_path).path
    for e in ids[50:60]:
        store.withdraw(e)
    for h in more[150:]:
        store.add_entry(bank, [("pdq", h, 100, "original")])
    loads = store.loads
    sample = probes([*hashes, *more])
    got = [{e for e, _, _ in r} for r in found(core, sample)]
    assert store.loads == loads  # mapped and replayed: no full read of the store
    assert got == brute_force(store, sample)
    assert core.snapshot == second and core.seq == store.latest_seq()
    # Deleted under it (the builder's cleanup): it keeps answering from its maps.
    import shutil

    shutil.rmtree(second)
    sample = probes([*hashes, *more])
    assert [{e for e, _, _ in r} for r in found(core, sample)] == brute_force(store, sample)
    third = build_snapshot(store, tmp_path).path
    assert [{e for e, _, _ in r} for r in found(core, sample)] == brute_force(store, sample)
    assert core.snapshot == third


def test_a_damaged_snapshot_is_not_used_and_matching_stays_exact(tmp_path: Path) -> None:
    store = MemoryBankStore()
    bank = store.add_bank("victims")
    hashes = [code() for _ in range(300)]
    for h in hashes:
        store.add_entry(bank, [("pdq", h, 100, "original")])
    good = build_snapshot(store, tmp_path).path
    core = MatchingCore(store, snapshot_root=tmp_path, snapshot_interval=0.0)
    core.refresh()
    late = code()
    store.add_entry(bank, [("pdq", late, 100, "original")])
    broken = build_snapshot(store, tmp_path).path
    (broken / "bank-1" / "fps.npy").write_bytes(b"not an array")
    sample = [*probes(hashes), late]
    assert [{e for e, _, _ in r} for r in found(core, sample)] == brute_force(store, sample)
    assert core.snapshot == good  # kept its maps, replayed the change instead
    fresh = MatchingCore(store, snapshot_root=tmp_path)
    assert [{e for e, _, _ in r} for r in found(fresh, sample)] == brute_force(store, sample)
    assert fresh.snapshot is None  # read from the store
    with pytest.raises(CorruptIndexError):
        open_snapshot(tmp_path)


_SWITCHING_CHILD = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from anshim.matching.core import FileQuery, MatchingCore
    from anshim.matching.sqlite_store import SqliteBankStore
    from anshim.matching.strategy import QueryHash
    store = SqliteBankStore(sys.argv[1])
    core = MatchingCore(store, snapshot_root=Path(sys.argv[2]), snapshot_interval=0.2)
    def q(h):
        return FileQuery(images=[QueryHash(h, 100, "original")])
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "match":  # wait for a snapshot other than the one named, then answer
            deadline = time.monotonic() + 10
            while core.snapshot is not None and core.snapshot.name == args[0] and (
                    time.monotonic() < deadline):
                core.refresh()
                time.sleep(0.05)
            got = [sorted(m.entry_id for m in r) for r in core.match_files([q(h) for h in
                                                                             args[1:]])]
            print(json.dumps([core.snapshot.name if core.snapshot else None, got]),
                  flush=True)
        elif cmd == "watch":  # until the query no longer matches
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if not core.match_files([q(args[0])])[0]:
                    print("gone", time.time(), core.snapshot.name, flush=True)
                    break
                time.sleep(0.005)
""")


@pytest.mark.slow
def test_a_running_process_switches_to_a_newer_snapshot(tmp_path: Path) -> None:
    import json
    import shutil

    db, snaps = tmp_path / "banks.sqlite3", tmp_path / "snapshots"
    store = SqliteBankStore(db)
    bank = store.add_bank("victims")
    hashes = [code() for _ in range(800)]
    ids = store.add_entries(bank, [([("pdq", h, 100, "original")], "", "", None, "")
                                   for h in hashes])
    first = build_snapshot(store, snaps).path
    child = subprocess.Popen([sys.executable, "-c", _SWITCHING_CHILD, str(db), str(snaps)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(cmd: str, *args: str) -> tuple[str, list[list[int]]]:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(" ".join([cmd, *args]) + "\n")
        child.stdin.flush()
        name, got = json.loads(child.stdout.readline())
        return str(name), got

    def exact(not_named: str, every: list[str]) -> str:
        sample = probes(every)
        name, got = ask("match", not_named, *sample)
        assert [set(r) for r in got] == brute_force(store, sample)
        return name

    try:
        assert exact("-", hashes) == first.name
        more = [code() for _ in range(300)]
        new_ids = store.add_entries(bank, [([("pdq", h, 100, "original")], "", "", None, "")
                                           for h in more])
        for e in ids[:40]:
            store.withdraw(e)
        assert exact("-", [*hashes, *more]) == first.name  # replayed, same maps
        second = build_snapshot(store, snaps).path
        store.withdraw(new_ids[0])  # after the new checkpoint
        assert exact(first.name, [*hashes, *more]) == second.name  # switched, exact
        shutil.rmtree(second)  # cleanup under a process that maps it: it keeps answering
        assert exact("-", [*hashes, *more]) == second.name
        third = build_snapshot(store, snaps).path
        assert sorted(snaps.glob("snap-*")) == [first, third]  # the newest two are kept
        assert exact(second.name, [*hashes, *more]) == third.name
        # A withdrawal is still seen within a second.
        target = more[-1]
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(f"watch {near(target, 4)}\n")
        child.stdin.flush()
        time.sleep(0.3)
        withdrawn_at = time.time()
        store.withdraw(new_ids[-1])
        line = child.stdout.readline().split()
        assert line[:1] == ["gone"], line
        assert float(line[1]) - withdrawn_at < 1.0
    finally:
        child.kill()
        child.wait()


def test_an_unchanged_store_is_not_written_again(tmp_path: Path) -> None:
    store = MemoryBankStore()
    bank = store.add_bank("victims")
    store.add_entry(bank, [("pdq", code(), 100, "original")])
    first = build_snapshot(store, tmp_path)
    again = build_snapshot(store, tmp_path)
    assert first.written and not again.written and again.path == first.path
    assert (again.seq, again.rows, again.banks) == (first.seq, first.rows, first.banks)
    assert build_snapshot(store, tmp_path, force=True).path != first.path
    store.add_entry(bank, [("pdq", code(), 100, "original")])
    newer = build_snapshot(store, tmp_path)
    assert newer.written and newer.seq == store.latest_seq()
    other = MemoryBankStore()  # another store at the same position: written
    other.add_bank("x")
    for _ in range(store.latest_seq() - 1):
        other.add_bank("y")
    assert other.latest_seq() == store.latest_seq()
    assert build_snapshot(other, tmp_path).written
