"""Benign generated test media: Pillow noise blocks (PDQ quality 100, so distances behave
predictably: a brightness shift moves a few bits, another seed about 128)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def picture_bytes(seed: int, *, edit: int = 0, shift: int = 0, fmt: str = "PNG") -> bytes:
    """Noise blocks from `seed`; `edit` repaints the top-left edit x edit blocks (a visible
    local change: more bits move), `shift` brightens everything (PDQ hardly changes)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    if edit:
        blocks[:edit, :edit] = np.random.default_rng(seed + 10_000).integers(
            0, 256, (edit, edit, 3), dtype=np.uint8)
    pixels = np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8)).astype(np.int16) + shift
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, fmt)
    return buf.getvalue()


def animation_bytes(seeds: list[int], *, seconds_per_frame: float = 1.0) -> bytes:
    frames = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        blocks = rng.integers(0, 256, (16, 16), dtype=np.uint8)
        frames.append(Image.fromarray(np.kron(blocks, np.ones((8, 8), dtype=np.uint8)), "L"))
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:],
                   duration=int(seconds_per_frame * 1000), loop=0)
    return buf.getvalue()
