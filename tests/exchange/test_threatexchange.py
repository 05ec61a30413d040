"""Interop: threatexchange's own CLI against a live Anshim server.

The CLI loads our extension (and threatexchange's vpdq extension), is configured with a
collaboration for the live server by configuration only, and runs its real commands: `fetch`
(fetch_iter + its on-disk naive merge), `match photo`, `match video` (its own PDQ and vPDQ
hashers and indexes on the conformance media), `label` (report_opinion). Its stored dataset must
equal our current fingerprints after a first sync, after withdrawals, and after a share change
(which needs no manual step).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("threatexchange")

from threatexchange.cli.main import inner_main

from exchange.conftest import random_md5, random_pdq

pytestmark = [pytest.mark.slow, pytest.mark.interop]

TYPE_NAMES = {"pdq": "pdq", "md5": "video_md5", "sha256": "video_sha256"}
CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"
PHOTOS = CONFORMANCE / "pdq" / "bridge-mods"
VIDEOS = CONFORMANCE / "vpdq" / "videos"


def tx(state_dir: Any, *args: str) -> None:
    inner_main(list(args), state_dir=state_dir)


def tx_out(state_dir: Any, capsys: Any, *args: str) -> str:
    capsys.readouterr()
    tx(state_dir, *args)
    return str(capsys.readouterr().out)


def threatexchange_dataset(state_dir: Any, capsys: Any) -> set[tuple[str, str]]:
    out = tx_out(state_dir, capsys, "dataset", "--print-signals")
    lines = [line.split() for line in out.splitlines() if line.strip()]
    return {(parts[0], parts[1]) for parts in lines}


def ours(*banks: Any) -> set[tuple[str, str]]:
    from anshim.erasure.models import Fingerprint

    return {(TYPE_NAMES[kind], value) for kind, value in Fingerprint.objects.filter(
        entry__bank__in=banks, kind__in=list(TYPE_NAMES)).values_list("kind", "value")}


def configure(state_dir: Any, url: str, monkeypatch: Any, token: str, **extra: str) -> None:
    monkeypatch.setenv("TX_ANSHIM_TOKEN", token)
    tx(state_dir, "config", "extensions", "add", "anshim_threatexchange")
    options = [item for key, value in extra.items()
               for item in (f"--{key.replace('_', '-')}", value)]
    tx(state_dir, "config", "collab", "edit", "anshim", "--create", "--base-url", url + "/",
       *options, "anshim-live")


def test_threatexchange_fetch_ends_with_exactly_our_fingerprints(
        committed_audit, live_server, tmp_path, monkeypatch, capsys, make_bank, add_entry,
        withdraw, make_partner):
    from anshim.exchange import services

    rng = random.Random(11)
    shared, private, later = make_bank("shared"), make_bank("private"), make_bank("later")
    entries = [add_entry(shared, pdq=random_pdq(rng), md5=random_md5(rng)) for _ in range(30)]
    add_entry(private)
    add_entry(later)
    withdraw(*entries[:5])  # withdrawn before the platform ever synced
    partner, token = make_partner(shared)

    state_dir = tmp_path / "tx"
    configure(state_dir, live_server.url, monkeypatch, token)

    tx(state_dir, "fetch")
    first = threatexchange_dataset(state_dir, capsys)
    assert first == ours(shared)
    assert len(first) == 50  # 25 entries x (PDQ + MD5)

    # Changes after the first sync: more additions, withdrawals of synced entries, and an
    # entry added and withdrawn between two fetches. The next fetch resumes from its checkpoint.
    more = [add_entry(shared) for _ in range(4)]
    withdraw(entries[10], entries[11], more[0])
    tx(state_dir, "fetch")
    assert threatexchange_dataset(state_dir, capsys) == ours(shared)

    # A share change: no `fetch --clear`, no 409; the next fetch follows it.
    services.share_banks(partner, ["later"])
    tx(state_dir, "fetch")
    assert threatexchange_dataset(state_dir, capsys) == ours(shared, later)
    services.unshare_banks(partner, ["later"])
    tx(state_dir, "fetch")
    assert threatexchange_dataset(state_dir, capsys) == ours(shared)

    # Everything withdrawn: the platform ends with nothing.
    from anshim.erasure.models import BankEntry

    withdraw(*BankEntry.objects.filter(bank=shared))
    tx(state_dir, "fetch")
    assert threatexchange_dataset(state_dir, capsys) == set() == ours(shared)


def _register_file(bank: Any, path: Path) -> Any:
    from anshim.erasure.services import register_fingerprints
    from anshim.fingerprint import fingerprint_file

    return register_fingerprints(bank, fingerprints=fingerprint_file(str(path)),
                                 source="import", actor=None)


def test_threatexchange_matches_photos_and_videos_and_labels(
        committed_audit, live_server, tmp_path, monkeypatch, capsys, make_bank, make_partner):
    """Issue 18: a partner running threatexchange matches a lightly edited photo and a
    re-encoded video (its own vPDQ matcher), not an unrelated photo; an allow-listed photo
    is a NEGATIVE_CLASS match, never a positive; `label` reaches our feedback."""
    from anshim.exchange.models import PartnerFeedback

    victims, allow = make_bank("victims"), make_bank("known-fp", purpose="allow_list")
    photo = _register_file(victims, PHOTOS / "aaa-orig.jpg")
    _register_file(victims, VIDEOS / "chair-orig-22-sd-bar.mp4")
    _register_file(allow, CONFORMANCE / "pdq" / "reg-test-input" / "pen-and-coaster.png")
    _, token = make_partner(victims, allow)
    state_dir = tmp_path / "tx"
    configure(state_dir, live_server.url, monkeypatch, token, allow_lists="NEGATIVE")
    tx(state_dir, "config", "extensions", "add", "threatexchange.extensions.vpdq.manifest")
    tx(state_dir, "fetch")

    edited = tx_out(state_dir, capsys, "match", "photo", str(PHOTOS / "blur-a-little.jpg"))
    assert "anshim-live" in edited and "POSITIVE_CLASS" in edited, edited
    assert tx_out(state_dir, capsys, "match", "photo",
                  str(CONFORMANCE / "pdq" / "reg-test-input" / "labelme-subset" / "q0122.jpg"),
                  ).strip() == ""
    negative = tx_out(state_dir, capsys, "match", "photo",
                      str(CONFORMANCE / "pdq" / "reg-test-input" / "pen-and-coaster.png"))
    assert "NEGATIVE_CLASS" in negative and "POSITIVE_CLASS" not in negative, negative
    video = tx_out(state_dir, capsys, "match", "video", str(VIDEOS / "chair-22-sd-grey-bar.mp4"))
    assert video.startswith("vpdq") and "POSITIVE_CLASS" in video, video
    assert tx_out(state_dir, capsys, "match", "video",
                  str(VIDEOS / "doorknob-hd-no-bar.mp4")).strip() == ""

    pdq = next(v for k, v in photo.fingerprints.values_list("kind", "value") if k == "pdq")
    hash_file = tmp_path / "hash.txt"
    hash_file.write_text(pdq)
    tx(state_dir, "label", "-l", "blocked-by-us", "--as-hash", "pdq", "anshim-live", "photo",
       str(hash_file))
    item = PartnerFeedback.objects.get()
    assert (item.action, item.entry_id, item.hash_value, item.reason) == (
        "confirmed", photo.pk, pdq, "blocked-by-us")


def test_the_hash_list_loads_into_a_localfile_collaboration(
        make_bank, add_entry, make_partner, partner_client, tmp_path, capsys):
    """Issue 18 item 7: threatexchange's plain `signal_type signal` file, no code needed."""
    bank, allow = make_bank("victims"), make_bank("fp", purpose="allow_list")
    entries = [add_entry(bank) for _ in range(3)]
    add_entry(allow)
    _, token = make_partner(bank, allow)
    response = partner_client(token).get("/hashes")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = b"".join(response.streaming_content).decode()
    path = tmp_path / "anshim.txt"
    path.write_text(body)
    state_dir = tmp_path / "tx"
    tx(state_dir, "config", "collab", "edit", "local_file", "--create", "--filename", str(path),
       "anshim-file")
    tx(state_dir, "fetch")
    assert threatexchange_dataset(state_dir, capsys) == ours(bank)
    assert len(entries) * 2 == len(body.splitlines())
    assert json.dumps(body)  # plain text
