"""Crash safety of the on-disk index: torn change-log tails and killed snapshot builds.

The kill tests really ``SIGKILL`` a writer process (no simulated failures): whatever
moment it dies at, the index must load, and the next writer must be able to append.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from anshim.matching import PDQIndex, changelog, format_pdq_hex
from anshim.matching.snapshot import LOG

from .helpers import random_codes

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _bank(root: Path, n: int = 200) -> list[str]:
    codes = random_codes(np.random.default_rng(11), n)
    PDQIndex.from_codes(np.arange(n), codes, chunk_bits=16, durable=False).save(root)
    return format_pdq_hex(codes)


def _log(root: Path) -> Path:
    return next(root.glob("gen-*")) / LOG


def test_torn_tail_is_cut_before_the_next_append(tmp_path):
    hexes = _bank(tmp_path / "b")
    writer = PDQIndex.load(tmp_path / "b", durable=False)
    writer.remove([0])
    with _log(tmp_path / "b").open("ab") as fh:
        fh.write(b"+ 9999 abcdef")  # the writer died mid-record
    assert len(PDQIndex.load(tmp_path / "b")) == 199  # the torn record is skipped
    writer = PDQIndex.load(tmp_path / "b", durable=False)
    writer.add([5000], ["1" * 64])
    writer.remove([1])
    assert _log(tmp_path / "b").read_text().splitlines() == [
        "- 0", f"+ 5000 {'1' * 64}", "- 1"]
    loaded = PDQIndex.load(tmp_path / "b")
    assert len(loaded) == 199
    assert loaded.search(["1" * 64, hexes[1], hexes[2]], 0) == [[(5000, 0)], [], [(2, 0)]]


def test_cut_torn_tail_of_a_long_record_and_of_an_intact_log(tmp_path):
    log = tmp_path / "changes.log"
    log.write_bytes(b"- 1\n" + b"+ 7 " + b"a" * 200_000)  # tail longer than a block
    assert changelog.cut_torn_tail(log) == 200_004
    assert log.read_bytes() == b"- 1\n"
    assert changelog.cut_torn_tail(log) == 0
    log.write_bytes(b"+ 3 ab")  # a first record torn: nothing survives
    assert changelog.cut_torn_tail(log) == 6
    assert log.read_bytes() == b""
    assert changelog.cut_torn_tail(tmp_path / "missing.log") == 0


_WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {src!r})
    from pathlib import Path
    import numpy as np
    from anshim.matching import changelog
    # Records are built with numpy (fixed-width ids) so the process spends its time in
    # the write itself, where a kill tears a record, rather than formatting text.
    n, width = 100_000, 78  # "+ " 10 digits " " 64 hex "\\n"
    rng = np.random.default_rng(int(sys.argv[1]))
    rec = np.full((n, width), ord("a"), dtype=np.uint8)
    rec[:, 0], rec[:, 1], rec[:, 12], rec[:, 77] = ord("+"), 32, 32, 10
    rec[:, 13:77] = rng.integers(ord("a"), ord("f") + 1, (n, 64))
    place = 10 ** np.arange(9, -1, -1, dtype=np.int64)
    start = (int(sys.argv[1]) + 1) * 1_000_000_000
    print("ready", flush=True)
    while True:  # the same function PDQIndex.add appends with, until killed
        ids = np.arange(start, start + n, dtype=np.int64)
        rec[:, 2:12] = 48 + (ids[:, None] // place) % 10
        changelog.append(Path({log!r}), rec.tobytes(), durable=False)
        start += n
""")


def test_sigkill_mid_append_leaves_a_loadable_index(tmp_path):
    root = tmp_path / "b"
    _bank(root)
    code = _WRITER.format(src=SRC, log=str(_log(root)))
    torn = 0
    for attempt in range(4):
        proc = subprocess.Popen([sys.executable, "-c", code, str(attempt)],
                                stdout=subprocess.PIPE)
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(0.01 + 0.013 * attempt)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        data = _log(root).read_bytes()
        torn += bool(data) and not data.endswith(b"\n")
        loaded = PDQIndex.load(root)  # loads whatever the tail looks like
        held = len(loaded)
        # Every complete record counts, the torn one does not; the next writer appends.
        lines = data[: data.rfind(b"\n") + 1].splitlines()
        adds = sum(line.startswith(b"+") for line in lines)
        assert held == 200 + adds - (len(lines) - adds)
        writer = PDQIndex.load(root, durable=False)
        writer.remove([attempt])
        after = PDQIndex.load(root)
        assert len(after) == held - 1
        assert after.search([format_pdq_hex(np.zeros((1, 4), np.uint64))[0]], 0)
        assert _log(root).read_bytes().endswith(b"\n")
    # Not asserted (timing decides), but reported when a run never tore a record.
    print(f"{torn} of 4 kills tore a record")


_BUILDER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {src!r})
    import numpy as np
    from anshim.matching import PDQIndex
    rng = np.random.default_rng(5)
    n = 400_000
    index = PDQIndex.from_codes(np.arange(n) + 10_000, rng.integers(0, 2**64, (n, 4),
                                dtype=np.uint64), durable=False)
    print("built", flush=True)
    index.save({root!r})
""")


def test_sigkill_during_a_snapshot_build_keeps_the_old_generation(tmp_path):
    root = tmp_path / "b"
    hexes = _bank(root)
    PDQIndex.load(root, durable=False).remove([3])
    proc = subprocess.Popen([sys.executable, "-c", _BUILDER.format(src=SRC, root=str(root))],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"built\n"
    deadline = time.monotonic() + 30
    while not list(root.glob(".tmp-gen-*")) and time.monotonic() < deadline:
        time.sleep(0.001)  # wait until the new generation is being written
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    loaded = PDQIndex.load(root, verify=True)
    if loaded.stats()["generation"] == 1:  # killed before the switch: the old bank, whole
        assert len(loaded) == 199
        assert loaded.search([hexes[3], hexes[4]], 0) == [[], [(4, 0)]]
    else:  # killed after CURRENT moved: the new bank, whole
        assert len(loaded) == 400_000
    # The next writer can append and compact over the leftovers.
    writer = PDQIndex.load(root, durable=False)
    writer.add([-5], ["2" * 64])
    writer.compact()
    assert PDQIndex.load(root).search(["2" * 64], 0) == [[(-5, 0)]]
