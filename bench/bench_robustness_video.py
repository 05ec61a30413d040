"""vPDQ part of the robustness benchmark: conformance videos re-encoded, trimmed, letterboxed
and cropped in memory with PyAV, matched with plain vPDQ and with Anshim's video strategies."""

from __future__ import annotations

import io
import time
from fractions import Fraction
from typing import Any

import av
import numpy as np
from PIL import Image, ImageOps

from anshim.fingerprint.robust_video import (
    match_video_strategies,
    video_query_frames,
    video_registration_frames,
)
from bench.bench_robustness_data import VIDEOS

REGISTERED = ("chair-orig-22-sd-bar.mp4", "doorknob-hd-no-bar.mp4", "test-padded-dimensions.mp4")
NEGATIVE = ("pattern-hd-no-bar.mp4", "pattern-sd-grey-bar.mp4")


def _decode(data: bytes) -> tuple[list[np.ndarray], float]:
    with av.open(io.BytesIO(data), "r") as c:
        s = c.streams.video[0]
        rate = float(s.average_rate or 25)
        return [f.to_ndarray(format="rgb24") for f in c.decode(s)], rate


def _encode(frames: list[np.ndarray], rate: float, crf: int = 30) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(rate).limit_denominator(1001))
        h, w = frames[0].shape[:2]
        s.width, s.height = w - w % 2, h - h % 2
        s.pix_fmt = "yuv420p"
        s.options = {"crf": str(crf), "preset": "ultrafast"}
        for arr in frames:
            frame = av.VideoFrame.from_ndarray(arr[: s.height, : s.width], format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def _map(frames: list[np.ndarray], fn: Any) -> list[np.ndarray]:
    return [np.asarray(fn(Image.fromarray(f))) for f in frames]


def _letterbox(im: Image.Image) -> Image.Image:
    _w, h = im.size
    return ImageOps.expand(im, border=(0, int(h * 0.12), 0, int(h * 0.12)), fill=(0, 0, 0))


def _crop(im: Image.Image) -> Image.Image:
    w, h = im.size
    return im.crop((int(w * 0.05), int(h * 0.07), w - int(w * 0.06), h - int(h * 0.04)))


def _half(im: Image.Image) -> Image.Image:
    w, h = im.size
    return im.resize((max(16, w // 2), max(16, h // 2)))


def transforms(data: bytes) -> dict[str, bytes]:
    frames, rate = _decode(data)
    n = len(frames)
    return {
        "re-encode (half size, crf 30)": _encode(_map(frames, _half), rate),
        "trim (middle 60 %)": _encode(frames[int(n * 0.25) : int(n * 0.85)], rate, 23),
        "letterbox 12 %": _encode(_map(frames, _letterbox), rate, 23),
        "crop 4-7 % a side": _encode(_map(frames, _crop), rate, 23),
    }


def run_video() -> dict[str, Any]:
    t0 = time.perf_counter()
    registered = {}
    for i, name in enumerate(REGISTERED):
        registered[i] = video_registration_frames((VIDEOS / name).read_bytes())
    # Plain vPDQ: Meta's one frame per second on both sides.
    plain_reg = {
        i: {"original": video_query_frames((VIDEOS / name).read_bytes())["original"]}
        for i, name in enumerate(REGISTERED)
    }
    rows: dict[str, dict[str, Any]] = {}
    false = {"vpdq": 0, "anshim": 0}
    neg_queries = 0
    for i, name in enumerate(REGISTERED):
        for tname, data in transforms((VIDEOS / name).read_bytes()).items():
            q = video_query_frames(data)
            plain = match_video_strategies({"original": q["original"]}, plain_reg)
            full = match_video_strategies(q, registered)
            row = rows.setdefault(tname, {"copies": 0, "vpdq": 0, "anshim": 0,
                                          "strategies": {}, "false": {"vpdq": 0, "anshim": 0}})
            row["copies"] += 1
            row["vpdq"] += any(m.video_id == i for m in plain)
            row["anshim"] += any(m.video_id == i for m in full)
            row["false"]["vpdq"] += sum(m.video_id != i for m in plain)
            row["false"]["anshim"] += sum(m.video_id != i for m in full)
            for m in full:
                if m.video_id == i:
                    row["strategies"][m.strategy] = row["strategies"].get(m.strategy, 0) + 1
    for name in NEGATIVE:
        original = (VIDEOS / name).read_bytes()
        for data in (original, *transforms(original).values()):
            q = video_query_frames(data)
            neg_queries += 1
            false["vpdq"] += bool(match_video_strategies({"original": q["original"]}, plain_reg))
            false["anshim"] += bool(match_video_strategies(q, registered))
    print("\nvPDQ (query share of frames >= 50 %):")
    print(f"{'transform':<32}{'copies':>7} | found: {'vPDQ':>5}{'anshim':>8} | false: "
          f"{'vPDQ':>5}{'anshim':>7} | strategies")
    for tname, row in rows.items():
        print(f"{tname:<32}{row['copies']:>7} | {'':7}{row['vpdq']:>5}{row['anshim']:>8} | "
              f"{'':7}{row['false']['vpdq']:>5}{row['false']['anshim']:>7} | {row['strategies']}")
    print(f"negative videos: {len(NEGATIVE)} x {neg_queries // max(1, len(NEGATIVE))} versions, "
          f"false matches: vPDQ {false['vpdq']}, anshim {false['anshim']} "
          f"({time.perf_counter() - t0:.0f} s)")
    return {"per_transform": rows, "negative_queries": neg_queries, "negative_false": false}
