"""`anshim stats estimate ...` — survey estimates from a CSV with the statistics engine.

The engine owns its argument parsing (`anshim.stats.cli`), so this command hands argv over
unchanged and exits with its status (2 for bad input, with a message and no traceback).
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Survey statistics: anshim stats estimate --data FILE.csv --var COL --weight COL ..."

    def run_from_argv(self, argv: list[str]) -> None:
        from anshim.stats.cli import main

        # argv is ["anshim", "stats", ...]
        sys.exit(main(argv[2:]))

    def handle(self, *args: Any, **options: Any) -> None:  # pragma: no cover - via call_command
        from anshim.stats.cli import main

        code = main(list(args))
        if code:
            sys.exit(code)
