"""Races on PostgreSQL (issue 17, items 4-6): two people or two workers at once change a
request, a sighting, a delivery or the banks once, in one lock order, without deadlocks.

SQLite serialises writers (every transaction is BEGIN IMMEDIATE), so there is no row lock to
race for there: these tests run on PostgreSQL only (`make test` runs that pass).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.test import override_settings
from django.utils import timezone

from anshim.cases.models import ConsentScope
from anshim.cases.services import withdraw_consent
from anshim.erasure import takedowns
from anshim.erasure.models import (
    BankEntry,
    DeliveryState,
    EntrySource,
    Sighting,
    TakedownDelivery,
    TakedownEvent,
    TakedownRequest,
    TakedownState,
)
from anshim.erasure.services import register_fingerprints
from anshim.erasure.sightings import mark_removed
from anshim.fingerprint import fingerprint_bytes

from .media import picture_bytes
from .takedown_support import email_platform, give_contact_consent, one_draft
from .workflow_support import smtp_server

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="SQLite serialises writers: there are no row locks to race for"),
]
S = TakedownState
ROUNDS = 4


@pytest.fixture(autouse=True)
def immediate(settings: Any, tmp_path: Path) -> None:
    settings.ANSHIM_EVIDENCE_KEY_FILE = str(tmp_path / "evidence.pem")
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}


def race(*jobs: Callable[[], Any]) -> list[Any]:
    """Run the jobs in threads released together; each result or the exception it raised."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = job()
        except Exception as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_two_approvals_at_once_send_one_notice(make_case: Any, make_user: Any) -> None:
    specialists = [make_user("erasure"), make_user("erasure")]
    email_platform()
    with smtp_server() as (inbox, mailers), override_settings(MAILERS=mailers):
        for round_ in range(ROUNDS):
            case = make_case()
            give_contact_consent(case)
            req = one_draft(case, specialists[0], page=f"http://dom.test/p/{round_}",
                            entry=round_ + 1)
            results = race(*(lambda who=who, pk=req.pk: takedowns.approve_and_send(
                TakedownRequest.objects.get(pk=pk), actor=who) for who in specialists))
            ok = [r for r in results if isinstance(r, TakedownRequest)]
            refused = [r for r in results if isinstance(r, ValidationError)]
            assert len(ok) == 1 and len(refused) == 1, results
            assert TakedownDelivery.objects.filter(request=req).count() == 1
        assert len(inbox.messages) == ROUNDS
    assert TakedownEvent.objects.filter(from_state=S.DRAFT, to_state=S.SENT).count() == ROUNDS


def test_two_schedulers_resending_at_once_send_one_notice(make_case: Any,
                                                          make_user: Any) -> None:
    specialist = make_user("erasure")
    email_platform()
    case = make_case()
    give_contact_consent(case)
    req = one_draft(case, specialist)
    t0 = timezone.now() - dt.timedelta(days=3)
    with smtp_server() as (inbox, mailers), override_settings(MAILERS=mailers):
        takedowns.approve_and_send(req, actor=specialist, at=t0)
        later = t0 + dt.timedelta(hours=25)
        results = race(*(lambda: takedowns.resend_due_requests(now=later) for _ in range(3)))
        assert sorted(len(r) for r in results) == [0, 0, 1], results
        assert len(inbox.messages) == 2
    req.refresh_from_db()
    assert req.send_count == 2 and req.deliveries.count() == 2


def test_two_workers_on_one_delivery_send_it_once(make_case: Any, make_user: Any,
                                                  settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    specialist = make_user("erasure")
    email_platform()
    case = make_case()
    give_contact_consent(case)
    req = one_draft(case, specialist)
    takedowns.approve_and_send(req, actor=specialist)
    delivery = TakedownDelivery.objects.get()
    with smtp_server() as (inbox, mailers), override_settings(MAILERS=mailers):
        results = race(*(lambda: takedowns.run_delivery(delivery.pk) for _ in range(3)))
    assert results.count("delivered") == 1, results
    assert len(inbox.messages) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryState.DELIVERED and delivery.attempts == 1


def test_two_answers_at_once_one_wins(make_case: Any, make_user: Any) -> None:
    specialist = make_user("erasure")
    email_platform()
    for round_ in range(ROUNDS):
        case = make_case()
        give_contact_consent(case)
        req = one_draft(case, specialist, page=f"http://dom.test/a/{round_}", entry=round_ + 1)
        takedowns.approve_and_send(req, actor=specialist)
        results = race(*(lambda pk=req.pk: takedowns.record_response(
            TakedownRequest.objects.get(pk=pk), S.REMOVED, actor=specialist)
            for _ in range(2)))
        assert sum(isinstance(r, ValidationError) for r in results) == 1, results
        assert TakedownEvent.objects.filter(request=req, to_state=S.REMOVED).count() == 1


def test_two_verifiers_remove_a_sighting_once(make_case: Any, make_user: Any) -> None:
    specialist = make_user("erasure")
    email_platform()
    case = make_case()
    give_contact_consent(case)
    req = one_draft(case, specialist)
    takedowns.approve_and_send(req, actor=specialist)
    pk = Sighting.objects.get().pk
    results = race(*(lambda: mark_removed(Sighting.objects.get(pk=pk), reason="page_gone")
                     for _ in range(3)))
    assert sorted(results) == [False, False, True], results
    assert TakedownEvent.objects.filter(request=req, to_state=S.REMOVED).count() == 1


def test_consent_withdrawal_and_bank_writes_take_locks_in_one_order(
        make_case: Any, make_user: Any, bank: Any) -> None:
    """withdraw_consent (fingerprints) writes its audit entry and withdraws entries;
    register_fingerprints and withdraw_entries take the change-log lock and audit. With the
    audit head taken first on one side and the change-log lock first on the other, these
    deadlock; with one order (change log, rows, audit head last) they all finish."""
    supervisor = make_user("supervisor")
    for round_ in range(ROUNDS):
        victim = make_case()
        other = make_case()
        for seed in (3 * round_, 3 * round_ + 1):
            register_fingerprints(bank, case=victim, source=EntrySource.STAFF_EVIDENCE,
                                  actor=None, fingerprints=fingerprint_bytes(
                                      picture_bytes(1000 + seed)))
        spare = register_fingerprints(bank, case=other, source=EntrySource.STAFF_EVIDENCE,
                                      actor=None, fingerprints=fingerprint_bytes(
                                          picture_bytes(2000 + round_)))
        from anshim.erasure.services import withdraw_entries

        results = race(
            lambda victim=victim: withdraw_consent(supervisor, victim,
                                                   ConsentScope.REGISTER_FINGERPRINTS),
            lambda other=other, round_=round_: register_fingerprints(
                bank, case=other, source=EntrySource.STAFF_EVIDENCE, actor=None,
                fingerprints=fingerprint_bytes(picture_bytes(3000 + round_))),
            lambda spare=spare: withdraw_entries([spare.pk], actor=None),
        )
        assert not [r for r in results if isinstance(r, Exception)], results
        assert not BankEntry.objects.filter(case=victim).exists()
