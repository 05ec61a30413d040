"""Robust registration/query strategies: border trim, screenshot detection, crop grid, strategy
recorded on matches, no false match between different pictures. Small generated images only."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageOps

from anshim.fingerprint.robust_regions import (
    Box,
    crop_grid,
    find_embedded_picture,
    trim_borders,
)
from anshim.fingerprint.robust_strategy import (
    QueryHash,
    RegisteredHash,
    RobustBank,
    StrategyMatch,
    load_luma,
    match_with_strategies,
    query_fingerprints,
    registration_fingerprints,
    strategy_of,
)


def _picture(seed: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A benign synthetic 'photo': smooth random blobs plus texture (high PDQ quality)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), dtype=np.float32)
    for _ in range(12):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(15, 80)
        colour = rng.uniform(0, 255, 3)
        mask = np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r)))
        img = img * (1 - mask[..., None]) + colour * mask[..., None]
    # Stripes of random frequency and angle: the texture that gives photos their PDQ quality.
    for _ in range(4):
        fx, fy = rng.uniform(-0.15, 0.15, 2)
        img += rng.uniform(15, 35) * np.sin(fx * x + fy * y + rng.uniform(0, 6))[..., None]
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _bank(*pictures: np.ndarray) -> RobustBank:
    bank = RobustBank()
    for entry_id, pic in enumerate(pictures, start=1):
        bank.add(entry_id, registration_fingerprints(_png(pic)))
    return bank


def test_trim_borders_finds_letterbox() -> None:
    pic = Image.fromarray(_picture(1))
    padded = ImageOps.expand(pic, border=(0, 40, 0, 40), fill=(0, 0, 0))
    luma = load_luma(_jpeg(padded), min_side=0)
    box = trim_borders(luma)
    assert abs(box.top - 40) <= 3 and abs((luma.shape[0] - box.bottom) - 40) <= 3
    assert box.left == 0 and box.right == luma.shape[1]


def test_trim_borders_leaves_a_photo_alone() -> None:
    luma = load_luma(_picture(2))
    assert trim_borders(luma).is_whole(luma.shape)


def _screenshot(pic: np.ndarray, dark: bool) -> tuple[Image.Image, Box]:
    bg = (18, 18, 18) if dark else (250, 250, 250)
    fg = (230, 230, 230) if dark else (20, 20, 20)
    canvas = Image.new("RGB", (360, 760), bg)
    from PIL import ImageDraw

    d = ImageDraw.Draw(canvas)
    d.rectangle((0, 0, 360, 24), fill=(30, 40, 120))
    d.text((8, 5), "9:41", fill=(255, 255, 255))
    d.ellipse((10, 40, 40, 70), fill=(200, 100, 50))
    d.text((50, 50), "some_account", fill=fg)
    shown = Image.fromarray(pic).resize((360, 270))
    canvas.paste(shown, (0, 90))
    for i in range(3):
        d.ellipse((10 + 30 * i, 370, 30 + 30 * i, 390), outline=fg, width=2)
    d.text((10, 400), "1234 likes  sunset walk with friends", fill=fg)
    return canvas, Box(90, 0, 360, 360)


@pytest.mark.parametrize("dark", [False, True])
def test_screenshot_detection_finds_the_picture(dark: bool) -> None:
    shot, expected = _screenshot(_picture(3), dark)
    box = find_embedded_picture(load_luma(shot))
    assert box is not None
    for got, want in zip(
        (box.top, box.left, box.bottom, box.right),
        (expected.top, expected.left, expected.bottom, expected.right),
        strict=True,
    ):
        assert abs(got - want) <= 3


def test_no_embedded_picture_in_a_plain_photo() -> None:
    assert find_embedded_picture(load_luma(_picture(4))) is None


def test_crop_grid_has_256_named_boxes() -> None:
    grid = crop_grid((100, 200))
    assert len(grid) == 256
    names = {n for n, _ in grid}
    assert "crop-39-39-39-39" in names and "crop-91-56-74-91" in names
    box = dict(grid)["crop-39-56-74-91"]
    assert (box.top, box.left, box.bottom, box.right) == (4, 11, 93, 182)


def test_registration_variants_belong_to_one_entry() -> None:
    regs = registration_fingerprints(_png(_picture(5)))
    assert regs[0].variant == "original"
    assert sum(r.variant.startswith("crop-") for r in regs) > 200
    assert all(r.quality >= 50 for r in regs[1:])


def test_crop_registration_finds_a_cropped_copy() -> None:
    pic = _picture(6)
    bank = _bank(pic, _picture(7))
    im = Image.fromarray(pic)
    w, h = im.size
    cropped = im.crop((round(0.05 * w), round(0.05 * h), w - round(0.05 * w), h - round(0.05 * h)))
    matches = bank.search(query_fingerprints(_jpeg(cropped)))
    assert [m.entry_id for m in matches] == [1]
    assert matches[0].strategy == "crop"


def test_strategies_are_recorded_on_matches() -> None:
    pic = _picture(8)
    bank = _bank(pic)
    im = Image.fromarray(pic)
    plain = bank.search(query_fingerprints(_jpeg(im)))
    rotated = bank.search(query_fingerprints(_jpeg(im.transpose(Image.Transpose.ROTATE_90))))
    padded = bank.search(
        query_fingerprints(_jpeg(ImageOps.expand(im, border=(0, 30, 0, 30), fill=(0, 0, 0))))
    )
    shot, _ = _screenshot(pic, dark=False)
    shown = bank.search(query_fingerprints(_png(np.asarray(shot))))
    assert [(m.entry_id, m.strategy) for m in plain] == [(1, "pdq")]
    assert [(m.entry_id, m.strategy) for m in rotated] == [(1, "dihedral")]
    assert rotated[0].query_strategy.startswith("dihedral-")
    assert [(m.entry_id, m.strategy) for m in padded] == [(1, "trim")]
    assert [m.entry_id for m in shown] == [1]
    assert shown[0].strategy in ("screenshot", "crop")


def test_no_false_match_between_different_pictures() -> None:
    bank = _bank(*(_picture(s) for s in range(10, 14)))
    rnd = random.Random(1)
    for seed in range(20, 26):
        im = Image.fromarray(_picture(seed))
        for data in (
            _jpeg(im),
            _jpeg(im.transpose(Image.Transpose.ROTATE_90)),
            _jpeg(ImageOps.expand(im, border=(rnd.randint(10, 40),) * 4, fill=(255, 255, 255))),
        ):
            assert bank.search(query_fingerprints(data)) == []


def test_withdrawn_entry_no_longer_matches() -> None:
    pic = _picture(30)
    bank = _bank(pic)
    data = _jpeg(Image.fromarray(pic))
    assert bank.search(query_fingerprints(data))
    bank.withdraw(1)
    assert bank.search(query_fingerprints(data)) == []
    assert bank.variants == {}


class _FakeIndex:
    def __init__(self, rows: list[list[tuple[int, int]]]) -> None:
        self.rows = rows

    def search(
        self, hashes: object, threshold: int | None = None
    ) -> list[list[tuple[int, int]]]:
        return self.rows


def test_match_with_strategies_maps_variants_and_rules() -> None:
    h = "0" * 64
    queries = [QueryHash(h, 90, "original"), QueryHash(h, 90, "dihedral-rotate90")]
    variants = {
        1: (7, "original", 90),
        2: (7, "crop-40-40-40-40", 90),
        3: (8, "crop-40-40-40-40", 60),
        4: (9, "crop-40-40-40-40", 90),
    }
    index = _FakeIndex([[(2, 12), (3, 5), (4, 32)], [(1, 20), (2, 3)]])
    got = match_with_strategies(index, queries, 31, variants)
    # A rotated query never uses crops: its hit at 3 bits on entry 7's crop is not allowed, so
    # entry 7 is found by the plain query's crop (12), nearer than the rotated query's hit on
    # the original (20). Nothing beyond the threshold (entry 9).
    assert got == [StrategyMatch(8, 5, "crop", "crop-40-40-40-40", "original"),
                   StrategyMatch(7, 12, "crop", "crop-40-40-40-40", "original")]


def test_strategy_table() -> None:
    assert strategy_of("original", "original") == "pdq"
    assert strategy_of("dihedral-flipx", "crop-40-40-40-40") is None
    assert strategy_of("trim", "original") == "trim"
    assert strategy_of("screenshot", "trim-crop-40-40-40-40") == "screenshot"
    assert RegisteredHash("0" * 64, 0, "original").variant == "original"
