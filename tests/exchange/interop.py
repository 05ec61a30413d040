"""Third-party software in virtualenvs of its own, for the interop tests.

The virtualenvs live under the repository's `.venv-*/` (git-ignored) and are rebuilt only when
what they install changes (a stamp file), so a second run costs seconds. The code under test,
the adapter in clients/threatexchange, is reinstalled into them from a temporary copy on every
run (pip writes build files beside the source; CI lays shared/ out read-only).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "clients" / "threatexchange"
SHARED = REPO.parent / "shared"
HMA_SOURCE = SHARED / "interop" / "hma"
PIP_TIMEOUT = 900


def base_python() -> str:
    """The interpreter the project's own virtualenv was made from (not the venv's python:
    a venv made from a venv shares its site-packages path quirks)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, check=False,
                            timeout=PIP_TIMEOUT, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout[-3000:]}"
                           f"\n{result.stderr[-3000:]}")
    return result  # type: ignore[no-any-return]


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".venv*"))
    for path in [target, *target.rglob("*")]:  # read-only sources stay writable copies
        path.chmod(path.stat().st_mode | 0o200)
    return target


def cached_venv(name: str, requirements: list[str], stamp_of: list[Path],
                tmp_path: Path) -> Path:
    """`REPO/.venv-<name>` with `requirements` installed (paths are copied to `tmp_path`
    first), rebuilt only when the stamp (the inputs' contents, the Python version) changes."""
    venv = REPO / f".venv-{name}"
    digest = hashlib.sha256(sys.version.encode())
    for item in requirements:
        digest.update(item.encode())
    for path in stamp_of:
        digest.update(path.read_bytes())
    stamp = digest.hexdigest()
    REPO.joinpath(".venv-locks").mkdir(exist_ok=True)
    with open(REPO / ".venv-locks" / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once build it once
        stamp_file = venv / ".anshim-stamp"
        if stamp_file.exists() and stamp_file.read_text() == stamp:
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        _run([base_python(), "-m", "venv", str(venv)])
        args = []
        for item in requirements:
            path = Path(item)
            args.append(str(copy_tree(path, tmp_path / f"src-{path.name}"))
                        if path.is_dir() else item)
        _run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
              *args])
        stamp_file.write_text(stamp)
    return venv


def install_client(venv: Path, tmp_path: Path) -> None:
    """The adapter under test, as a partner installs it (not editable, no dependencies: the
    venv has them)."""
    copy = copy_tree(CLIENT, tmp_path / "anshim-threatexchange")
    _run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
          "--no-deps", "--force-reinstall", str(copy)])


def require_hma() -> None:
    if not (HMA_SOURCE / "pyproject.toml").exists():
        pytest.skip(f"hasher-matcher-actioner's source is not at {HMA_SOURCE}")


def require_postgres() -> str:
    """A PostgreSQL server on 127.0.0.1:5432 (HMA supports nothing else)."""
    import psycopg

    url = os.environ.get("ANSHIM_INTEROP_PG", "postgresql://root@127.0.0.1:5432/postgres")
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"hasher-matcher-actioner needs PostgreSQL on 127.0.0.1:5432: {exc}")
    return url
