"""Previews of sighted media for reviewers: fetched and drawn in memory, blurred by default,
never stored (the response forbids caching)."""

from __future__ import annotations

import io

from PIL import Image, ImageFilter

from anshim.erasure.verification import MAX_MEDIA_BYTES, fetch

PREVIEW_SIDE = 320
BLUR_RADIUS = 14


class PreviewUnavailable(Exception):
    pass


def preview_png(url: str, *, blurred: bool = True) -> bytes:
    got = fetch(url, MAX_MEDIA_BYTES)
    if got.status is None or got.status >= 400 or not got.body:
        raise PreviewUnavailable(url)
    try:
        with Image.open(io.BytesIO(got.body)) as im:
            im.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
            small = im.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise PreviewUnavailable(url) from exc
    if blurred:
        small = small.filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
    out = io.BytesIO()
    small.save(out, "PNG")
    return out.getvalue()
