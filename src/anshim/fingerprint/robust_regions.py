"""Regions of an image worth hashing on their own: trimmed borders, the picture inside a
screenshot, and the grid of crops registered so that cropped re-uploads still match.

Everything here works on a 2-D float luma array (values 0-255) in pure numpy, so it runs on the
array the fingerprint engine already decoded (no second decode, nothing written to disk).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CROP_GRID_FRACTIONS",
    "Box",
    "crop_grid",
    "find_embedded_picture",
    "trim_borders",
]


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle of a luma array: rows ``top:bottom``, columns ``left:right``."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def of(self, arr: NDArray[np.floating]) -> NDArray[np.floating]:
        """The region of ``arr`` this box covers."""
        return arr[self.top : self.bottom, self.left : self.right]

    def is_whole(self, shape: tuple[int, ...]) -> bool:
        return (self.top, self.left, self.bottom, self.right) == (0, 0, shape[0], shape[1])


#: A uniform row/column differs from the border colour by at most this much on average ...
_BORDER_MEAN_TOL = 10.0
#: ... and its pixels spread by at most this much (JPEG ringing next to content included).
_BORDER_STD_TOL = 7.0
#: Borders thinner than this share of a side are left alone (they are not letterboxing).
_MIN_BORDER_SHARE = 0.015
#: The trimmed picture keeps at least this share of each side.
_MIN_KEEP_SHARE = 0.4


def _uniform_run(means: NDArray[np.floating], stds: NDArray[np.floating], ref: float) -> int:
    """How many leading lines (by their means and spreads) are flat and of the colour ``ref``."""
    flat = (np.abs(means - ref) <= _BORDER_MEAN_TOL) & (stds <= _BORDER_STD_TOL)
    bad = np.flatnonzero(~flat)
    return int(bad[0]) if bad.size else int(flat.size)


def trim_borders(luma: NDArray[np.floating]) -> Box:
    """The box left after removing uniform borders (letterboxing, padding) from each side.

    A side's border is the run of rows (columns) that are flat and of the colour of the
    outermost one. Runs under 1.5 % of the side are kept (a photo's own edge), and at least 40 %
    of each dimension always remains. Returns the whole image when nothing is trimmed.
    """
    arr = np.asarray(luma, dtype=np.float32)
    h, w = arr.shape
    whole = Box(0, 0, h, w)
    if h < 16 or w < 16:
        return whole
    # Line statistics once for the whole picture (rows, then columns).
    rm, rs = arr.mean(axis=1), arr.std(axis=1)
    cm, cs = arr.mean(axis=0), arr.std(axis=0)
    # The border colour of each side: median of its outermost line (robust to a stray pixel).
    top = _uniform_run(rm, rs, float(np.median(arr[0])))
    bottom = _uniform_run(rm[::-1], rs[::-1], float(np.median(arr[-1])))
    left = _uniform_run(cm, cs, float(np.median(arr[:, 0])))
    right = _uniform_run(cm[::-1], cs[::-1], float(np.median(arr[:, -1])))
    top = top if top >= _MIN_BORDER_SHARE * h else 0
    bottom = bottom if bottom >= _MIN_BORDER_SHARE * h else 0
    left = left if left >= _MIN_BORDER_SHARE * w else 0
    right = right if right >= _MIN_BORDER_SHARE * w else 0
    if h - top - bottom < _MIN_KEEP_SHARE * h or w - left - right < _MIN_KEEP_SHARE * w:
        return whole
    return Box(top, left, h - bottom, w - right)


#: Pixels within this many luma levels of the background colour count as background.
_BG_TOL = 8.0
#: Summed absolute difference to the 4 neighbours above which a pixel counts as textured.
_TEXTURE_TOL = 6.0
#: A row (column) belongs to the picture when at least this share of it is not background.
_PICTURE_ROW_SHARE = 0.6
#: Rows with this share of content continue a picture's rows (see :func:`_detect`).
_WEAK_ROW_SHARE = 0.3
#: The embedded picture covers at least this share of the screenshot's area ...
_MIN_PICTURE_AREA = 0.12
#: ... and at most this share (else the "screenshot" is the picture itself).
_MAX_PICTURE_AREA = 0.92
#: Outside the picture, at most this share of a screenshot is not background.
_MAX_OUTSIDE_CONTENT = 0.4


def _background_level(arr: NDArray[np.float32]) -> float:
    """The most common luma level (4-level bins): the flat colour of an app's interface."""
    hist = np.bincount(np.clip(arr, 0, 255).astype(np.int64).ravel() // 4, minlength=64)
    b = int(np.argmax(hist))
    sel = arr[(arr >= 4 * b) & (arr < 4 * b + 4)]
    return float(sel.mean()) if sel.size else 4.0 * b + 2.0


def _longest_run(mask: NDArray[np.bool_], max_gap: int) -> tuple[int, int]:
    """Start and end (exclusive) of the longest run of True, bridging gaps of ``max_gap``."""
    best = (0, 0)
    start = -1
    gap = 0
    last_true = -1
    for i, v in enumerate(mask.tolist()):
        if v:
            if start < 0:
                start = i
            last_true = i
            gap = 0
        elif start >= 0:
            gap += 1
            if gap > max_gap:
                if last_true + 1 - start > best[1] - best[0]:
                    best = (start, last_true + 1)
                start = -1
                gap = 0
    if start >= 0 and last_true + 1 - start > best[1] - best[0]:
        best = (start, last_true + 1)
    return best


def _content_mask(arr: NDArray[np.float32], bg: float) -> NDArray[np.bool_]:
    """Pixels away from the background colour, or textured ones (a dark photo in a dark-mode
    app has near-background pixels, but not flat ones)."""
    texture = np.zeros(arr.shape, dtype=bool)
    c = arr[1:-1, 1:-1]
    texture[1:-1, 1:-1] = (
        np.abs(c - arr[:-2, 1:-1]) + np.abs(c - arr[2:, 1:-1])
        + np.abs(c - arr[1:-1, :-2]) + np.abs(c - arr[1:-1, 2:])
    ) > _TEXTURE_TOL
    return (np.abs(arr - bg) > _BG_TOL) | texture


def _detect(arr: NDArray[np.float32], bg: float) -> Box | None:
    h, w = arr.shape
    content = _content_mask(arr, bg)
    frac = content.mean(axis=1)
    strong = frac >= _PICTURE_ROW_SHARE
    # Hysteresis: a band of the photo close to the interface colour (a dark coat in dark mode)
    # still has some content; it joins the picture's rows, the empty rows around it do not.
    weak_top, weak_bottom = _longest_run(frac >= _WEAK_ROW_SHARE, max_gap=2)
    inside = np.flatnonzero(strong[weak_top:weak_bottom])
    s_top, s_bottom = _longest_run(strong, max_gap=2)
    if inside.size and inside[-1] + 1 - inside[0] >= s_bottom - s_top:
        top, bottom = weak_top + int(inside[0]), weak_top + int(inside[-1]) + 1
    else:
        top, bottom = s_top, s_bottom
    if bottom - top < 16:
        return None
    # Beside the picture there is only margin: its columns run from the first to the last
    # column with content (a flat stripe of the photo does not cut it).
    cols = np.flatnonzero(content[top:bottom].mean(axis=0) >= _PICTURE_ROW_SHARE)
    if cols.size == 0:
        return None
    left, right = int(cols[0]), int(cols[-1]) + 1
    if right - left < 16:
        return None
    area = (bottom - top) * (right - left) / float(h * w)
    if not _MIN_PICTURE_AREA <= area <= _MAX_PICTURE_AREA:
        return None
    # Around the picture an interface is mostly background; around a region of a photo, the
    # rest of the photo is not (this keeps plain photos with a dominant colour out).
    outside = int(content.sum()) - int(content[top:bottom, left:right].sum())
    outside_area = h * w - (bottom - top) * (right - left)
    if outside > _MAX_OUTSIDE_CONTENT * outside_area:
        return None
    return Box(top, left, bottom, right)


def _refine(frac: NDArray[np.float64], lo: int, hi: int, reach: int) -> tuple[int, int]:
    """Edges of a run known to within ``reach``: the outermost content lines near each."""
    n = frac.size
    a0, a1 = max(0, lo - reach), min(n, lo + reach + 1)
    b0, b1 = max(0, hi - reach - 1), min(n, hi + reach)
    start = np.flatnonzero(frac[a0:a1] >= _PICTURE_ROW_SHARE)
    end = np.flatnonzero(frac[b0:b1] >= _PICTURE_ROW_SHARE)
    new_lo = a0 + int(start[0]) if start.size else lo
    new_hi = b0 + int(end[-1]) + 1 if end.size else hi
    return (new_lo, new_hi) if new_hi - new_lo > 0 else (lo, hi)


#: Detection runs on the screenshot reduced to about this width (block means) ...
_DETECT_WIDTH = 180


def find_embedded_picture(luma: NDArray[np.floating]) -> Box | None:
    """The rectangle of a picture shown inside a screenshot of an app, or ``None``.

    An app's interface is mostly one flat background colour with sparse text, icons and bars;
    a photo has almost no flat pixels of exactly that colour. So the picture is the longest run
    of rows that are mostly *not* background, and within those rows the longest run of such
    columns (runs bridge two-line gaps). Detection runs on a copy reduced to ~180 pixels wide
    (block means: stable texture), then each edge is refined at full size.
    """
    arr = np.asarray(luma, dtype=np.float32)
    h, w = arr.shape
    if h < 32 or w < 32:
        return None
    f = max(1, w // _DETECT_WIDTH)
    if f == 1:
        return _detect(arr, _background_level(arr))
    hs, ws = h // f, w // f
    small = arr[: hs * f, : ws * f].reshape(hs, f, ws, f).mean(axis=(1, 3), dtype=np.float32)
    # The interface's flat colour survives block means unchanged: find it on the small copy.
    bg = _background_level(small)
    box = _detect(small, bg)
    if box is None:
        return None
    top, bottom = box.top * f, min(h, box.bottom * f)
    left, right = box.left * f, min(w, box.right * f)
    content = _content_mask(arr, bg)
    top, bottom = _refine(content[:, left:right].mean(axis=1), top, bottom, 2 * f)
    left, right = _refine(content[top:bottom].mean(axis=0), left, right, 2 * f)
    return Box(top, left, bottom, right)


#: Share cut from each side by the registered crops (4 levels per side: 256 crops, the
#: centres of four equal bins of 3-10 %). Measured on photos re-saved as JPEG: a copy cropped
#: by 3-10 % a side is within 31 bits of one of them ~100 % of the time (3 levels, 81 crops:
#: 83-99 %; 2 levels: ~60 %; the original alone: ~0 %).
CROP_GRID_FRACTIONS: tuple[float, ...] = (0.03875, 0.05625, 0.07375, 0.09125)


def crop_grid(
    shape: tuple[int, int], fractions: tuple[float, ...] = CROP_GRID_FRACTIONS
) -> list[tuple[str, Box]]:
    """Named crop boxes: every combination of ``fractions`` cut from top, left, bottom, right.

    Names read ``crop-T-L-B-R`` with the shares in tenths of a percent, e.g.
    ``crop-39-56-91-39``.
    """
    h, w = shape
    out: list[tuple[str, Box]] = []
    for t, left, b, r in itertools.product(fractions, repeat=4):
        box = Box(
            round(t * h), round(left * w), h - round(b * h), w - round(r * w)
        )
        name = "crop-" + "-".join(str(round(f * 1000)) for f in (t, left, b, r))
        out.append((name, box))
    return out
