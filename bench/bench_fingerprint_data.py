"""Benign photo corpus of ``bench.bench_fingerprint``: >= 400 JPEGs of 0.9-3 megapixels.

Sources (all benign, all local): the photographs and wallpapers of Debian's image packages
(``/usr/share/backgrounds``: desktop-base, sway-backgrounds, lomiri-wallpapers and the photo
wallpapers installed with them; ``/usr/share/desktop-base``; mypaint-data-extras), scikit-image's
bundled pictures and the PDQ conformance photos. Each output is a crop of one source, scaled so
that it is 0.9-3 MP (downscaled when the source allows: real detail, not upscaling blur),
edited the way copies are (mirror, quarter turn, brightness, contrast, saturation, a little blur
or sharpening, sensor-like noise) and saved as JPEG at quality 80-95 with 4:2:0, 4:2:2 or 4:4:4
chroma, some progressive, some with an EXIF orientation. Generated once into
``bench/results/`` (ignored by git), deterministic for a given source set.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "results" / "bench_fingerprint_photos"
CONFORMANCE = ROOT.parent / "shared" / "conformance" / "pdq"
_DIRS = (
    Path("/usr/share/backgrounds"),
    Path("/usr/share/desktop-base"),
    Path("/usr/share/mypaint/backgrounds"),
)
#: Sources under this many pixels are skipped (icons, previews).
_MIN_SOURCE_PIXELS = 250_000
_SKIMAGE = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina",
    "immunohistochemistry", "camera", "moon", "brick", "grass", "gravel", "coins", "cell",
    "clock", "horse", "colorwheel",
)


@dataclass(frozen=True, slots=True)
class Photo:
    """One corpus file: its path, its source and what was done to it."""

    path: Path
    source: str
    recipe: str


def _sources() -> Iterator[tuple[str, Image.Image]]:
    seen: set[Path] = set()
    for base in _DIRS:
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*")):
            if p.suffix.lower() not in {".jpg", ".jpeg", ".png"}:
                continue
            real = p.resolve()
            if real in seen or not real.is_file():
                continue
            seen.add(real)
            try:
                with Image.open(real) as im:
                    if im.width * im.height < _MIN_SOURCE_PIXELS:
                        continue
                    yield f"{base.name}/{p.name}", ImageOps.exif_transpose(im).convert("RGB")
            except (OSError, ValueError):
                continue
    import skimage.data as data  # a bench extra (make bench-fingerprint installs it)

    for name in _SKIMAGE:
        arr = np.asarray(getattr(data, name)())
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        yield f"skimage/{name}", Image.fromarray(np.ascontiguousarray(arr[..., :3]))
    if CONFORMANCE.is_dir():
        for p in sorted(CONFORMANCE.rglob("*.jpg")):
            if "modes" in p.parts:
                continue
            with Image.open(p) as im:
                if im.width * im.height >= _MIN_SOURCE_PIXELS:
                    yield f"conformance/{p.name}", ImageOps.exif_transpose(im).convert("RGB")


def _variant(src: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, list[str]]:
    recipe: list[str] = []
    megapixels = float(rng.uniform(0.9, 3.0))
    aspect = float(rng.choice([4 / 3, 3 / 2, 16 / 9, 1.0, 3 / 4, 2 / 3, 9 / 16]))
    width = round((megapixels * 1e6 * aspect) ** 0.5)
    height = round(width / aspect)
    # Crop a random window of the source with the target aspect, 50-100% of the largest one.
    sw, sh = src.size
    fit_w = min(sw, round(sh * aspect))
    fit_h = round(fit_w / aspect)
    frac = float(rng.uniform(0.5, 1.0))
    cw, ch = max(16, round(fit_w * frac)), max(16, round(fit_h * frac))
    x0 = int(rng.integers(0, sw - cw + 1))
    y0 = int(rng.integers(0, sh - ch + 1))
    im = src.crop((x0, y0, x0 + cw, y0 + ch))
    im = im.resize((width, height), Image.Resampling.LANCZOS)
    recipe.append(f"crop{frac:.2f}->{width}x{height}")
    edit = int(rng.integers(0, 8))
    if edit == 1:
        im = ImageOps.mirror(im)
        recipe.append("mirror")
    elif edit == 2:
        im = im.transpose(Image.Transpose.ROTATE_90)
        recipe.append("rot90")
    elif edit == 3:
        factor = float(rng.uniform(0.7, 1.3))
        im = ImageEnhance.Brightness(im).enhance(factor)
        recipe.append(f"bright{factor:.2f}")
    elif edit == 4:
        factor = float(rng.uniform(0.7, 1.5))
        im = ImageEnhance.Contrast(im).enhance(factor)
        recipe.append(f"contrast{factor:.2f}")
    elif edit == 5:
        factor = float(rng.uniform(0.3, 1.8))
        im = ImageEnhance.Color(im).enhance(factor)
        recipe.append(f"saturation{factor:.2f}")
    elif edit == 6:
        if rng.random() < 0.5:
            im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.0))))
            recipe.append("blur")
        else:
            im = im.filter(ImageFilter.UnsharpMask(2, 120, 2))
            recipe.append("sharpen")
    if rng.random() < 0.3:
        sigma = float(rng.uniform(1.0, 5.0))
        arr = np.asarray(im, dtype=np.float32) + rng.normal(0, sigma, (im.height, im.width, 1))
        im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        recipe.append(f"noise{sigma:.1f}")
    return im, recipe


def _encode(im: Image.Image, rng: np.random.Generator, recipe: list[str]) -> bytes:
    quality = int(rng.integers(80, 96))
    subsampling = int(rng.choice([2, 2, 2, 1, 0]))  # 4:2:0 mostly, as cameras and sites do
    progressive = bool(rng.random() < 0.2)
    kwargs: dict[str, object] = {
        "quality": quality,
        "subsampling": subsampling,
        "progressive": progressive,
    }
    recipe.append(f"q{quality}/ss{subsampling}{'/prog' if progressive else ''}")
    if rng.random() < 0.1:
        # Stored turned, shown upright by its EXIF orientation (as phones write them).
        orientation = int(rng.choice([3, 6, 8]))
        back = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
                8: Image.Transpose.ROTATE_270}[orientation]
        im = im.transpose(back)
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
        recipe.append(f"exif{orientation}")
    buf = io.BytesIO()
    im.save(buf, format="JPEG", **kwargs)
    return buf.getvalue()


def build_photos(count: int = 420, seed: int = 20261201) -> list[Photo]:
    """``count`` corpus JPEGs (generated on first use, then read from the cache)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    index = CACHE / f"index-{seed}.tsv"
    if index.exists():
        rows = [line.split("\t") for line in index.read_text().splitlines() if line]
        cached = [Photo(CACHE / name, source, recipe) for name, source, recipe in rows]
        if len(cached) >= count and all(p.path.exists() for p in cached[:count]):
            return cached[:count]
    sources = list(_sources())
    if not sources:
        raise SystemExit("no benign photo sources: run `make system-deps "
                         "APT_PACKAGES=\"$(BENCH_APT_PACKAGES)\"` first")
    rng = np.random.default_rng(seed)
    photos: list[Photo] = []
    for i in range(count):
        name, src = sources[i % len(sources)]
        im, recipe = _variant(src, rng)
        data = _encode(im, rng, recipe)
        path = CACHE / f"photo-{seed}-{i:04d}.jpg"
        path.write_bytes(data)
        photos.append(Photo(path, name, " ".join(recipe)))
    index.write_text("".join(f"{p.path.name}\t{p.source}\t{p.recipe}\n" for p in photos))
    return photos


if __name__ == "__main__":
    built = build_photos()
    print(f"{len(built)} photos in {CACHE}")
