"""The bank matcher on a snapshot (issue 15 item 3): the worker's task builds it from the
database, a new matcher maps it and replays only what changed after its checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from anshim.erasure import tasks
from anshim.erasure.matcher import BankMatcher
from anshim.erasure.models import Bank, EntrySource
from anshim.erasure.services import register_fingerprints, withdraw_entry
from anshim.fingerprint.engine import fingerprint_bytes
from anshim.matching.bank_snapshot import current_snapshot

from .media import picture_bytes

pytestmark = pytest.mark.django_db


def add(bank: Bank, seed: int) -> int:
    entry = register_fingerprints(bank, fingerprints=fingerprint_bytes(picture_bytes(seed)),
                                  source=EntrySource.STAFF_EVIDENCE, actor=None)
    return int(entry.pk)


def test_the_tick_builds_the_snapshot_and_matchers_map_it(bank: Bank, settings: object,
                                                          tmp_path: Path) -> None:
    settings.ANSHIM_MATCH_SNAPSHOT_DIR = tmp_path  # type: ignore[attr-defined]
    first = add(bank, 1)
    add(bank, 2)
    built = tasks.build_match_snapshot.call()  # what the worker runs after each erasure tick
    assert built["rows"] >= 2 and current_snapshot(tmp_path) is not None
    withdraw_entry(first, actor=None)
    third = add(bank, 3)
    matcher = BankMatcher()
    found = [[r.entry_id for r in rs] for rs in matcher.match_fingerprints(
        [fingerprint_bytes(picture_bytes(s, edit=4)) for s in (1, 2, 3)])]
    assert matcher.snapshot == current_snapshot(tmp_path)  # mapped, not read from the rows
    assert found[0] == [] and len(found[1]) == 1 and found[2] == [third]


def test_without_a_setting_nothing_is_built(bank: Bank, settings: object) -> None:
    settings.ANSHIM_MATCH_SNAPSHOT_DIR = None  # type: ignore[attr-defined]
    assert tasks.build_match_snapshot.call() == {"skipped": True}
    matcher = BankMatcher()
    matcher.refresh()
    assert matcher.snapshot is None


def test_a_running_matcher_switches_to_the_next_snapshot(bank: Bank, settings: object,
                                                         tmp_path: Path) -> None:
    settings.ANSHIM_MATCH_SNAPSHOT_DIR = tmp_path  # type: ignore[attr-defined]
    first = add(bank, 1)
    tasks.build_match_snapshot.call()
    matcher = BankMatcher()
    matcher.snapshot_interval = 0.0  # look for a newer snapshot before every batch
    queries = [fingerprint_bytes(picture_bytes(s, edit=4)) for s in (1, 2)]
    assert [[r.entry_id for r in rs] for rs in matcher.match_fingerprints(queries)] == [
        [first], []]
    mapped = matcher.snapshot
    tasks.build_match_snapshot.call()  # nothing changed: nothing written
    assert current_snapshot(tmp_path) == mapped
    second = add(bank, 2)
    withdraw_entry(first, actor=None)
    tasks.build_match_snapshot.call()
    assert current_snapshot(tmp_path) != mapped
    assert [[r.entry_id for r in rs] for rs in matcher.match_fingerprints(queries)] == [
        [], [second]]
    assert matcher.snapshot == current_snapshot(tmp_path)
