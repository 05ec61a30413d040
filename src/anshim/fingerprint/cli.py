"""``anshim hash``: fingerprint files and print one JSON object a line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from .batch import fingerprint_files
from .errors import FingerprintError
from .types import ImageFingerprint, VideoFingerprint
from .vpdq import format_vpdq

__all__ = ["main"]

_PROGRESS_MIN_FILES = 5


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="anshim hash",
        description="Fingerprint images (PDQ) and videos (vPDQ), with MD5 and SHA-256.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to fingerprint")
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object a line (the default; accepted for explicitness)",
    )
    p.add_argument("--dihedral", action="store_true", help="add the 8 dihedral PDQ variants")
    p.add_argument(
        "--seconds-per-hash",
        type=float,
        default=1.0,
        help="vPDQ sampling interval in seconds (0: every frame; default 1)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument(
        "--vpdq-text",
        action="store_true",
        help="for videos, also include the vPDQ in Meta's text format",
    )
    return p


def _record(
    path: str, result: ImageFingerprint | VideoFingerprint | FingerprintError, vpdq_text: bool
) -> dict[str, Any]:
    if isinstance(result, FingerprintError):
        return {"path": path, "error": result.message, "error_type": type(result).__name__}
    out: dict[str, Any] = {"path": path}
    out.update(result.to_dict())
    if vpdq_text and isinstance(result, VideoFingerprint):
        out["vpdq_text"] = format_vpdq(result.frames)
    return out


def main(argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``anshim hash`` with ``argv`` (without the word "hash"); return the exit status.

    0: every file fingerprinted; 1: at least one file failed (its line has an ``error``);
    2: bad usage.
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    if args.seconds_per_hash < 0:
        print("anshim hash: --seconds-per-hash must be >= 0", file=err)
        return 2
    paths: list[str] = list(args.paths)
    bar: Any = None
    progress = None
    if len(paths) >= _PROGRESS_MIN_FILES and err.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(paths), unit="file", file=err)

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

    try:
        results = fingerprint_files(
            paths,
            workers=args.workers,
            dihedral=args.dihedral,
            seconds_per_hash=args.seconds_per_hash,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    failed = 0
    for path, result in zip(paths, results, strict=True):
        if isinstance(result, FingerprintError):
            failed += 1
        out.write(json.dumps(_record(path, result, args.vpdq_text), sort_keys=False) + "\n")
    out.flush()
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
