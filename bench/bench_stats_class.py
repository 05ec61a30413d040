"""A class of 40 phones submitting a survey at once, as `make bench-stats` runs it (this module
adds itself to bench/bench_stats.py's sections; it also runs alone).

Through the code path students use: a real server (gunicorn serving Anshim's WSGI app on a
fresh SQLite database), a published copy of the demo questionnaire, an open class session; 40
"phones" (threads, each with its own cookie jar and connection) start together, load the form
(GET /s/<code>/, which sets the CSRF cookie) and post their answers as the page's script does
(POST /s/<code>/submit/ with a random device key). Then each phone resends once, as after a
network drop. Targets: every phone done within 10 s, no error, exactly 40 sheets stored (the
resends acknowledged as duplicates); p50/p99 of the submissions printed.

    .venv/bin/python bench/bench_stats_class.py [--phones 40]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PHONES = 40
WINDOW_S = 10.0


@dataclass
class Target:  # the same fields as bench_stats.Target
    name: str
    value: str
    met: bool


@dataclass
class Phone:
    ok: bool = False
    resend_duplicate: bool = False
    submit_s: float = 0.0
    total_s: float = 0.0
    error: str = ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "anshim.config.settings",
            "ANSHIM_DATA_DIR": str(data_dir),
            "DATABASE_URL": f"sqlite:///{data_dir / 'bench.sqlite3'}",
            "ANSHIM_KEY_FILE": str(data_dir / "keyring.json"),
            # A throw-away local server with the development key (the startup check's rule).
            "ANSHIM_DEMO": "1"}


SETUP = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from anshim.prevention import demo, services
from anshim.prevention.models import School
from anshim.security.models import User
officer = User.objects.create_user(username="officer", password=None, role="prevention")
school = School.objects.create(name="Bench Middle", level="middle", district="d")
survey = services.create_survey(officer, title="bench", content=demo.survey_xlsform(),
                                filename="demo.xlsx")
version = services.publish_version(officer, survey.versions.get())
cs = services.open_class_session(officer, version, school=school, grade=8, expected=40,
                                 minutes=60)
print(cs.short_code)
"""

COUNT = """
import django
django.setup()
from anshim.prevention.models import Response
print(Response.objects.count())
"""


def _python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True, cwd=REPO)
    return done.stdout.strip().splitlines()[-1]


def _answers(i: int) -> dict[str, Any]:
    exposed = i % 5 == 0
    answers: dict[str, Any] = {"grade": 8, "sex": "female" if i % 2 else "male",
                               "exposed": "yes" if exposed else "no",
                               "measures": ["education"], "hours_online": 3}
    if exposed:
        answers.update(harm_types=["unsolicited"], action="blocked", reasons=["lack_info"])
    return answers


def _phone(base: str, code: str, i: int, start: threading.Barrier, out: Phone) -> None:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    start.wait()
    t0 = time.perf_counter()
    try:
        page = opener.open(f"{base}/s/{code}/", timeout=30).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, "no CSRF token on the form"
        key = secrets.token_urlsafe(24)
        body = json.dumps({"key": key, "answers": _answers(i)}).encode()

        def post() -> tuple[int, dict[str, Any]]:
            request = urllib.request.Request(
                f"{base}/s/{code}/submit/", data=body, method="POST",
                headers={"Content-Type": "application/json", "X-CSRFToken": token.group(1)})
            with opener.open(request, timeout=30) as response:
                return response.status, json.loads(response.read())

        t1 = time.perf_counter()
        status, reply = post()
        out.submit_s = time.perf_counter() - t1
        out.total_s = time.perf_counter() - t0
        out.ok = status == 201 and reply == {"ok": True, "duplicate": False}
        if not out.ok:
            out.error = f"{status} {reply}"
        status, reply = post()  # the resend after a network drop
        out.resend_duplicate = status == 200 and reply.get("duplicate") is True
    except (urllib.error.URLError, AssertionError, OSError, ValueError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"
        out.total_s = time.perf_counter() - t0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def run(phones: int = PHONES) -> list[Target]:
    print(f"\n== class session: {phones} phones submitting at once ==")
    with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
        env = _env(Path(tmp))
        code = _python(SETUP, env)
        port = _free_port()
        workers = str(max(2, min(8, len(os.sched_getaffinity(0)) * 2)))

        def all_cores() -> None:  # bench_stats pins itself to one core; the server may not be
            os.sched_setaffinity(0, range(os.cpu_count() or 1))

        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "anshim.config.wsgi:application", "--bind",
             f"127.0.0.1:{port}", "--workers", workers, "--threads", "4", "--log-level",
             "warning"], env=env, cwd=REPO, preexec_fn=all_cores)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                if server.poll() is not None:
                    raise RuntimeError("the bench server did not start (see its output above)")
                try:
                    urllib.request.urlopen(f"{base}/s/", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            # Warm every worker (imports, first connection) outside the measured window.
            for _ in range(int(workers) * 2):
                urllib.request.urlopen(f"{base}/s/{code}/", timeout=10).read()
            results = [Phone() for _ in range(phones)]
            barrier = threading.Barrier(phones + 1)
            threads = [threading.Thread(target=_phone, args=(base, code, i, barrier, results[i]))
                       for i in range(phones)]
            for t in threads:
                t.start()
            barrier.wait()
            t0 = time.perf_counter()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(timeout=30)
        stored = int(_python(COUNT, env))
    errors = [r.error for r in results if not r.ok]
    submits = [r.submit_s for r in results if r.ok]
    slowest = max((r.total_s for r in results), default=0.0)
    p50 = _percentile(submits, 0.50) if submits else float("nan")
    p99 = _percentile(submits, 0.99) if submits else float("nan")
    print(f"wall {wall:.2f} s (resends included), slowest phone {slowest:.2f} s, "
          f"submit p50 {1000 * p50:.0f} ms, p99 {1000 * p99:.0f} ms, errors {len(errors)}, "
          f"sheets stored {stored}")
    for e in errors[:5]:
        print("  error:", e)
    return [
        Target(f"class of {phones} phones: every phone done within {WINDOW_S:.0f} s",
               f"slowest {slowest:.2f} s, submit p99 {1000 * p99:.0f} ms",
               slowest < WINDOW_S and not errors),
        Target(f"class of {phones} phones: no errors, one sheet per phone, resends not stored",
               f"{len(errors)} errors, {stored} sheets, "
               f"{sum(r.resend_duplicate for r in results)} resends acknowledged as duplicates",
               not errors and stored == phones and all(r.resend_duplicate for r in results)),
    ]


def section(args: argparse.Namespace) -> list[Target]:
    return run(PHONES)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--phones", type=int, default=PHONES)
    targets = run(p.parse_args().phones)
    print("\n== targets ==")
    for t in targets:
        print(f"{'met ' if t.met else 'MISSED'}  {t.name}: {t.value}")
    return 0 if all(t.met for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
