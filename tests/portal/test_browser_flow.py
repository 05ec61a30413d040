"""The whole victim flow in Debian's Chromium against a live server: report, fingerprint three
photos and a video on the device, check the status, withdraw everything.

Every request the browser makes is recorded, and the test proves that no media bytes left it:
no request body contains any slice of any chosen file, and only the JSON registration carried
a body of any size. Only benign public conformance media are used.
"""

from __future__ import annotations

import hashlib
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls made by the test
# itself (to check the database) are still plain synchronous code.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR = Path(
    os.environ.get("ANSHIM_CONFORMANCE_DIR", REPO_ROOT.parent / "shared" / "conformance")
)
PDQ_DIR = CONFORMANCE_DIR / "pdq"
VIDEO_DIR = CONFORMANCE_DIR / "vpdq" / "videos"
IMAGES = [
    "reg-test-input/dih/bridge-1-original.jpg",  # 1600x1004 JPEG: hashed scaled to 1024
    "misc-images/c.png",  # 1432x812 PNG: scaled
    "bridge-mods/square-256x256.jpg",  # small JPEG: hashed at full size
]
VIDEO = "doorknob-hd-no-bar.mp4"  # 4.3 s H.264
MAX_DISTANCE_FULL_SIZE = 8
MAX_DISTANCE_SCALED = 16
# Video frames: a different decoder and a different frame-selection (seek vs decode order).
MAX_DISTANCE_VIDEO_MEDIAN = 16
MAX_DISTANCE_VIDEO_FRAME = 31  # PDQ's match threshold
MIN_FRAME_QUALITY = 50  # Meta's rule: hashes of lower quality are discarded
# Every request other than the registration POST must be small (forms, the CSRF token).
MAX_OTHER_BODY = 4096
SLICE = 64


@dataclass
class Logged:
    method: str
    url: str
    body: bytes


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def server_fingerprint(path: Path):
    """The server's fingerprint of the same file (anshim.fingerprint when available)."""
    try:
        from anshim.fingerprint.engine import fingerprint_file
    except ImportError:  # pragma: no cover - the engine ships with the package
        fingerprint_file = None
    if fingerprint_file is not None:
        return fingerprint_file(path, seconds_per_hash=1.0)
    import numpy as np
    from PIL import Image, ImageOps

    pdqhash = pytest.importorskip("pdqhash")
    with Image.open(path) as image:
        rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    bits, quality = pdqhash.compute(rgb)
    return type("Fp", (), {"pdq": np.packbits(bits.astype(np.uint8)).tobytes().hex(),
                           "quality": int(quality)})


def media_slices(data: bytes) -> list[bytes]:
    """64-byte slices from several offsets (past any common file header)."""
    offsets = {len(data) // 8, len(data) // 3, len(data) // 2, 2 * len(data) // 3,
               len(data) - SLICE - 1}
    return [data[o : o + SLICE] for o in sorted(offsets) if o >= 0]


@pytest.fixture
def media_files(tmp_path) -> list[Path]:
    missing = [n for n in IMAGES if not (PDQ_DIR / n).is_file()]
    if missing or not (VIDEO_DIR / VIDEO).is_file():
        pytest.skip(f"conformance media not found under {CONFORMANCE_DIR} (ANSHIM_CONFORMANCE_DIR)")
    return [PDQ_DIR / n for n in IMAGES] + [VIDEO_DIR / VIDEO]


def playable_video(page, source: Path, tmp_path: Path) -> Path:
    """The conformance MP4 if this Chromium plays H.264, else a generated WebM (VP9)."""
    can_play = page.evaluate("""() => document.createElement('video')
        .canPlayType('video/mp4; codecs="avc1.42E01E"')""")
    if can_play:
        return source
    return synthetic_webm(tmp_path / "synthetic.webm")


def synthetic_webm(path: Path, seconds: int = 4, fps: int = 10) -> Path:
    """Benign moving shapes, VP9 in WebM (royalty-free codecs every Chromium has)."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="webm") as container:
        stream = container.add_stream("libvpx-vp9", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        y, x = np.mgrid[0:240, 0:320].astype(np.float32)
        for i in range(seconds * fps):
            # Rings drifting slowly: structure at many scales (a good PDQ quality) and
            # neighbouring frames alike, so the frame a seek lands on (the browser) and the
            # frame the decoder picks (the server) hash alike.
            dx = 2.0 * i
            r = np.hypot(x - 140 - dx, y - 110) / 9.0
            rgb = np.empty((240, 320, 3), np.uint8)
            rgb[..., 0] = 127.5 + 127.5 * np.sin(r)
            rgb[..., 1] = 127.5 + 127.5 * np.sin(r * 0.5 + (x - dx) / 40.0)
            rgb[..., 2] = np.clip(255 - y, 0, 255)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_full_flow_report_fingerprint_status_withdraw(
    live_server, flushable_audit_log, browser_context, media_files, tmp_path
):
    from anshim.cases.models import Case, ConsentScope
    from anshim.erasure.models import BankEntry, Fingerprint, FingerprintKind, Tombstone

    log: list[Logged] = []
    browser_context.on("request", lambda r: log.append(
        Logged(r.method, r.url, r.post_data_buffer or b"")))
    page = browser_context.new_page()
    page.set_default_timeout(60_000)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    base = live_server.url

    # 1. Anonymous report: code and passphrase shown once.
    page.goto(base + "/")
    page.click("a.button.primary[href='/report/']")
    page.check("input[name=harm_types][value=distribution]")
    page.check("input[name=harm_types][value=sextortion]")
    page.check("input[name=threatened]")
    page.check("input[name=age_group][value='14to17']")
    page.check("input[name=contact_preference][value=portal]")
    page.check("input[name=consent_keep_data]")
    page.click("form.portal-form button[type=submit]")
    code = page.inner_text("#case-code").strip()
    passphrase = page.inner_text("#passphrase").strip()
    case = Case.objects.get(code=code)
    assert case.channel == "portal" and case.risk_level == "urgent"  # threatened -> urgent
    assert passphrase not in case.portal_passphrase_hash and case.portal_passphrase_hash.startswith(
        "argon2")

    # 2. Sign out, then back in with the code and passphrase.
    page.click("footer button[type=submit]")
    page.goto(base + "/status/")
    assert page.url.endswith("/status/sign-in/")
    page.fill("input[name=code]", code.lower())
    page.fill("input[name=passphrase]", passphrase)
    page.click("form.portal-form button[type=submit]")
    assert page.url.endswith("/status/")
    assert page.inner_text("#progress-registered").strip() == "0"

    # 3. Fingerprint three photos and a video on the device.
    page.goto(base + "/status/fingerprint/")
    assert page.locator("#nothing-uploaded").is_visible()
    files = [*media_files[:3], playable_video(page, media_files[3], tmp_path)]
    page.check("#fp-consent")  # the button waits for the consent box
    page.set_input_files("#fp-files", [str(f) for f in files])
    page.wait_for_function(
        "() => document.querySelectorAll('#fp-list .fp-item').length === 4 && "
        "!document.getElementById('fp-submit').disabled")
    assert page.locator("#fp-list .fp-failed").count() == 0
    assert page.locator("#fp-list img.fp-thumb").count() == 3  # local previews (blob: URLs)
    page.check("#fp-consent")
    with page.expect_response(lambda r: r.url.endswith("/status/fingerprint/register/")) as resp:
        page.click("#fp-submit")
    assert resp.value.status == 201, resp.value.text()
    page.wait_for_function("() => document.getElementById('fp-status').textContent.includes('4')")

    # 4. What reached the database: hashes only, close to the server's own fingerprints.
    entries = list(BankEntry.objects.filter(case=case).order_by("pk"))
    assert [e.media_kind for e in entries] == ["image", "image", "image", "video"]
    assert entries[0].source == "victim_portal" and entries[0].consent.scope == \
        ConsentScope.REGISTER_FINGERPRINTS
    for entry, path in zip(entries, files, strict=True):
        rows = list(Fingerprint.objects.filter(entry=entry))
        md5 = [r.value for r in rows if r.kind == FingerprintKind.MD5]
        assert md5 == [hashlib.md5(path.read_bytes()).hexdigest()]
        server = server_fingerprint(path)
        if entry.media_kind == "image":
            (pdq,) = [r for r in rows if r.kind == FingerprintKind.PDQ]
            from PIL import Image

            with Image.open(path) as im:
                limit = MAX_DISTANCE_SCALED if max(im.size) > 1024 else MAX_DISTANCE_FULL_SIZE
            assert hamming(pdq.value, server.pdq) <= limit, (path.name, pdq.value, server.pdq)
        else:
            frames = sorted((r for r in rows if r.kind == FingerprintKind.VPDQ),
                            key=lambda r: r.frame_number)
            # One a second; the browser may see the container's duration, a little longer.
            assert abs(len(frames) - len(server.frames)) <= 1, (len(frames), len(server.frames))
            assert [f.timestamp for f in frames] == [float(i) for i in range(len(frames))]
            distances = []
            for frame in frames:
                # Only frames whose hash means something: Meta's rule discards PDQ quality < 50
                # (this video fades to near black; such frames are noise, never shared or matched).
                nearby = [f for f in server.frames if abs(f.timestamp - frame.timestamp) <= 0.6
                          and f.quality >= MIN_FRAME_QUALITY]
                if nearby:  # the last browser frame may lie past the server's last one
                    distances.append(min(hamming(frame.value, f.pdq) for f in nearby))
            print("video frame distances", distances)
            usable = sum(f.quality >= MIN_FRAME_QUALITY for f in server.frames)
            assert usable and len(distances) >= usable - 1, (distances, usable)
            assert statistics.median(distances) <= MAX_DISTANCE_VIDEO_MEDIAN, distances
            assert max(distances) <= MAX_DISTANCE_VIDEO_FRAME, distances

    # 5. The status page shows them.
    page.goto(base + "/status/")
    assert page.inner_text("#progress-registered").strip() == "4"

    # 6. Withdraw everything: the entries leave the bank, tombstones remain.
    page.goto(base + "/status/withdraw/")
    assert page.locator("input[name=entry]").count() == 4
    ids = [e.pk for e in entries]
    page.click("#withdraw-everything")
    page.wait_for_selector("#confirm-everything")  # asked once more; nothing withdrawn yet
    assert BankEntry.objects.filter(case=case).count() == 4
    page.click("#withdraw-everything-confirm")
    page.wait_for_selector("#no-entries")
    assert not BankEntry.objects.filter(case=case).exists()
    assert not Fingerprint.objects.filter(entry_id__in=ids).exists()
    assert sorted(Tombstone.objects.filter(entry_id__in=ids).values_list("entry_id", flat=True)) \
        == ids
    assert not case.consents.filter(withdrawn_at__isnull=True).exists()
    page.goto(base + "/status/")
    assert page.inner_text("#progress-registered").strip() == "0"

    # Nothing was refused by the Content-Security-Policy, and no script failed.
    assert not [m for m in console if "Content Security Policy" in m or "pageerror" in m], console

    # 7. No media bytes left the browser.
    assert all(entry.url.startswith((base, "blob:", "data:")) for entry in log), \
        [e.url for e in log if not e.url.startswith((base, "blob:", "data:"))]
    registrations = [e for e in log if e.method == "POST"
                     and e.url.endswith("/status/fingerprint/register/")]
    assert len(registrations) == 1
    assert 0 < len(registrations[0].body) < 64 * 1024
    others = [e for e in log if e is not registrations[0]]
    assert max(len(e.body) for e in others) <= MAX_OTHER_BODY, \
        [(e.method, e.url, len(e.body)) for e in others if len(e.body) > MAX_OTHER_BODY]
    for path in files:
        data = path.read_bytes()
        for piece in media_slices(data):
            for entry in log:
                assert piece not in entry.body, (path.name, entry.url)
                assert piece.hex() not in entry.body.decode("latin-1"), (path.name, entry.url)
    assert all(path.name.encode() not in e.body for path in files for e in log)


def test_quick_exit_replaces_the_history_entry(live_server, browser_context):
    page = browser_context.new_page()
    page.goto(live_server.url + "/")
    page.goto(live_server.url + "/report/")
    page.click("a.quick-exit")
    page.wait_for_url("https://www.naver.com/")
    page.go_back()
    # The report page was replaced by the neutral site: Back leads to the page before it.
    assert page.url == live_server.url + "/"


def test_quick_exit_on_escape_twice(live_server, browser_context):
    page = browser_context.new_page()
    page.goto(live_server.url + "/status/sign-in/")
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.wait_for_url("https://www.naver.com/")


def test_quick_exit_works_without_javascript(live_server, chromium_browser):
    context = chromium_browser.new_context(java_script_enabled=False)
    context.route("https://www.naver.com/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<title>n</title>"))
    page = context.new_page()
    page.goto(live_server.url + "/")
    page.click("a.quick-exit")
    page.wait_for_url("https://www.naver.com/")
    context.close()


def test_synthetic_webm_is_fingerprinted_like_the_server_does(
    live_server, flushable_audit_log, browser_context, tmp_path
):
    """The fallback video (VP9 in WebM, for a Chromium without H.264) goes through the page too."""
    from anshim.erasure.models import Fingerprint, FingerprintKind
    from anshim.portal import services

    video = synthetic_webm(tmp_path / "moving-shapes.webm")
    new = services.submit_report({"harm_types": ["distribution"], "in_danger": "no",
                                  "age_group": "adult", "contact_preference": "portal",
                                  "consent_keep_data": True, "urls": []})
    page = browser_context.new_page()
    page.goto(live_server.url + "/status/sign-in/")
    page.fill("input[name=code]", new.case.code)
    page.fill("input[name=passphrase]", new.passphrase)
    page.click("form.portal-form button[type=submit]")
    page.goto(live_server.url + "/status/fingerprint/")
    page.check("#fp-consent")  # the button waits for the consent box
    page.set_input_files("#fp-files", str(video))
    page.wait_for_function("() => !document.getElementById('fp-submit').disabled")
    page.check("#fp-consent")
    with page.expect_response(lambda r: r.url.endswith("/register/")) as resp:
        page.click("#fp-submit")
    assert resp.value.status == 201
    frames = list(Fingerprint.objects.filter(entry__case=new.case, kind=FingerprintKind.VPDQ)
                  .order_by("frame_number"))
    server = server_fingerprint(video)
    assert abs(len(frames) - len(server.frames)) <= 1
    distances = [min(hamming(f.value, s.pdq) for s in server.frames
                     if abs(s.timestamp - f.timestamp) <= 0.6) for f in frames
                 if any(abs(s.timestamp - f.timestamp) <= 0.6 for s in server.frames)]
    print("webm frame distances", distances)
    assert statistics.median(distances) <= MAX_DISTANCE_VIDEO_MEDIAN, distances
