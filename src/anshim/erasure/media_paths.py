"""Command-line paths: files as given, directories walked (sorted, hidden files skipped)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path


def expand_paths(paths: Iterable[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not any(p.startswith(".") for p in
                                               child.relative_to(path).parts):
                    yield child
        else:
            yield path
