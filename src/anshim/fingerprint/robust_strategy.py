"""Registration and query strategies that find cropped, padded, screenshotted and rotated copies
while staying in the PDQ family that platforms share.

* **Registration** (:func:`registration_fingerprints`): besides the PDQ of the picture
  (variant ``original``), the victim's image gets the PDQ of its trimmed version when it has
  uniform borders (``trim``) and of a grid of 256 crops (``crop-T-L-B-R``, 3.9-9.1 % a side).
  All of them belong to the same bank entry and are withdrawn with it.
* **Query** (:func:`query_fingerprints`): the uploaded copy is hashed as is (``original``), in
  its 7 other dihedral orientations (``dihedral-rotate90`` ...; the decoded luma turned and
  hashed again, more exact than deriving them from the DCT), with uniform borders trimmed
  (``trim``) and, when it looks like a screenshot of an app, as the embedded picture
  (``screenshot``).
* **Matching** (:func:`match_with_strategies`): one PDQ range search for all query hashes; each
  hit is mapped back to its bank entry and kept only when that (query strategy, registered
  variant) pair is allowed and within the pair's threshold. The match records the strategy.

No confirmation stage needs the victim's pixels: the server never stores them. The matching
rules (allowed pairs, per-strategy thresholds, ranking) have one home,
`anshim.matching.strategy`; the app and the benchmarks match through `anshim.matching.core`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image

# The rules live in the matching engine (one home); re-exported for existing callers.
from anshim.matching.strategy import (
    DEFAULT_RULES,
    MIN_QUALITY,
    STRATEGY_THRESHOLDS,
    QueryHash,
    image_strategy,
    rank,
    strategy_of,
)

from .decode_image import DEFAULT_MIN_SIDE, REDUCED_MIN_SIDE, decode_image, open_image
from .pdq import Axis, luma_from_rgb, pdq_from_luma
from .robust_regions import Box, crop_grid, find_embedded_picture, trim_borders
from .sniff import sniff
from .types import DEFAULT_LIMITS, DIHEDRAL_NAMES, Limits

__all__ = [
    "MIN_QUALITY",
    "STRATEGY_THRESHOLDS",
    "QueryHash",
    "RegisteredHash",
    "RobustBank",
    "SearchIndex",
    "StrategyMatch",
    "load_luma",
    "match_with_strategies",
    "query_fingerprints",
    "query_fingerprints_of_luma",
    "registration_fingerprints",
    "strategy_of",
]

ImageInput = bytes | bytearray | memoryview | Image.Image | NDArray[np.generic]


@dataclass(frozen=True, slots=True)
class RegisteredHash:
    """One fingerprint of a bank entry (erasure: a ``Fingerprint`` row with ``variant``)."""

    pdq: str
    quality: int
    #: ``original``, ``trim``, ``crop-T-L-B-R`` or ``trim-crop-T-L-B-R`` (crop of the trimmed one).
    variant: str


@dataclass(frozen=True, slots=True)
class StrategyMatch:
    """A bank entry found by a query, with the strategy that found it (for reviewers/metrics)."""

    entry_id: int
    distance: int
    #: ``pdq``, ``dihedral``, ``trim``, ``screenshot`` or ``crop``.
    strategy: str
    #: The registered variant that matched and the query hash that matched it.
    variant: str
    query_strategy: str


@dataclass(frozen=True, slots=True)
class _Luma:
    array: NDArray[np.float32]
    axes: tuple[Axis, Axis] | None


def _load(image: ImageInput, limits: Limits, min_side: int) -> _Luma:
    if isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
        kind = sniff(data)
        if kind.kind != "image":
            raise ValueError("robust image strategies take still images; use robust_video")
        with open_image(data, kind.format, limits) as im:
            decoded = decode_image(data, kind.format, limits, min_side=min_side, im=im)
        return _Luma(decoded.luma, decoded.axes)
    if isinstance(image, Image.Image):
        rgb = np.asarray(image.convert("RGB"))
        return _Luma(luma_from_rgb(rgb), None)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return _Luma(luma_from_rgb(arr[..., :3]), None)
    if arr.ndim == 2:
        return _Luma(arr.astype(np.float32), None)
    raise ValueError("image must be bytes, a PIL image, an (H, W) luma or (H, W, 3) RGB array")


def load_luma(
    image: ImageInput, *, limits: Limits | None = None, min_side: int = DEFAULT_MIN_SIDE
) -> NDArray[np.float32]:
    """Float32 luma of an image given as bytes (decoded in memory), PIL image or array."""
    return _load(image, limits or DEFAULT_LIMITS, min_side).array


def _dihedral_views(arr: NDArray[np.float32]) -> dict[str, NDArray[np.float32]]:
    """The 7 other orientations of a luma array (names as :data:`DIHEDRAL_NAMES`): the array
    that, turned back, gives the registered picture's orientation."""
    views = {
        "rotate90": np.rot90(arr, 1),
        "rotate180": np.rot90(arr, 2),
        "rotate270": np.rot90(arr, 3),
        "flipx": arr[::-1, :],
        "flipy": arr[:, ::-1],
        "flip_plus1": arr.T,
        "flip_minus1": np.rot90(arr, 2).T,
    }
    assert set(views) == set(DIHEDRAL_NAMES[1:])
    return views


def _region_hash(luma: NDArray[np.float32], box: Box) -> tuple[str, int]:
    return pdq_from_luma(box.of(luma))


def registration_fingerprints(
    image: ImageInput,
    *,
    crops: bool = True,
    limits: Limits | None = None,
    min_side: int = 2 * DEFAULT_MIN_SIDE,
) -> list[RegisteredHash]:
    """All fingerprints to register for one victim image (the first is ``original``).

    Extra variants under :data:`MIN_QUALITY` are left out (flat regions collide).
    """
    lum = _load(image, limits or DEFAULT_LIMITS, min_side)
    pdq_hex, quality = pdq_from_luma(lum.array, lum.axes)
    out = [RegisteredHash(pdq_hex, quality, "original")]
    bases = [("", lum.array)]
    trimmed = trim_borders(lum.array)
    if not trimmed.is_whole(lum.array.shape):
        h, q = _region_hash(lum.array, trimmed)
        if q >= MIN_QUALITY:
            out.append(RegisteredHash(h, q, "trim"))
        # A picture with its own borders: crops of the trimmed picture answer copies whose
        # borders were cropped away, crops of the whole one copies that kept part of them.
        bases.append(("trim-", np.ascontiguousarray(trimmed.of(lum.array))))
    if crops and quality >= MIN_QUALITY:
        seen = {r.pdq for r in out}
        for prefix, base in bases:
            for name, box in crop_grid((base.shape[0], base.shape[1])):
                h, q = _region_hash(base, box)
                if q >= MIN_QUALITY and h not in seen:
                    seen.add(h)
                    out.append(RegisteredHash(h, q, prefix + name))
    return out


def query_fingerprints(
    image: ImageInput,
    *,
    dihedral: bool = True,
    trim: bool = True,
    screenshot: bool = True,
    limits: Limits | None = None,
    min_side: int = DEFAULT_MIN_SIDE,
    reduced: bool = True,
) -> list[QueryHash]:
    """Fingerprints to search for one uploaded copy (low-quality ones are left out).

    ``reduced``: also the hash of the reduced-scale JPEG decode (strategy ``reduced``) when it
    differs from the exact one. Entries registered on the server before issue 20 were hashed
    that way (stored as ``decode="reduced"``, up to ~40 bits from the exact hash, and the media
    is gone, so they cannot be redone): a copy of such a picture is found by the hash made the
    same way.
    """
    lum = _load(image, limits or DEFAULT_LIMITS, min_side)
    return query_fingerprints_of_luma(
        lum.array, lum.axes, image, dihedral=dihedral, trim=trim, screenshot=screenshot,
        limits=limits, reduced=reduced and min_side <= 0)


def query_fingerprints_of_luma(
    luma: NDArray[np.float32],
    axes: tuple[Axis, Axis] | None,
    image: ImageInput,
    *,
    dihedral: bool = True,
    trim: bool = True,
    screenshot: bool = True,
    limits: Limits | None = None,
    reduced: bool = True,
    original: tuple[str, int] | None = None,
) -> list[QueryHash]:
    """:func:`query_fingerprints` of an image already decoded to ``luma`` (with the decode's
    ``axes``; ``None``: full size) from ``image``. The bytes are decoded again only for what
    the full-size luma cannot give: the reduced-scale JPEG hash (``reduced``, a libjpeg IDCT
    scaled decode) and, after a reduced decode, a screenshot's full-size picture.
    ``original``: the plain hash when the caller has it already (the engine's).
    """
    lum = _Luma(luma, axes)
    out: list[QueryHash] = []
    h, quality = original if original is not None else pdq_from_luma(lum.array, lum.axes)
    out.append(QueryHash(h, quality, "original"))
    if reduced and isinstance(image, bytes | bytearray | memoryview):
        small = _load(image, limits or DEFAULT_LIMITS, REDUCED_MIN_SIDE)
        if small.axes is not None and any(a.scale > 1 for a in small.axes):
            hr, qr = pdq_from_luma(small.array, small.axes)
            if hr != h:
                out.append(QueryHash(hr, qr, "reduced"))
    arr = lum.array
    if dihedral:
        # The luma itself is rotated/flipped and hashed again: PDQ's box filter and sample
        # grid are not symmetric, and the hashes derived from the DCT missed 7-10 % of
        # mirrored copies of small pictures (distance 34-46) that these find.
        for name, view in _dihedral_views(arr).items():
            hv, qv = pdq_from_luma(np.ascontiguousarray(view))
            out.append(QueryHash(hv, qv, f"dihedral-{name}"))
    if trim:
        box = trim_borders(arr)
        if not box.is_whole(arr.shape):
            h, q = _region_hash(arr, box)
            out.append(QueryHash(h, q, "trim"))
    if screenshot:
        pic = find_embedded_picture(arr)
        if pic is not None and lum.axes is not None and any(a.scale > 1 for a in lum.axes):
            # A JPEG decoded at reduced scale: one pixel off on the picture's edge is several
            # at full size (20-30 bits). Screenshots are worth a full decode.
            arr = _load(image, limits or DEFAULT_LIMITS, 0).array
            pic = find_embedded_picture(arr)
        if pic is not None:
            # The picture as shown, and without its own borders when it has some (which
            # border a trim removes first is ambiguous for L-shaped borders: keep both).
            inner = np.ascontiguousarray(pic.of(arr))
            h, q = pdq_from_luma(inner)
            out.append(QueryHash(h, q, "screenshot"))
            tb = trim_borders(inner)
            if not tb.is_whole(inner.shape):
                h, q = _region_hash(inner, tb)
                out.append(QueryHash(h, q, "screenshot"))
    return [q for q in out if q.quality >= MIN_QUALITY]


class SearchIndex(Protocol):
    """What :func:`match_with_strategies` needs of an index (``anshim.matching.PDQIndex``)."""

    def search(
        self, hashes: Iterable[str], threshold: int | None = None
    ) -> list[list[tuple[int, int]]]: ...


def match_with_strategies(
    index: SearchIndex,
    queries: Sequence[QueryHash],
    threshold: int,
    variants: Mapping[int, tuple[int, str, int]],
) -> list[StrategyMatch]:
    """Search all query hashes at once and map hits back to bank entries, best first.

    ``variants`` maps each index id to ``(entry_id, variant, quality)`` of the registered hash
    (the erasure app: ``Fingerprint.id -> (entry id, variant, quality)``). One match per entry:
    the closest allowed pair (ties: the simplest strategy).
    """
    if not queries:
        return []
    hits = index.search([q.pdq for q in queries], threshold)
    best: dict[int, StrategyMatch] = {}
    for q, row in zip(queries, hits, strict=True):
        for ident, dist in row:
            known = variants.get(int(ident))
            if known is None:
                continue
            entry_id, variant, quality = known
            strategy = image_strategy(q.strategy, q.quality, variant, quality, int(dist),
                                      threshold, DEFAULT_RULES)
            if strategy is None:
                continue
            m = StrategyMatch(entry_id, int(dist), strategy, variant, q.strategy)
            old = best.get(entry_id)
            if old is None or (m.distance, rank(m.strategy)) < (old.distance, rank(old.strategy)):
                best[entry_id] = m
    return sorted(best.values(), key=lambda m: (m.distance, rank(m.strategy), m.entry_id))


class RobustBank:
    """A small in-memory bank: entries of several registered hashes in one PDQ index.

    The reference for the erasure app's integration (one ``Fingerprint`` row per registered
    hash, its id in the index, withdrawn with its entry) and what the benchmark and tests use.
    """

    def __init__(self, index: SearchIndex | None = None, threshold: int = 31) -> None:
        if index is None:
            from anshim.matching import PDQIndex  # the matching engine; imported lazily

            index = PDQIndex(threshold=threshold)
        self.index = index
        self.threshold = threshold
        self.variants: dict[int, tuple[int, str, int]] = {}
        self._entry_rows: dict[int, list[int]] = {}
        self._next = 1

    def add(self, entry_id: int, registered: Sequence[RegisteredHash]) -> None:
        """Register an entry's hashes (those under :data:`MIN_QUALITY` are not indexed)."""
        kept = [r for r in registered if r.quality >= MIN_QUALITY]
        ids = list(range(self._next, self._next + len(kept)))
        self._next += len(kept)
        if kept:
            self.index.add(ids, [r.pdq for r in kept])  # type: ignore[attr-defined]
        for ident, r in zip(ids, kept, strict=True):
            self.variants[ident] = (entry_id, r.variant, r.quality)
        self._entry_rows.setdefault(entry_id, []).extend(ids)

    def withdraw(self, entry_id: int) -> None:
        """Remove every hash of an entry: none of its variants matches any more."""
        ids = self._entry_rows.pop(entry_id, [])
        if ids:
            self.index.remove(ids)  # type: ignore[attr-defined]
        for ident in ids:
            del self.variants[ident]

    def search(self, queries: Sequence[QueryHash]) -> list[StrategyMatch]:
        return match_with_strategies(self.index, queries, self.threshold, self.variants)
