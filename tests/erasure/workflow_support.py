"""Helpers for the erasure workflow tests: a fake social site on loopback, a real SMTP server
(aiosmtpd) on loopback, and benign transformed copies of generated pictures."""

from __future__ import annotations

import http.server
import io
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from .media import picture_bytes


def _image(seed: int) -> Image.Image:
    return Image.open(io.BytesIO(picture_bytes(seed))).convert("RGB")


def _encode(im: Image.Image, fmt: str = "PNG", **kw: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def transformed(seed: int, how: str) -> bytes:
    """A benign transformed copy of picture `seed`."""
    im = _image(seed)
    w, h = im.size
    if how == "resized":
        return _encode(im.resize((w * 3 // 4, h * 3 // 4), Image.Resampling.LANCZOS))
    if how == "recompressed":
        return _encode(im, "JPEG", quality=55)
    if how == "cropped":
        return _encode(im.crop((4, 4, w - 4, h - 4)))
    if how == "watermarked":
        draw = ImageDraw.Draw(im)
        draw.rectangle((w - 70, h - 22, w - 4, h - 4), fill=(255, 255, 255))
        draw.text((w - 66, h - 20), "fake.sns", fill=(0, 0, 0))
        return _encode(im, "JPEG", quality=85)
    if how == "mirrored":
        return _encode(ImageOps.mirror(im))
    if how == "rotated":
        return _encode(im.rotate(90, expand=True))
    if how == "original":
        return picture_bytes(seed)
    raise ValueError(how)


class FakeSite:
    """Static files in a folder, served by http.server in a thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "img").mkdir(exist_ok=True)
        site_root = str(root)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a: Any, **kw: Any) -> None:
                super().__init__(*a, directory=site_root, **kw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def put_image(self, name: str, data: bytes) -> str:
        (self.root / "img" / name).write_bytes(data)
        return self.base + "img/" + name

    def put_page(self, name: str, images: list[str], links: list[str] = ()) -> str:  # type: ignore[assignment]
        body = "".join(f'<div class="post"><img src="img/{i}" alt=""><p>post</p></div>'
                       for i in images)
        body += "".join(f'<a href="{link}">{link}</a>' for link in links)
        (self.root / name).write_text(f"<html><head><title>{name}</title></head>"
                                      f"<body><h1>FakeSNS</h1>{body}</body></html>")
        return self.base + name

    def delete(self, relative: str) -> None:
        (self.root / relative).unlink()

    def __enter__(self) -> FakeSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content or envelope.content)
        msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(msg)
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, dict[str, Any]]]:
    """A real SMTP server on loopback; yields (inbox, MAILERS setting pointing at it)."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, {"default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 10},
        }}
    finally:
        controller.stop()


def body_text(msg: Message) -> str:
    part = msg.get_payload(decode=True) if not msg.is_multipart() else \
        msg.get_payload(0).get_payload(decode=True)  # type: ignore[union-attr]
    return bytes(part).decode("utf-8")  # type: ignore[arg-type]
