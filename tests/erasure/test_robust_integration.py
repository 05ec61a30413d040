"""Issue 8 in the banks: robust registration (one entry, several fingerprints), matches that say
which strategy found them, sightings that record it, withdrawal of every variant.

Benign generated pictures only (blobs and stripes, built in memory with numpy/Pillow).
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image, ImageDraw, ImageOps

from anshim.erasure.matcher import match_bytes
from anshim.erasure.models import Bank, Fingerprint, FingerprintKind, Sighting
from anshim.erasure.services import register_image_robust, withdraw_entry
from anshim.erasure.sightings import Observation, record_sighting


def _picture(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A benign synthetic 'photo': smooth random blobs plus stripes (high PDQ quality)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), dtype=np.float32)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(15, 80)
        colour = rng.uniform(0, 255, 3)
        mask = np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r)))
        img = img * (1 - mask[..., None]) + colour * mask[..., None]
    for _ in range(4):
        fx, fy = rng.uniform(-0.15, 0.15, 2)
        img += rng.uniform(15, 35) * np.sin(fx * x + fy * y + rng.uniform(0, 6))[..., None]
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _encode(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _cropped(im: Image.Image, share: float = 0.05) -> Image.Image:
    w, h = im.size
    dx, dy = round(share * w), round(share * h)
    return im.crop((dx, dy, w - dx, h - dy))


def _screenshot(im: Image.Image) -> Image.Image:
    """The picture shown in a (made-up) app screen: status bar, account line, caption."""
    canvas = Image.new("RGB", (360, 760), (250, 250, 250))
    d = ImageDraw.Draw(canvas)
    d.rectangle((0, 0, 360, 24), fill=(30, 40, 120))
    d.text((8, 5), "9:41", fill=(255, 255, 255))
    d.ellipse((10, 40, 40, 70), fill=(200, 100, 50))
    d.text((50, 50), "some_account", fill=(20, 20, 20))
    canvas.paste(im.resize((360, 270)), (0, 90))
    for i in range(3):
        d.ellipse((10 + 30 * i, 370, 30 + 30 * i, 390), outline=(20, 20, 20), width=2)
    d.text((10, 400), "1234 likes  sunset walk with friends", fill=(20, 20, 20))
    return canvas


@pytest.fixture
def robust_entry(bank: Bank, make_case: Any) -> Any:
    case = make_case()
    return register_image_robust(bank, data=_encode(_picture(8)), case=case,
                                 source="staff_evidence", actor=None, label="robust")


def _found(data: bytes) -> list[tuple[int, str]]:
    return [(m.entry_id, m.strategy) for m in match_bytes(data)]


def test_robust_registration_is_one_entry_with_variants(robust_entry: Any) -> None:
    rows = Fingerprint.objects.filter(entry=robust_entry)
    kinds = set(rows.values_list("kind", flat=True))
    assert {FingerprintKind.MD5, FingerprintKind.SHA256, FingerprintKind.PDQ} <= kinds
    variants = set(rows.filter(kind=FingerprintKind.PDQ).values_list("variant", flat=True))
    assert "original" in variants
    assert sum(v.startswith("crop-") for v in variants) > 100
    assert rows.filter(variant__startswith="crop-", quality__lt=50).count() == 0
    assert rows.values("entry_id").distinct().count() == 1


def test_identical_file_is_found_by_sha256(robust_entry: Any) -> None:
    assert _found(_encode(_picture(8))) == [(robust_entry.pk, "sha256")]


def test_recompressed_copy_is_found_by_plain_pdq(robust_entry: Any) -> None:
    assert _found(_encode(_picture(8), "JPEG")) == [(robust_entry.pk, "pdq")]


def test_cropped_copy_is_found_by_the_crop_variants(robust_entry: Any) -> None:
    result = match_bytes(_encode(_cropped(_picture(8)), "JPEG"))
    assert [(m.entry_id, m.strategy) for m in result] == [(robust_entry.pk, "crop")]
    assert result[0].variant.startswith(("crop-", "trim-crop-"))


def test_letterboxed_copy_is_found_by_trim(robust_entry: Any) -> None:
    padded = ImageOps.expand(_picture(8), border=(0, 30, 0, 30), fill=(0, 0, 0))
    assert _found(_encode(padded, "JPEG")) == [(robust_entry.pk, "trim")]


def test_screenshot_is_found(robust_entry: Any) -> None:
    found = _found(_encode(_screenshot(_picture(8))))
    assert [e for e, _ in found] == [robust_entry.pk]
    assert found[0][1] in ("screenshot", "crop")


def test_rotated_copy_is_found_by_dihedral(robust_entry: Any) -> None:
    rotated = _picture(8).transpose(Image.Transpose.ROTATE_90)
    assert _found(_encode(rotated, "JPEG")) == [(robust_entry.pk, "dihedral")]


def test_unrelated_pictures_do_not_match(robust_entry: Any) -> None:
    for seed in (20, 21, 22):
        assert _found(_encode(_picture(seed), "JPEG")) == []
        assert _found(_encode(_cropped(_picture(seed)), "JPEG")) == []


def test_plain_registration_does_not_find_the_cropped_copy(bank: Bank) -> None:
    from anshim.erasure.services import register_fingerprints
    from anshim.fingerprint.engine import fingerprint_bytes

    register_fingerprints(bank, fingerprints=fingerprint_bytes(_encode(_picture(8))),
                          source="staff_evidence", actor=None)
    assert _found(_encode(_cropped(_picture(8)), "JPEG")) == []


def test_withdrawal_removes_every_variant(robust_entry: Any) -> None:
    assert _found(_encode(_cropped(_picture(8)), "JPEG"))  # the matcher is built and warm
    withdraw_entry(robust_entry.pk, actor=None, reason="test")
    assert not Fingerprint.objects.filter(entry_id=robust_entry.pk).exists()
    padded = ImageOps.expand(_picture(8), border=(0, 30, 0, 30), fill=(0, 0, 0))
    for copy in (_encode(_picture(8)), _encode(_picture(8), "JPEG"),
                 _encode(_cropped(_picture(8)), "JPEG"), _encode(padded, "JPEG"),
                 _encode(_screenshot(_picture(8)))):
        assert _found(copy) == []


def test_allow_list_still_suppresses_robust_matches(robust_entry: Any) -> None:
    from anshim.erasure.models import BankPurpose
    from anshim.erasure.services import create_bank

    allow = create_bank("allow", purpose=BankPurpose.ALLOW_LIST)
    cropped = _encode(_cropped(_picture(8)), "JPEG")
    register_image_robust(allow, data=cropped, source="staff_evidence", actor=None)
    assert _found(cropped) == []


def test_sighting_records_the_strategy(robust_entry: Any) -> None:
    match = match_bytes(_encode(_cropped(_picture(8)), "JPEG"))[0]
    obs = Observation(page_url="https://example.org/p", media_url="https://example.org/m.jpg")
    sighting, created = record_sighting(obs, match)
    assert created and sighting.strategy == "crop"
    assert Sighting.objects.get(pk=sighting.pk).strategy == "crop"


def test_scan_passes_the_strategy_through(robust_entry: Any) -> None:
    from anshim.erasure.matcher import robust_queries
    from anshim.erasure.scan import run_scan
    from anshim.fingerprint.engine import fingerprint_bytes

    padded = _encode(ImageOps.expand(_picture(8), border=(0, 30, 0, 30), fill=(0, 0, 0)),
                     "JPEG")
    rec = {"type": "media", "page_url": "https://example.org/p",
           "media_url": "https://example.org/m.jpg", **fingerprint_bytes(padded).to_dict(),
           "robust": [{"pdq": q.pdq, "quality": q.quality, "strategy": q.strategy}
                      for q in robust_queries(padded)]}
    report = run_scan([], records=[rec], fetch_html=False)
    assert [(m.match.entry_id, m.match.strategy) for m in report.matches] == [
        (robust_entry.pk, "trim")]
    assert report.matches[0].to_dict()["strategy"] == "trim"
    assert Sighting.objects.get(pk=report.matches[0].sighting_id).strategy == "trim"


def test_cli_add_is_robust_by_default_and_match_prints_strategy(
        bank: Bank, tmp_path: Any, capsys: Any) -> None:
    original = tmp_path / "victim.png"
    original.write_bytes(_encode(_picture(8)))
    call_command("bank", "add", "--bank", bank.name, str(original))
    entry_rows = Fingerprint.objects.filter(bank=bank)
    assert entry_rows.filter(variant__startswith="crop-").exists()
    assert entry_rows.values("entry_id").distinct().count() == 1
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(_encode(_cropped(_picture(8)), "JPEG"))
    capsys.readouterr()
    call_command("match", "--json", str(copy))
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert [(x["entry"], x["strategy"]) for x in lines] == [
        (entry_rows.first().entry_id, "crop")]


def test_cli_add_no_robust_registers_plain_rows(bank: Bank, tmp_path: Any) -> None:
    original = tmp_path / "victim.png"
    original.write_bytes(_encode(_picture(8)))
    call_command("bank", "add", "--no-robust", "--bank", bank.name, str(original))
    assert not Fingerprint.objects.filter(bank=bank, variant__startswith="crop-").exists()


def test_a_real_scan_finds_a_letterboxed_copy_by_trim(robust_entry: Any, tmp_path: Any) -> None:
    """End to end through the crawler: only the crawl process holds the bytes, so it is the
    one that computes the trim/screenshot query hashes."""
    from anshim.erasure.scan import run_scan

    from .workflow_support import FakeSite

    padded = _encode(ImageOps.expand(_picture(8), border=(0, 30, 0, 30), fill=(0, 0, 0)), "JPEG")
    with FakeSite(tmp_path / "site") as site:
        site.put_image("boxed.jpg", padded)
        site.put_image("other.png", _encode(_picture(21)))
        seed = site.put_page("index.html", ["boxed.jpg", "other.png"])
        report = run_scan([seed], depth=0, per_host_rate=100, fetch_html=False, workers=2,
                          allowed_private_hosts=["127.0.0.1"])
    found = [(m.match.entry_id, m.match.strategy, m.media_url.rsplit("/", 1)[-1])
             for m in report.matches]
    assert found == [(robust_entry.pk, "trim", "boxed.jpg")]
