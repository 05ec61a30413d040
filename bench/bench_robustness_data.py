"""Benign evaluation data for ``bench.bench_robustness``: pictures and their edited copies.

Sources (all benign, all local): scikit-image's bundled images, the wallpapers of Debian's
desktop-base, sway-backgrounds, lomiri-wallpapers and mypaint-data-extras packages, and frames of
the vPDQ conformance videos. Every picture belongs to a *content group* (a theme, a wallpaper, a
video's scene); groups are split between the registered set and the negative set, so that no
negative shows content that was registered. Large pictures give several non-overlapping tiles.

The default run uses generated pictures instead (`generated_sets`: the dead-leaves model,
photo-like for PDQ; calibrated against the real set with plain PDQ, docs/robustness.md).
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from anshim.fingerprint.pdq import luma_from_rgb, pdq_from_luma

ROOT = Path(__file__).resolve().parent.parent
VIDEOS = ROOT.parent / "shared" / "conformance" / "vpdq" / "videos"
#: Working size: social-media copies are small; the longer side of every picture is at most this.
MAX_SIDE = 512
MIN_QUALITY = 50

Picture = NDArray[np.uint8]  # (H, W, 3) RGB


@dataclass(frozen=True)
class Item:
    name: str
    group: str
    rgb: Picture


def _fit(rgb: Picture, max_side: int = MAX_SIDE) -> Picture:
    im = Image.fromarray(rgb)
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(im.convert("RGB"))


def _rgb(arr: NDArray[np.generic]) -> Picture:
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return np.ascontiguousarray(a[..., :3])


def _tiles(rgb: Picture, tile: int) -> Iterator[tuple[str, Picture]]:
    h, w = rgb.shape[:2]
    for y in range(0, h - tile + 1, tile):
        for x in range(0, w - tile + 1, tile):
            yield f"{y}x{x}", rgb[y : y + tile, x : x + tile]


def _usable(rgb: Picture) -> bool:
    return pdq_from_luma(luma_from_rgb(rgb))[1] >= MIN_QUALITY


# scikit-image pictures, split by picture (each is its own group).
_SKIMAGE_REGISTERED = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "camera", "retina",
    "immunohistochemistry", "skin", "lily",
)
_SKIMAGE_NEGATIVE = (
    "moon", "grass", "gravel", "brick", "coins", "page", "text", "cell", "microaneurysms",
    "clock", "horse", "colorwheel", "logo", "vortex",
)
# Debian desktop-base themes: registered ones vs negative ones.
_THEMES_REGISTERED = ("homeworld", "softwaves")
_DEBIAN_PATTERNS = ("grub/grub-16x9.png", "plymouth/*background*.png", "login/sddm-preview.jpg")


def _skimage(names: tuple[str, ...]) -> Iterator[tuple[str, str, Picture]]:
    import skimage.data as data

    for n in names:
        try:
            arr = getattr(data, n)()
        except Exception:
            continue
        yield f"skimage:{n}", f"skimage:{n}", _rgb(arr)


def _file(path: Path) -> Picture | None:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError:
        return None


def _debian_themes(registered: bool) -> Iterator[tuple[str, str, Picture]]:
    base = Path("/usr/share/desktop-base")
    seen: set[Path] = set()
    for theme_dir in sorted(base.glob("*-theme")):
        if theme_dir.is_symlink():
            continue
        theme = theme_dir.name.removesuffix("-theme")
        if (theme in _THEMES_REGISTERED) != registered:
            continue
        for pattern in _DEBIAN_PATTERNS:
            for p in sorted(theme_dir.glob(pattern)):
                real = p.resolve()
                if real in seen:
                    continue
                seen.add(real)
                rgb = _file(real)
                if rgb is not None:
                    yield f"debian:{theme}/{p.name}", f"debian:{theme}", rgb


def _wallpapers(registered: bool) -> Iterator[tuple[str, str, Picture]]:
    if registered:
        paths = [Path("/usr/share/backgrounds/lomiri-default-background.png")]
    else:
        paths = [
            Path("/usr/share/backgrounds/warty-final-ubuntu.png"),
            Path("/usr/share/backgrounds/sway/Sway_Wallpaper_Blue_2048x1536.png"),
            *sorted(Path("/usr/share/mypaint/backgrounds").rglob("*.png")),
        ]
    for p in paths:
        rgb = _file(p) if p.exists() else None
        if rgb is not None:
            yield f"wall:{p.name}", f"wall:{p.stem}", rgb


def video_frames(path: Path, every_s: float) -> list[Picture]:
    """Frames of a video every ``every_s`` seconds (RGB), decoded in memory with PyAV."""
    import av

    out: list[Picture] = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        next_t = 0.0
        for frame in c.decode(stream):
            t = float(frame.time or 0.0)
            if t + 1e-6 >= next_t:
                out.append(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
                next_t += every_s
    return out


def _videos(registered: bool) -> Iterator[tuple[str, str, Picture]]:
    # The chair videos are one scene (4 encodings), as are the pattern ones.
    if registered:
        chosen = {"chair-orig-22-sd-bar.mp4": 1.0, "doorknob-hd-no-bar.mp4": 1.0}
    else:
        chosen = {"pattern-hd-no-bar.mp4": 0.5, "test-padded-dimensions.mp4": 1.0}
    for name, every in chosen.items():
        path = VIDEOS / name
        if not path.exists():
            continue
        group = "video:" + name.split("-")[0]
        for i, rgb in enumerate(video_frames(path, every)):
            yield f"video:{name}#{i}", group, rgb


def _dedupe(items: list[Item], min_distance: int = 64) -> list[Item]:
    """Drop near-duplicates (successive video frames, one wallpaper at two sizes)."""
    from anshim.fingerprint.pdq import hamming_distance

    kept: list[Item] = []
    hashes: list[str] = []
    for it in items:
        h = pdq_from_luma(luma_from_rgb(it.rgb))[0]
        if all(hamming_distance(h, o) >= min_distance for o in hashes):
            kept.append(it)
            hashes.append(h)
    return kept


def build_sets(limit: int | None = None) -> tuple[list[Item], list[Item]]:
    """The registered originals and the negatives (disjoint content groups)."""
    registered: list[Item] = []
    for name, group, rgb in [
        *_skimage(_SKIMAGE_REGISTERED),
        *_videos(True),
        *_debian_themes(True),
        *_wallpapers(True),
    ]:
        registered.append(Item(name, group, _fit(rgb)))
        for pos, tile in _tiles(rgb, 224 if min(rgb.shape[:2]) < 1000 else 512):
            registered.append(Item(f"{name}@{pos}", group, _fit(tile)))
    negatives: list[Item] = []
    for name, group, rgb in [
        *_skimage(_SKIMAGE_NEGATIVE),
        *_videos(False),
        *_debian_themes(False),
        *_wallpapers(False),
    ]:
        negatives.append(Item(name, group, _fit(rgb)))
        size = 256 if max(rgb.shape[:2]) >= 1800 else 128
        for pos, tile in _tiles(rgb, size):
            negatives.append(Item(f"{name}@{pos}", group, _fit(tile)))
    registered = _dedupe([r for r in registered if _usable(r.rgb)])
    negatives = _dedupe([n for n in negatives if _usable(n.rgb)], min_distance=32)
    if limit is not None:
        rnd = random.Random(7)
        registered = rnd.sample(registered, min(limit, len(registered)))
        negatives = rnd.sample(negatives, min(limit * 4, len(negatives)))
    return registered, negatives


# ---------------------------------------------------------------------------- transforms
def _jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for p in (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    ):
        if Path(p).exists():
            return ImageFont.truetype(p, size)
    return ImageFont.load_default(size)


_WORDS = (
    "sunset walk with friends today the city lights were amazing love this view "
    "weekend coffee trip holiday memories family dinner garden spring morning"
).split()


def _caption(rnd: random.Random, n: int) -> str:
    return " ".join(rnd.choice(_WORDS) for _ in range(n))


def screenshot(rgb: Picture, rnd: random.Random) -> Image.Image:
    """A phone-like screenshot of an app showing the picture: bars, header, caption, buttons."""
    dark = rnd.random() < 0.4
    bg = (rnd.randint(8, 30),) * 3 if dark else (rnd.randint(240, 255),) * 3
    fg = (235, 235, 235) if dark else (20, 20, 20)
    width = rnd.choice((540, 600, 720))
    height = int(width * rnd.uniform(1.9, 2.17))
    canvas = Image.new("RGB", (width, height), bg)
    d = ImageDraw.Draw(canvas)
    s = width / 540
    # Status bar: time and icons, sometimes on its own colour.
    bar_h = int(30 * s)
    if rnd.random() < 0.5:
        d.rectangle((0, 0, width, bar_h), fill=(rnd.randint(0, 90), rnd.randint(0, 90), 120))
    d.text((12 * s, 6 * s), "9:41", fill=fg, font=_font(int(16 * s)))
    for i in range(3):
        d.rectangle((width - (20 + 18 * i) * s, 9 * s, width - (8 + 18 * i) * s, 21 * s), fill=fg)
    # App header with avatar and account name.
    y = bar_h + int(rnd.uniform(8, 60) * s)
    d.ellipse((12 * s, y, 52 * s, y + 40 * s), fill=(rnd.randint(0, 255), 120, rnd.randint(0, 255)))
    d.text((62 * s, y + 10 * s), f"{rnd.choice(_WORDS)}_{rnd.randint(1, 999)}", fill=fg,
           font=_font(int(18 * s)))
    d.text((width - 40 * s, y + 6 * s), "...", fill=fg, font=_font(int(20 * s)))
    y += int(52 * s)
    # The picture: full width or with margins, at various scales.
    margin = 0 if rnd.random() < 0.6 else int(width * rnd.uniform(0.02, 0.1))
    pic_w = width - 2 * margin
    h0, w0 = rgb.shape[:2]
    pic_h = max(1, round(h0 * pic_w / w0))
    if pic_h > height * 0.6:
        pic_h = int(height * 0.6)
        pic_w = max(1, round(w0 * pic_h / h0))
        margin = (width - pic_w) // 2
    pic = Image.fromarray(rgb).resize((pic_w, pic_h), Image.Resampling.LANCZOS)
    canvas.paste(pic, (margin, y))
    y += pic_h + int(10 * s)
    # Buttons bar, caption, comments.
    for i in range(4):
        x = (14 + 40 * i) * s if i < 3 else width - 40 * s
        d.ellipse((x, y, x + 24 * s, y + 24 * s), outline=fg, width=max(1, int(2 * s)))
    y += int(36 * s)
    d.text((12 * s, y), f"{rnd.randint(10, 9999)} likes", fill=fg, font=_font(int(16 * s)))
    y += int(24 * s)
    for _ in range(rnd.randint(1, 3)):
        d.text((12 * s, y), _caption(rnd, 6), fill=fg, font=_font(int(15 * s)))
        y += int(22 * s)
    # Bottom navigation bar.
    nav = height - int(56 * s)
    d.line((0, nav, width, nav), fill=(128, 128, 128), width=1)
    for i in range(5):
        cx = width * (i + 0.5) / 5
        d.rectangle((cx - 12 * s, nav + 16 * s, cx + 12 * s, nav + 40 * s), outline=fg,
                    width=max(1, int(2 * s)))
    return canvas


def _border(im: Image.Image, rnd: random.Random) -> Image.Image:
    colour = rnd.choice([(0, 0, 0), (255, 255, 255), tuple(rnd.randint(0, 255) for _ in range(3))])
    w, h = im.size
    share = rnd.uniform(0.05, 0.2)
    mode = rnd.choice(("letterbox", "pillarbox", "all"))
    dx = int(w * share) if mode in ("pillarbox", "all") else 0
    dy = int(h * share) if mode in ("letterbox", "all") else 0
    return ImageOps.expand(im, border=(dx, dy, dx, dy), fill=colour)


def _crop(im: Image.Image, rnd: random.Random) -> Image.Image:
    w, h = im.size
    left, top, right, bottom = (rnd.uniform(0.03, 0.10) for _ in range(4))
    return im.crop((round(left * w), round(top * h), w - round(right * w), h - round(bottom * h)))


def _watermark(im: Image.Image, rnd: random.Random) -> Image.Image:
    out = im.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    # An account name in a corner, as re-posting accounts stamp it (about 1/20 of the width).
    size = max(10, out.size[0] // 20)
    text = f"@{rnd.choice(_WORDS)}{rnd.randint(1, 99)}"
    x = rnd.choice((size // 2, out.size[0] // 2))
    y = rnd.choice((size // 2, out.size[1] - 3 * size // 2))
    d.text((x, y), text, fill=(255, 255, 255, 170), font=_font(size))
    return Image.alpha_composite(out, layer).convert("RGB")


def _bright_contrast(im: Image.Image, rnd: random.Random) -> Image.Image:
    im = ImageEnhance.Brightness(im).enhance(rnd.choice((rnd.uniform(0.7, 0.85),
                                                        rnd.uniform(1.15, 1.3))))
    return ImageEnhance.Contrast(im).enhance(rnd.uniform(0.75, 1.3))


def _resize(im: Image.Image, rnd: random.Random) -> Image.Image:
    # 40-75 %, but no thumbnail under 160 px (PDQ's quality collapses there for every method).
    w, h = im.size
    f = max(rnd.uniform(0.4, 0.75), min(1.0, 160 / min(w, h)))
    return im.resize((max(8, round(w * f)), max(8, round(h * f))), Image.Resampling.BILINEAR)


Transform = Callable[[Picture, random.Random], bytes]

TRANSFORMS: dict[str, Transform] = {
    "identity": lambda a, r: _jpeg(Image.fromarray(a), 92),
    "resize": lambda a, r: _jpeg(_resize(Image.fromarray(a), r), 85),
    "jpeg30-50": lambda a, r: _jpeg(Image.fromarray(a), r.randint(30, 50)),
    "crop3-10": lambda a, r: _jpeg(_crop(Image.fromarray(a), r), 90),
    "border5-20": lambda a, r: _jpeg(_border(Image.fromarray(a), r), 90),
    "screenshot": lambda a, r: (_png if r.random() < 0.5 else _jpeg)(screenshot(a, r)),
    "watermark": lambda a, r: _jpeg(_watermark(Image.fromarray(a), r), 90),
    "mirror": lambda a, r: _jpeg(ImageOps.mirror(Image.fromarray(a)), 90),
    "rotate90": lambda a, r: _jpeg(Image.fromarray(a).transpose(
        r.choice((Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270))), 90),
    "grey": lambda a, r: _jpeg(ImageOps.grayscale(Image.fromarray(a)), 90),
    "bright-contrast": lambda a, r: _jpeg(_bright_contrast(Image.fromarray(a), r), 90),
}


# ---------------------------------------------------------------- generated pictures (issue 15)
#: The dead-leaves model (Matheron; Lee, Mumford & Huang 2001; the texture chart of ISO 19567-2,
#: Cao, Guichard & Hornung 2010): opaque shapes dropped on top of each other with radii drawn
#: from p(r) ~ r^-3, which gives natural images' scale invariance (~1/f amplitude spectrum)
#: and their occlusion edges. Standard parameters, not fitted to any matcher: radii from 3 px to
#: 60 % of the longer side; calibrated against the real-photo set with plain PDQ only
#: (docs/robustness.md, `bench_robustness --calibrate`).
LEAF_MIN_RADIUS = 3.0
LEAF_MAX_RADIUS_SHARE = 0.6


def generated_picture(seed: int) -> Picture:
    """A benign photo-like picture of the dead-leaves model, 200-320 px wide: discs and
    rectangles (occluders) in a scene palette, each with its own shading and sometimes a
    texture, a global illumination gradient, mild optical blur and sensor-level noise
    (sigma 0.5-2 levels). Deterministic by seed; ~0.1 s each."""
    rng = np.random.default_rng(seed)
    w = int(rng.integers(200, 321))
    h = max(160, min(320, int(w * rng.uniform(0.6, 1.4))))
    rmin, rmax = LEAF_MIN_RADIUS, LEAF_MAX_RADIUS_SHARE * max(w, h)
    # Enough leaves to cover the frame ~4.5 times over (E[r^2] of the power law): what the
    # last ones leave uncovered shows the background gradient.
    mean_r2 = 2 * rmin**2 * np.log(rmax / rmin) / (1 - (rmin / rmax) ** 2)
    n = int(3 * w * h / (np.pi * mean_r2)) + 50
    # Inverse CDF of p(r) ~ r^-3 on [rmin, rmax].
    r = (rmin**-2 - rng.random(n) * (rmin**-2 - rmax**-2)) ** -0.5
    cx, cy = rng.uniform(-0.1 * w, 1.1 * w, n), rng.uniform(-0.1 * h, 1.1 * h, n)
    ry = r * rng.uniform(0.5, 1.0, n)
    angle = rng.uniform(0, np.pi, n)
    cos, sin = np.cos(angle), np.sin(angle)
    disc = rng.random(n) < 0.7
    # Leaf ids drawn back to front (leaf 0 on top); id n is the background.
    labels = Image.new("I", (w, h), n)
    draw = ImageDraw.Draw(labels)
    for i in range(n - 1, -1, -1):
        if disc[i]:
            draw.ellipse((cx[i] - r[i], cy[i] - ry[i], cx[i] + r[i], cy[i] + ry[i]), fill=i)
        else:
            draw.polygon([(cx[i] + px * cos[i] - py * sin[i], cy[i] + px * sin[i] + py * cos[i])
                          for px, py in ((-r[i], -ry[i]), (r[i], -ry[i]), (r[i], ry[i]),
                                         (-r[i], ry[i]))], fill=i)
    lab = np.asarray(labels, dtype=np.int64)
    # A scene palette of 3-6 colours; each leaf jittered around one of them.
    k = int(rng.integers(3, 7))
    palette = rng.uniform(0, 255, (k, 3)) * rng.uniform(0.5, 1.0, (k, 1))
    colour = palette[rng.integers(0, k, n + 1)] + rng.normal(0, 18, (n + 1, 3))
    centre_x, centre_y = np.append(cx, w / 2), np.append(cy, h / 2)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    # Shading: a linear gradient across each leaf (light on a curved surface).
    gx, gy = rng.normal(0, 0.6, n + 1), rng.normal(0, 0.6, n + 1)
    shade = np.clip(gx[lab] * (x - centre_x[lab]) + gy[lab] * (y - centre_y[lab]), -60, 60)
    # Texture on 40 % of the leaves (fabric, foliage): an oriented grating of 3-14 levels.
    amp = np.where(rng.random(n + 1) < 0.4, rng.uniform(3, 14, n + 1), 0.0)
    fx, fy = rng.uniform(-1.2, 1.2, n + 1), rng.uniform(-1.2, 1.2, n + 1)
    phase = rng.uniform(0, 2 * np.pi, n + 1)
    texture = amp[lab] * np.sin(fx[lab] * x + fy[lab] * y + phase[lab])
    img = colour[lab] + (shade + texture)[..., None]
    light = 1 + rng.uniform(-0.25, 0.25) * (x / w - 0.5) + rng.uniform(-0.25, 0.25) * (y / h - 0.5)
    img *= light[..., None]
    blurred = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.5, 1.2)))
    out = np.asarray(blurred, dtype=np.float32)
    out += rng.normal(0, rng.uniform(0.5, 2.0), out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def generated_sets(registered: int, negatives: int) -> tuple[list[Item], list[Item]]:
    """`registered` and `negatives` generated pictures (disjoint seeds, so no negative shows
    registered content), of PDQ quality >= 50."""
    out: list[list[Item]] = [[], []]
    seed = 0
    for which, wanted in ((0, registered), (1, negatives)):
        while len(out[which]) < wanted:
            seed += 1
            rgb = generated_picture(seed)
            if _usable(rgb):
                kind = "reg" if which == 0 else "neg"
                out[which].append(Item(f"gen:{kind}{seed}", f"gen:{seed}", rgb))
    return out[0], out[1]


def crop_sides(im: Image.Image, rnd: random.Random, low: float, high: float) -> Image.Image:
    """Cut a share drawn from [low, high) off each side independently."""
    w, h = im.size
    left, top, right, bottom = (rnd.uniform(low, high) for _ in range(4))
    return im.crop((round(left * w), round(top * h), w - round(right * w), h - round(bottom * h)))


#: Crop depth bins (share cut from each side). The registered crop grid was designed for
#: 3.9-9.1 % a side (docs/robustness.md): the deeper bins say what it finds outside that.
CROP_BINS: tuple[tuple[float, float], ...] = (
    (0.03, 0.05), (0.05, 0.08), (0.08, 0.12), (0.12, 0.16), (0.16, 0.20), (0.20, 0.25))
CROP_GRID_DESIGN = (0.039, 0.091)


def crop_bin_name(low: float, high: float) -> str:
    return f"crop{round(low * 100)}-{round(high * 100)}"


def _crop_bin(low: float, high: float) -> Transform:
    return lambda a, r: _jpeg(crop_sides(Image.fromarray(a), r, low, high), 90)


def _crop_jpeg_resize(a: Picture, r: random.Random) -> bytes:
    """Crop 3-10 % a side, re-encode at JPEG 60-80, resize to 50-80 %, re-encode again."""
    first = Image.open(io.BytesIO(_jpeg(crop_sides(Image.fromarray(a), r, 0.03, 0.10),
                                        r.randint(60, 80))))
    w, h = first.size
    f = max(r.uniform(0.5, 0.8), min(1.0, 160 / min(w, h)))
    return _jpeg(first.resize((max(8, round(w * f)), max(8, round(h * f))),
                              Image.Resampling.BILINEAR), 85)


def _border_screenshot(a: Picture, r: random.Random) -> bytes:
    """A letterboxed/padded copy shown inside an app screenshot."""
    bordered = np.asarray(_border(Image.fromarray(a), r).convert("RGB"))
    return (_png if r.random() < 0.5 else _jpeg)(screenshot(bordered, r))


#: The transforms of the generated-data run: the originals' set, the crop bins, and the
#: combined edits.
GENERATED_TRANSFORMS: dict[str, Transform] = {
    **TRANSFORMS,
    **{crop_bin_name(lo, hi): _crop_bin(lo, hi) for lo, hi in CROP_BINS},
    "crop+jpeg+resize": _crop_jpeg_resize,
    "border+screenshot": _border_screenshot,
}
