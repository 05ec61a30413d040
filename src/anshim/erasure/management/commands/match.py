"""`anshim match [--json] PATH...`: match files against every enabled bank.

With --json, one JSON object per line, keys in a fixed order:

    {"path": ..., "bank": ..., "entry": 12, "case": "AN-..." | null, "kind": "pdq",
     "distance": 4, "strategy": "pdq"}
    ("strategy" says what found the match: sha256, md5, pdq, dihedral, trim, screenshot, crop
    or vpdq; vPDQ matches add "query_percent" and "compared_percent". Image files are also
    searched rotated, border-trimmed and as screenshots.)
    {"path": ..., "error": "corrupt_media", "message": ...}   for a file that failed

Without --json, a table. Directories are walked. Exit status: 0 when every file was
fingerprinted (whether or not anything matched), 1 when at least one file failed.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from anshim.erasure.matcher import MatchResult, fingerprint_for_matching, get_matcher
from anshim.erasure.media_paths import expand_paths
from anshim.fingerprint.errors import FingerprintError
from anshim.fingerprint.robust_strategy import QueryHash

_BATCH = 64


def match_line(path: Path, result: MatchResult) -> dict[str, Any]:
    line: dict[str, Any] = {
        "path": str(path), "bank": result.bank, "entry": result.entry_id,
        "case": result.case_code, "kind": result.kind, "distance": result.distance,
        "strategy": result.strategy or result.kind,
    }
    if result.query_percent is not None:
        line["query_percent"] = result.query_percent
        line["compared_percent"] = result.compared_percent
    return line


class Command(BaseCommand):
    help = "Match files against every enabled bank (bank, entry, case code, distance)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="One JSON object per line.")
        parser.add_argument("paths", nargs="+", metavar="PATH")

    def handle(self, *args: Any, **options: Any) -> None:
        from anshim.fingerprint.engine import read_media_file

        as_json = options["json"]
        if not as_json:
            self.stdout.write(f"{'PATH':40} {'BANK':20} {'ENTRY':>8} {'CASE':12} "
                              f"{'KIND':6} {'DISTANCE':>8}")
        failed = 0
        batch: list[tuple[Path, Any, list[QueryHash]]] = []
        for path in expand_paths(options["paths"]):
            try:
                # The same fingerprint and robust queries as match_bytes (one image decode).
                batch.append((path, *fingerprint_for_matching(read_media_file(path))))
            except FingerprintError as exc:
                failed += 1
                self._error(path, exc, as_json)
            if len(batch) >= _BATCH:
                self._match(batch, as_json)
                batch = []
        if batch:
            self._match(batch, as_json)
        if failed:
            raise CommandError(f"{failed} file(s) could not be fingerprinted.", returncode=1)

    def _error(self, path: Path, exc: FingerprintError, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps({"path": str(path), "error": exc.code,
                                          "message": exc.message}, ensure_ascii=False))
        else:
            self.stderr.write(f"{path}: error: {exc.message}")

    def _match(self, batch: list[tuple[Path, Any, list[QueryHash]]], as_json: bool) -> None:
        # Images are also searched with the robust query strategies (from the same decode).
        results = get_matcher().match_fingerprints([fp for _, fp, _ in batch],
                                                   [queries for _, _, queries in batch])
        for (path, _, _), matches in zip(batch, results, strict=True):
            for m in matches:
                if as_json:
                    self.stdout.write(json.dumps(match_line(path, m), ensure_ascii=False))
                else:
                    self.stdout.write(f"{path!s:40} {m.bank:20} {m.entry_id:>8} "
                                      f"{m.case_code or '-':12} {m.kind:6} {m.distance:>8}")
            if not matches and not as_json:
                self.stdout.write(f"{path!s:40} (no match)")
