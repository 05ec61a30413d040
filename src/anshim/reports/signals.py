"""Keep the closed months' summary honest: a saved or deleted source row drops the summary
of the month(s) it counts in, inside the writer's transaction (readers read it live and queue
its rebuild for the worker).

Queryset updates send no post_save: the cases app's domain actions that update case rows say
so (`cases.signals.case_rows_updated`), and the columns the reports count drop the months
here. Other bulk writes: the nightly task (`reports.tasks.rebuild_summaries`, enqueued by
`anshim periodic`) rebuilds every closed month."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models.signals import post_delete, post_save


def _case_months(case_ids: list[int]) -> list[dt.datetime | None]:
    """The months a case's figures fall in: its intake, its notices, its sightings, its
    counseling contacts (counted by the case's victim and harm types)."""
    from anshim.cases.models import Case, Contact
    from anshim.erasure.models import Sighting, TakedownRequest

    moments: list[dt.datetime | None] = list(
        Case.objects.filter(pk__in=case_ids).values_list("created_at", flat=True))
    moments += TakedownRequest.objects.filter(case_id__in=case_ids).values_list(
        "sent_at", flat=True).distinct()
    moments += Sighting.objects.filter(case_id__in=case_ids).values_list(
        "first_seen", flat=True).distinct()
    moments += Contact.objects.filter(case_id__in=case_ids).values_list(
        "started_at", flat=True).distinct()
    return moments


def _request_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    from anshim.cases.models import Case
    from anshim.reports.summary import invalidate

    created = Case.objects.filter(pk=instance.case_id).values_list("created_at", flat=True)
    invalidate([instance.sent_at, *created])


def _sighting_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    from anshim.reports.summary import invalidate

    invalidate([instance.first_seen, instance.removed_at])


def _unblur_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    from anshim.reports.summary import invalidate

    invalidate([instance.at])


def _case_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    from anshim.reports.summary import invalidate

    if kwargs.get("created"):
        return  # a new case is in the open month: nothing cached counts it yet
    invalidate([instance.created_at, *_case_months([instance.pk])])


def _harm_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    from anshim.reports.summary import invalidate

    invalidate(_case_months([instance.case_id]))


def _person_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    from anshim.cases.models import Case
    from anshim.reports.summary import invalidate

    if kwargs.get("created"):
        return
    invalidate(_case_months(list(Case.objects.filter(person_id=instance.pk)
                                 .values_list("pk", flat=True))))


def _contact_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    from anshim.reports.summary import invalidate

    invalidate([instance.started_at])


def _created_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Referrals and expert assignments: counted by the month they were made."""
    from anshim.reports.summary import invalidate

    invalidate([instance.created_at])


#: the case columns a report counts (the summary: the intake month, the victim; the kept
#: annual tables: the offender's relationship too)
COUNTED_CASE_FIELDS = frozenset({"created_at", "person", "person_id", "offender_relationship"})


def _case_rows_updated(sender: Any, case_ids: list[int], fields: frozenset[str],
                       **kwargs: Any) -> None:
    from anshim.reports.summary import invalidate

    if fields & COUNTED_CASE_FIELDS:
        invalidate(_case_months(case_ids))


def connect() -> None:
    from anshim.cases.models import Case, CaseHarm, Contact, Person, Referral
    from anshim.cases.signals import case_rows_updated
    from anshim.erasure.models import Sighting, TakedownRequest, UnblurRecord
    from anshim.experts.models import Assignment

    for model, handler in ((TakedownRequest, _request_changed), (Sighting, _sighting_changed),
                           (UnblurRecord, _unblur_changed), (Case, _case_changed),
                           (CaseHarm, _harm_changed), (Person, _person_changed),
                           (Contact, _contact_changed), (Referral, _created_changed),
                           (Assignment, _created_changed)):
        uid = f"reports-summary-{model.__name__}"
        post_save.connect(handler, sender=model, dispatch_uid=uid)
        post_delete.connect(handler, sender=model, dispatch_uid=uid + "-delete")
    case_rows_updated.connect(_case_rows_updated, dispatch_uid="reports-summary-case-rows")
