"""`make bench-pages`: the staff and portal pages users wait on most — the case list (first
page, and a filtered page beyond row 200), the case page, the case's erasure page and the
victim's portal status page — with `anshim demo --volume N` loaded (issue 19 item 15).

Each N runs in its own child process with a fresh SQLite database (or PostgreSQL with
--postgres): migrate, `anshim demo --volume N`, then GET each page through Django's test
client, signed in as the role that uses it (a counselor for the case list and the case page,
an erasure specialist for the erasure page, the victim with the case code and passphrase for
the portal): the median of 20 GETs after two warm-ups (wall clock, and the process's CPU time
beside it), and the number of SQL queries of one GET.

Reference, side by side in the same run: the same pages, same code, at N=200 (ten times fewer
cases). The ratio shows whether a page's cost grows with the table (it should not: every list
is paginated and every query is per page, not per row).

Target (exit status 1 when one is missed): every page under 300 ms at N=2,000.

    .venv/bin/python bench/bench_pages.py [--sizes 200,2000] [--runs 20] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_MS = 300.0
WARMUPS = 2


def _child(size: int, runs: int) -> dict[str, Any]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anshim.config.settings")
    django.setup()
    from django.core import signals
    from django.core.management import call_command
    from django.db import close_old_connections, connection
    from django.db.models import Count
    from django.test import Client

    from anshim.cases.models import Case
    from anshim.portal import services as portal
    from anshim.security.models import User

    # As in Django's own test runner: the connection stays open between GETs, so the figure
    # is the page, not a new database connection per request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        call_command("demo", volume=size, stdout=quiet)
    load_s = time.perf_counter() - t0

    counselor = User.objects.get(username="counselor")
    specialist = User.objects.get(username="erasure")
    # The busiest hand-made demo case (portal codes are checked; generated codes are not
    # portal codes): the counselor leads it and the specialist works on it, as in real use.
    case = (Case.objects.exclude(code__startswith="V-")
            .annotate(n=Count("contacts", distinct=True) + Count("sightings", distinct=True))
            .order_by("-n", "pk").first())
    assert case is not None
    Case.objects.filter(pk=case.pk).update(lead_counselor=counselor)
    case.erasure_specialists.add(specialist)
    staff, eraser, victim = Client(), Client(), Client()
    staff.force_login(counselor)
    eraser.force_login(specialist)
    passphrase = portal.issue_passphrase(counselor, case,
                                         idempotency_key=f"bench-pages-{size:010d}").passphrase
    signed_in = victim.post("/status/sign-in/", {"code": case.code, "passphrase": passphrase})
    assert signed_in.status_code == 302, signed_in.status_code
    status = Case.objects.values_list("status", flat=True).annotate(n=Count("id")).order_by(
        "-n").first()

    pages = [
        ("case list", staff, "/staff/cases/"),
        ("case list, filtered, page 5", staff, f"/staff/cases/?status={status}&sort=newest"
                                               "&page=5"),
        ("case page", staff, f"/staff/cases/{case.code}/"),
        ("erasure page", eraser, f"/staff/erasure/cases/{case.code}/"),
        ("portal status", victim, "/status/"),
    ]
    out: dict[str, Any] = {"size": size, "cases": Case.objects.count(),
                           "load_s": round(load_s, 1), "pages": {}}
    for name, client, url in pages:
        for _ in range(WARMUPS):
            response = client.get(url)
            assert response.status_code == 200, (name, url, response.status_code)
        sql: list[str] = []

        def count(execute: Any, query: str, *args: Any, _sql: list[str] = sql) -> Any:
            _sql.append(query)
            return execute(query, *args)

        with connection.execute_wrapper(count):
            client.get(url)
        times, cpu = [], []
        for _ in range(runs):
            t, c = time.perf_counter(), time.process_time()
            client.get(url)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        out["pages"][name] = {"ms": round(statistics.median(times), 1),
                              "cpu_ms": round(statistics.median(cpu), 1), "queries": len(sql)}
    return out


def _postgres_database(url: str) -> str:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


def _run(size: int, runs: int, workdir: Path, postgres: str | None) -> dict[str, Any]:
    env = dict(os.environ, ANSHIM_REQUIRE_OTP="0", ANSHIM_DEMO="1", ANSHIM_DATA_DIR=str(workdir))
    if postgres:
        env["DATABASE_URL"] = _postgres_database(postgres)
    else:
        db = workdir / f"pages-{size}.sqlite3"
        db.unlink(missing_ok=True)
        env["DATABASE_URL"] = f"sqlite:///{db}"
    proc = subprocess.run([sys.executable, __file__, "--child", str(size), "--runs", str(runs)],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"N={size} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200,2000", help="reference N, measured N")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--postgres", default=None,
                        help="a PostgreSQL URL whose database the bench drops and creates")
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.runs)))
        return 0
    small, large = (int(s) for s in args.sizes.split(","))
    database = "PostgreSQL" if args.postgres else "SQLite"
    with tempfile.TemporaryDirectory(prefix="anshim-bench-pages-") as tmp:
        ref = _run(small, args.runs, Path(tmp), args.postgres)
        big = _run(large, args.runs, Path(tmp), args.postgres)
    print(f"bench-pages on {database}: median of {args.runs} GETs through the test client; "
          f"reference N={small} ({ref['cases']} cases), measured N={large} ({big['cases']} "
          f"cases, demo loaded in {big['load_s']} s)")
    print("wall-clock medians (what the user waits); in brackets this process's CPU time, "
          "which a busy machine inflates less")
    print(f"{'page':<30} {'N=' + str(small):>18} {'N=' + str(large):>18} {'ratio':>6} "
          f"{'queries':>9}  target")
    missed = 0
    for name, figures in big["pages"].items():
        reference = ref["pages"][name]
        met = figures["ms"] < TARGET_MS
        missed += not met
        ratio = figures["ms"] / reference["ms"] if reference["ms"] else float("nan")
        queries = f"{reference['queries']}/{figures['queries']}"
        ref_s = f"{reference['ms']:.1f}ms [{reference['cpu_ms']:.1f}]"
        big_s = f"{figures['ms']:.1f}ms [{figures['cpu_ms']:.1f}]"
        print(f"{name:<30} {ref_s:>18} {big_s:>18} {ratio:>6.2f} "
              f"{queries:>9}  < {TARGET_MS:.0f} ms at N={large}: "
              f"{'met' if met else 'MISSED'}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min) at the end")
    print("all targets met" if not missed else f"{missed} target(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
