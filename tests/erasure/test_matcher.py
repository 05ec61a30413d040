"""The bank matcher: exact and perceptual matches, withdrawal seen at once in every "process",
allow-list suppression, per-bank thresholds, video."""

from __future__ import annotations

import pytest

from anshim.erasure import services
from anshim.erasure.matcher import BankMatcher, get_matcher, match_bytes
from anshim.erasure.models import Bank, BankPurpose, EntrySource
from anshim.erasure.services import register_fingerprints, withdraw_entry
from anshim.fingerprint.engine import fingerprint_bytes

from .media import animation_bytes, picture_bytes

pytestmark = pytest.mark.django_db


def add_picture(bank: Bank, seed: int, *, case=None, **kw):
    fp = fingerprint_bytes(picture_bytes(seed, **kw))
    return register_fingerprints(bank, case=case, fingerprints=fp,
                                 source=EntrySource.STAFF_EVIDENCE, actor=None)


def test_identical_file_matches_exactly_with_the_case_code(bank: Bank, make_case) -> None:
    case = make_case()
    entry = add_picture(bank, 1, case=case)
    [result] = match_bytes(picture_bytes(1))
    assert (result.bank, result.entry_id, result.case_code) == ("victims", entry.pk, case.code)
    assert result.kind == "sha256" and result.distance == 0


def test_near_duplicate_matches_by_pdq(bank: Bank) -> None:
    entry = add_picture(bank, 1)
    [result] = match_bytes(picture_bytes(1, edit=4))
    assert result.entry_id == entry.pk and result.kind == "pdq"
    assert 0 < result.distance <= bank.threshold
    assert match_bytes(picture_bytes(2)) == []


def test_other_format_of_the_same_picture_matches(bank: Bank) -> None:
    entry = add_picture(bank, 3)
    [result] = match_bytes(picture_bytes(3, fmt="JPEG"))
    assert result.entry_id == entry.pk and result.kind == "pdq"


def test_withdrawn_hash_is_not_matched_by_the_very_next_query(bank: Bank) -> None:
    entry = add_picture(bank, 1)
    assert match_bytes(picture_bytes(1, edit=4))
    withdraw_entry(entry.pk, actor=None)
    assert match_bytes(picture_bytes(1, edit=4)) == []
    assert match_bytes(picture_bytes(1)) == []


def test_another_process_sees_the_withdrawal_on_its_next_query(bank: Bank) -> None:
    entry = add_picture(bank, 1)
    query = fingerprint_bytes(picture_bytes(1, edit=4))
    # A second matcher stands for a worker process: built before the withdrawal, and with a
    # poll interval so long that it will not poll the change log again.
    other = BankMatcher(poll_interval=3600)
    assert other.match_fingerprint(query)
    withdraw_entry(entry.pk, actor=None)
    assert other.match_fingerprint(query) == []


def test_another_process_polls_and_forgets_the_hash(bank: Bank) -> None:
    entry = add_picture(bank, 1)
    other = BankMatcher()
    query = fingerprint_bytes(picture_bytes(1, edit=4))
    assert other.match_fingerprint(query)
    withdraw_entry(entry.pk, actor=None)
    assert other.match_fingerprint(query) == []
    state = other._banks[bank.pk]  # the index itself no longer holds the fingerprints
    assert len(state.pdq) == 0


def test_running_matcher_picks_up_additions(bank: Bank) -> None:
    matcher = BankMatcher()
    query = fingerprint_bytes(picture_bytes(5, edit=3))
    assert matcher.match_fingerprint(query) == []
    entry = add_picture(bank, 5)
    [result] = matcher.match_fingerprint(query)
    assert result.entry_id == entry.pk


def test_matcher_built_after_changes_replays_nothing_twice(bank: Bank) -> None:
    a = add_picture(bank, 1)
    matcher = BankMatcher()
    matcher.refresh()
    b = add_picture(bank, 2)
    withdraw_entry(a.pk, actor=None)
    add_picture(bank, 3)
    assert matcher.match_fingerprints([fingerprint_bytes(picture_bytes(s, edit=3))
                                       for s in (1, 2, 3)])[0] == []
    state = matcher._banks[bank.pk]
    assert len(state.pdq) == 2
    assert matcher.match_fingerprint(fingerprint_bytes(picture_bytes(2)))[0].entry_id == b.pk


def test_allow_list_suppresses_a_known_false_positive(bank: Bank) -> None:
    add_picture(bank, 1)
    allow = services.create_bank("false-positives", purpose=BankPurpose.ALLOW_LIST)
    assert match_bytes(picture_bytes(1, edit=4))
    add_picture(allow, 1, edit=4)
    assert match_bytes(picture_bytes(1, edit=4)) == []
    # Near the allow-listed picture too.
    assert match_bytes(picture_bytes(1, edit=4, fmt="JPEG")) == []
    # Other pictures still match.
    add_picture(bank, 2)
    assert match_bytes(picture_bytes(2, edit=4))


def test_disabled_allow_list_no_longer_suppresses(bank: Bank) -> None:
    add_picture(bank, 1)
    allow = services.create_bank("false-positives", purpose=BankPurpose.ALLOW_LIST)
    add_picture(allow, 1, edit=4)
    assert match_bytes(picture_bytes(1, edit=4)) == []
    services.update_bank(allow, enabled=False)
    assert match_bytes(picture_bytes(1, edit=4))


def test_threshold_is_per_bank(bank: Bank) -> None:
    strict = services.create_bank("strict", threshold=2)
    add_picture(bank, 1)
    add_picture(strict, 1)
    results = match_bytes(picture_bytes(1, edit=4))
    assert [r.bank for r in results] == ["victims"]
    services.update_bank(strict, threshold=40)
    assert sorted(r.bank for r in match_bytes(picture_bytes(1, edit=4))) == ["strict",
                                                                                "victims"]
    services.update_bank(bank, threshold=0)
    assert [r.bank for r in match_bytes(picture_bytes(1, edit=4))] == ["strict"]


def test_threshold_lowered_in_another_process_applies_at_once(bank: Bank) -> None:
    add_picture(bank, 1)
    other = BankMatcher(poll_interval=3600)
    query = fingerprint_bytes(picture_bytes(1, edit=4))
    assert other.match_fingerprint(query)
    Bank.objects.filter(pk=bank.pk).update(threshold=1)  # even without a change record
    assert other.match_fingerprint(query) == []


def test_disabled_bank_does_not_match(bank: Bank) -> None:
    add_picture(bank, 1)
    services.update_bank(bank, enabled=False)
    assert match_bytes(picture_bytes(1)) == []
    services.update_bank(bank, enabled=True)
    assert match_bytes(picture_bytes(1, edit=4))


def test_batch_returns_one_list_per_query(bank: Bank) -> None:
    e1, e2 = add_picture(bank, 1), add_picture(bank, 2)
    fps = [fingerprint_bytes(picture_bytes(s, edit=3)) for s in (2, 9, 1)]
    results = get_matcher().match_fingerprints(fps)
    assert [[r.entry_id for r in rs] for rs in results] == [[e2.pk], [], [e1.pk]]


def test_video_matches_banked_video(bank: Bank) -> None:
    video = fingerprint_bytes(animation_bytes([11, 12, 13, 14]))
    assert video.kind == "video" and len(video.frames) >= 4
    entry = register_fingerprints(bank, fingerprints=video, source=EntrySource.STAFF_EVIDENCE,
                                  actor=None)
    # Same frames re-encoded as a shorter clip: every query frame matches.
    [result] = match_bytes(animation_bytes([12, 13]))
    assert result.entry_id == entry.pk and result.kind == "vpdq"
    assert result.query_percent == 100.0 and result.compared_percent == 50.0
    assert match_bytes(animation_bytes([21, 22, 23])) == []


def test_banked_picture_found_inside_a_video(bank: Bank) -> None:
    from PIL import Image

    entry = register_fingerprints(
        bank, fingerprints=fingerprint_bytes(animation_bytes([31, 32])),
        source=EntrySource.STAFF_EVIDENCE, actor=None)
    import io

    # A banked still picture is found when it appears as a frame of a queried video.
    frame = Image.open(io.BytesIO(animation_bytes([31])))
    buf = io.BytesIO()
    frame.convert("L").save(buf, "PNG")
    picture = register_fingerprints(bank, fingerprints=fingerprint_bytes(buf.getvalue()),
                                    source=EntrySource.STAFF_EVIDENCE, actor=None)
    results = match_bytes(animation_bytes([40, 31, 41]))
    assert {(r.entry_id, r.kind) for r in results} >= {(picture.pk, "pdq")}
    assert entry.pk not in {r.entry_id for r in results}  # 1 of 3 query frames, 1 of 2 banked


# --- bare PDQ hashes (the partner lookup's path) ---------------------------------------------


def test_bare_hashes_match_like_the_file_they_came_from(bank: Bank, make_case) -> None:
    case = make_case()
    entry = add_picture(bank, 1, case=case)
    add_picture(bank, 2)
    near = fingerprint_bytes(picture_bytes(1, edit=4))
    [from_file] = [r for r in get_matcher().match_fingerprint(near) if r.kind == "pdq"]
    [[from_hash], none] = get_matcher().match_pdq_hashes(
        [f"  {near.pdq.upper()} ", fingerprint_bytes(picture_bytes(9)).pdq])
    assert from_hash == from_file
    assert (from_hash.entry_id, from_hash.case_code, from_hash.strategy) == (
        entry.pk, case.code, "pdq")
    assert none == []


def test_bare_hash_of_a_banked_rotation_is_reported_as_dihedral(bank: Bank) -> None:
    fp = fingerprint_bytes(picture_bytes(4), dihedral=True)
    entry = register_fingerprints(bank, case=None, fingerprints=fp,
                                  source=EntrySource.STAFF_EVIDENCE, actor=None)
    assert fp.dihedral
    turned = fp.dihedral["rotate90"]
    [[hit]] = get_matcher().match_pdq_hashes([turned])
    assert (hit.entry_id, hit.distance, hit.strategy, hit.variant) == (
        entry.pk, 0, "dihedral", "rotate90")


def test_bare_hashes_respect_bank_ids_thresholds_and_max_distance(bank: Bank) -> None:
    other = services.create_bank("other", threshold=3)
    a, b = add_picture(bank, 1), add_picture(other, 1)
    query = fingerprint_bytes(picture_bytes(1, edit=4)).pdq
    [found] = get_matcher().match_pdq_hashes([query])
    assert {r.entry_id for r in found} == {a.pk}  # beyond `other`'s threshold of 3
    [found] = get_matcher().match_pdq_hashes([fingerprint_bytes(picture_bytes(1)).pdq])
    assert {r.entry_id for r in found} == {a.pk, b.pk}
    [found] = get_matcher().match_pdq_hashes([fingerprint_bytes(picture_bytes(1)).pdq],
                                             bank_ids={other.pk})
    assert [r.entry_id for r in found] == [b.pk]
    distance = get_matcher().match_pdq_hashes([query])[0][0].distance
    assert get_matcher().match_pdq_hashes([query], max_distance=distance - 1) == [[]]


def test_bare_hashes_see_a_withdrawal_and_an_allow_list_at_once(bank: Bank) -> None:
    entry = add_picture(bank, 1)
    kept = add_picture(bank, 2)
    other = BankMatcher(poll_interval=3600)  # another process that will not poll again
    queries = [fingerprint_bytes(picture_bytes(s, edit=4)).pdq for s in (1, 2)]
    assert [len(r) for r in other.match_pdq_hashes(queries)] == [1, 1]
    withdraw_entry(entry.pk, actor=None)
    assert [[r.entry_id for r in rs] for rs in other.match_pdq_hashes(queries)] == [[], [kept.pk]]
    allow = services.create_bank("false-positives", purpose=BankPurpose.ALLOW_LIST)
    add_picture(allow, 2, edit=4)
    assert get_matcher().match_pdq_hashes(queries) == [[], []]


def test_malformed_bare_hash_is_a_value_error_naming_it(bank: Bank) -> None:
    from anshim.matching import MalformedHashError

    good = fingerprint_bytes(picture_bytes(1)).pdq
    with pytest.raises(MalformedHashError, match="hash #1"):
        get_matcher().match_pdq_hashes([good, "zz" * 32])
    with pytest.raises(ValueError, match="hash #0"):
        get_matcher().match_pdq_hashes(["abc"])


def test_many_hits_are_rechecked_in_pages(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    from anshim.erasure import bank_store

    monkeypatch.setattr(bank_store, "RECHECK_PAGE", 2)
    entries = [add_picture(bank, s) for s in (1, 2, 3, 4, 5)]
    queries = [fingerprint_bytes(picture_bytes(s, edit=3)).pdq for s in (1, 2, 3, 4, 5)]
    found = get_matcher().match_pdq_hashes(queries)
    assert [[r.entry_id for r in rs] for rs in found] == [[e.pk] for e in entries]
