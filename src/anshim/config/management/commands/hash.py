"""`anshim hash [--json] [--dihedral] PATH...` — fingerprint files with the engine.

The engine owns its argument parsing (`anshim.fingerprint.cli`), so this command hands argv over
unchanged and exits with its status.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Fingerprint images and videos: one JSON line per file (PDQ, vPDQ, MD5, SHA-256)."

    def run_from_argv(self, argv: list[str]) -> None:
        from anshim.fingerprint.cli import main

        # argv is ["anshim", "hash", ...]
        sys.exit(main(argv[2:]))

    def handle(self, *args: Any, **options: Any) -> None:  # pragma: no cover - via call_command
        from anshim.fingerprint.cli import main

        code = main(list(args))
        if code:
            sys.exit(code)
