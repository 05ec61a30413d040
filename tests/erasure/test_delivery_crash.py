"""A worker killed while a notice is on the wire (issue 17, item 4; crash tests kill real
processes): the delivery stays claimed, is taken over once the claim is stale, and the copy
it sends carries the same idempotency key, so the platform can tell it is one notice.

PostgreSQL only: the killed worker is a separate process on the same database (the SQLite
test database lives in this process's memory)."""

from __future__ import annotations

import datetime as dt
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from anshim.erasure import takedowns
from anshim.erasure.models import DeliveryState, TakedownDelivery

from .takedown_support import give_contact_consent, one_draft, partner_platform

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="the worker process needs a database it can share"),
]

WORKER = ("import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE'] = "
          "'anshim.config.settings'; django.setup(); "
          "from anshim.erasure.takedowns import run_delivery; "
          "print(run_delivery(int(sys.argv[1])))")


def test_a_worker_killed_mid_send_is_taken_over_with_the_same_key(
        make_case: Any, make_user: Any, settings: Any, tmp_path: Path) -> None:
    settings.ANSHIM_EVIDENCE_KEY_FILE = str(tmp_path / "evidence.pem")
    keys: list[str] = []
    answer = threading.Event()  # the platform hangs until this is set

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            keys.append(self.headers[takedowns.IDEMPOTENCY_HEADER])
            answer.wait(timeout=60)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        partner_platform(f"http://127.0.0.1:{server.server_address[1]}/takedown")
        case = make_case()
        give_contact_consent(case)
        specialist = make_user("erasure")
        takedowns.approve_and_send(one_draft(case, specialist, page="http://partner.test/1"),
                                   actor=specialist)
        delivery = TakedownDelivery.objects.get()
        db = connection.settings_dict
        env = {**os.environ, "DATABASE_URL":
               f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
        worker = subprocess.Popen([sys.executable, "-c", WORKER, str(delivery.pk)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not keys and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.05)
        assert keys, worker.communicate()
        worker.send_signal(signal.SIGKILL)  # dies with the notice on the wire
        worker.wait(timeout=30)
        delivery.refresh_from_db()
        assert delivery.status == DeliveryState.SENDING and delivery.attempts == 1
        # Not stale yet: another worker leaves it alone.
        assert takedowns.run_delivery(delivery.pk) == "sending"
        answer.set()
        later = timezone.now() + takedowns.STALE_CLAIM + dt.timedelta(minutes=1)
        assert takedowns.run_delivery(delivery.pk, now=later) == "delivered"
    finally:
        answer.set()
        server.shutdown()
        server.server_close()
    assert keys == [delivery.idempotency_key] * 2
    delivery.refresh_from_db()
    assert delivery.status == DeliveryState.DELIVERED and delivery.attempts == 2
