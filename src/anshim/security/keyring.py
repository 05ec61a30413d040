"""The key ring for encryption at rest.

Keys come from `ANSHIM_KEYS` ("id:base64key,id:base64key", primary first) or from the key
file (`ANSHIM_KEY_FILE`, JSON). New data is always encrypted with the primary key; old keys
stay in the ring so existing rows can be read until `anshim keys rotate` re-encrypts them.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

KEY_BYTES = 32  # AES-256-GCM


class KeyRingError(Exception):
    """The key ring is missing, malformed, or lacks a key that data was encrypted with."""


@dataclass(frozen=True)
class KeyRing:
    keys: dict[str, bytes]
    primary_id: str

    def __post_init__(self) -> None:
        if self.primary_id not in self.keys:
            raise KeyRingError(f"Primary key {self.primary_id!r} is not in the key ring.")
        for key_id, key in self.keys.items():
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"Key {key_id!r} must be {KEY_BYTES} bytes, not {len(key)}.")
            if ":" in key_id or "@" in key_id or not key_id:  # the stored form's separators
                raise KeyRingError(f"Invalid key id {key_id!r}.")

    @property
    def primary(self) -> bytes:
        return self.keys[self.primary_id]

    def get(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise KeyRingError(
                f"Data was encrypted with key {key_id!r}, which is not in the key ring."
            ) from None

    def with_new_primary(self) -> KeyRing:
        new_id = f"k{secrets.token_hex(4)}"
        keys = {new_id: secrets.token_bytes(KEY_BYTES), **self.keys}
        return KeyRing(keys=keys, primary_id=new_id)

    def without(self, key_ids: set[str]) -> KeyRing:
        return KeyRing(
            keys={k: v for k, v in self.keys.items() if k not in key_ids},
            primary_id=self.primary_id,
        )

    def to_env_value(self) -> str:
        """The ring as an ANSHIM_KEYS value (primary first)."""
        ordered = [self.primary_id, *(k for k in self.keys if k != self.primary_id)]
        return ",".join(f"{k}:{base64.b64encode(self.keys[k]).decode('ascii')}" for k in ordered)

    def to_json(self) -> str:
        return json.dumps(
            {
                "primary": self.primary_id,
                "keys": [
                    {"id": k, "key": base64.b64encode(v).decode("ascii")}
                    for k, v in self.keys.items()
                ],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        try:
            data = json.loads(text)
            keys: dict[str, bytes] = {}
            for item in data["keys"]:
                if item["id"] in keys:
                    raise ValueError(f"duplicate key id {item['id']!r}")
                keys[str(item["id"])] = base64.b64decode(item["key"], validate=True)
            if not keys:
                raise ValueError("no keys")
            return cls(keys=keys, primary_id=str(data["primary"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyRingError(f"Malformed key file: {exc}") from exc

    @classmethod
    def from_env_value(cls, value: str) -> KeyRing:
        keys: dict[str, bytes] = {}
        try:
            for part in value.split(","):
                key_id, b64 = part.strip().split(":", 1)
                if key_id in keys:
                    raise ValueError(f"duplicate key id {key_id!r}")
                keys[key_id] = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise KeyRingError("ANSHIM_KEYS must look like 'id:base64key,id:base64key'.") from exc
        if not keys:
            raise KeyRingError("ANSHIM_KEYS is empty.")
        return cls(keys=keys, primary_id=next(iter(keys)))

    @classmethod
    def generate(cls) -> KeyRing:
        key_id = f"k{secrets.token_hex(4)}"
        return cls(keys={key_id: secrets.token_bytes(KEY_BYTES)}, primary_id=key_id)


def write_key_file(ring: KeyRing, path: Path) -> None:
    """Write atomically with owner-only permissions (never a half-written key file), and
    durably: the new file's data, then its directory entry, reach the disk before this returns.

    Without the directory fsync a power cut after `os.replace` can bring back the *old* file
    while rows re-encrypted afterwards already use the new key: those rows would be
    unreadable. Rotation re-encrypts only after this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(ring.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable (POSIX: fsync the directory)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_lock = Lock()
_cached: KeyRing | None = None
# Where the cached ring came from: ("env", value), ("file", path, mtime_ns, size) or ("pinned",).
_source: tuple[object, ...] | None = None


def get_keyring() -> KeyRing:
    """The process-wide key ring; creates a key file on first use if none is configured.

    The key file is re-read when it changes, so a web server or task worker that is running
    while `anshim keys rotate` adds a key can read the re-encrypted rows at once, and stops
    writing with a key that has been retired.
    """
    global _cached, _source
    with _lock:
        if _cached is None or _source is None or _source != _current_source(_source):
            _cached, _source = _load()
        return _cached


def set_keyring(ring: KeyRing | None) -> None:
    """Pin a ring (tests), or forget the cached one so the next use reloads it (`None`)."""
    global _cached, _source
    with _lock:
        _cached = ring
        _source = ("pinned",) if ring is not None else None


def key_file_path() -> Path:
    from django.conf import settings

    return Path(settings.ANSHIM_KEY_FILE)


def keys_from_env() -> bool:
    return bool(os.environ.get("ANSHIM_KEYS"))


def _file_source(path: Path) -> tuple[object, ...]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return ("file", str(path), None, None)
    return ("file", str(path), st.st_mtime_ns, st.st_size)


def _current_source(previous: tuple[object, ...]) -> tuple[object, ...]:
    if previous == ("pinned",):
        return previous
    env = os.environ.get("ANSHIM_KEYS")
    if env:
        return ("env", env)
    return _file_source(key_file_path())


def _load() -> tuple[KeyRing, tuple[object, ...]]:
    env = os.environ.get("ANSHIM_KEYS")
    if env:
        return KeyRing.from_env_value(env), ("env", env)
    path = key_file_path()
    if not path.exists():
        _create_key_file(path)
    source = _file_source(path)
    return KeyRing.from_json(path.read_text()), source


def _create_key_file(path: Path) -> None:
    """Create the first key file; if another process wins the race, keep its file (two
    processes must never encrypt with two different first keys)."""
    ring = KeyRing.generate()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
    write_key_file(ring, tmp)
    try:
        os.link(tmp, path)  # fails if the file appeared meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    fsync_directory(path.parent)
