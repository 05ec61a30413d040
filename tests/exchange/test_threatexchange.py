"""Interop: threatexchange's own CLI (`threatexchange fetch`) against a live Anshim server.

The CLI loads our extension, is configured with a collaboration for the live server, and runs
its real fetch loop (fetch_iter + its on-disk naive merge). Its stored dataset must equal our
current fingerprints, withdrawals included, both after a first sync and after an incremental one.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

pytest.importorskip("threatexchange")

from threatexchange.cli.main import inner_main

from exchange.conftest import random_md5, random_pdq

pytestmark = pytest.mark.slow

TYPE_NAMES = {"pdq": "pdq", "md5": "video_md5", "sha256": "video_sha256"}


def tx(state_dir: Any, *args: str) -> None:
    inner_main(list(args), state_dir=state_dir)


def threatexchange_dataset(state_dir: Any, capsys: Any) -> set[tuple[str, str]]:
    capsys.readouterr()
    tx(state_dir, "dataset", "--print-signals")
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()]
    return {(parts[0], parts[1]) for parts in lines}


def ours(*banks: Any) -> set[tuple[str, str]]:
    from anshim.erasure.models import Fingerprint

    return {(TYPE_NAMES[kind], value) for kind, value in Fingerprint.objects.filter(
        entry__bank__in=banks, kind__in=list(TYPE_NAMES)).values_list("kind", "value")}


def test_threatexchange_fetch_ends_with_exactly_our_fingerprints(
        committed_audit, live_server, tmp_path, monkeypatch, capsys, make_bank, add_entry,
        withdraw, make_partner):
    rng = random.Random(11)
    shared, private = make_bank("shared"), make_bank("private")
    entries = [add_entry(shared, pdq=random_pdq(rng), md5=random_md5(rng)) for _ in range(30)]
    add_entry(private)
    withdraw(*entries[:5])  # withdrawn before the platform ever synced
    _, token = make_partner(shared)

    state_dir = tmp_path / "tx"
    monkeypatch.setenv("TX_ANSHIM_TOKEN", token)
    tx(state_dir, "config", "extensions", "add", "anshim_threatexchange")
    tx(state_dir, "config", "collab", "edit", "anshim", "--create", "--json", json.dumps(
        {"name": "anshim-live", "base_url": live_server.url + "/"}))

    tx(state_dir, "fetch")
    first = threatexchange_dataset(state_dir, capsys)
    assert first == ours(shared)
    assert len(first) == 50  # 25 entries x (PDQ + MD5)

    # Changes after the first sync: more additions, withdrawals of synced entries, and an
    # entry added and withdrawn between two fetches. The next fetch resumes from its checkpoint.
    more = [add_entry(shared) for _ in range(4)]
    withdraw(entries[10], entries[11], more[0])
    tx(state_dir, "fetch")
    second = threatexchange_dataset(state_dir, capsys)
    assert second == ours(shared)
    assert not any(value in str(second) for value in ("private",))

    # Everything withdrawn: the platform ends with nothing.
    from anshim.erasure.models import BankEntry

    withdraw(*BankEntry.objects.filter(bank=shared))
    tx(state_dir, "fetch")
    assert threatexchange_dataset(state_dir, capsys) == set() == ours(shared)
