"""The marker of "anything the prevention analyses read has changed" (`AnalysisStamp`).

`analysis.survey_results` and `analysis.test_results` read schools (level, district), sampled
schools, surveys (population margins), survey versions, class sessions (grade, school),
responses, knowledge tests and test scores. Every write to one of those renews the stamp's
token inside the writer's transaction, so the data and the marker commit (or roll back)
together:

- saves and deletes through the ORM (forms, services, the admin, cascades) by the receivers
  `connect` registers from the app's `ready()`;
- writes that send no signals (`bulk_create`, `QuerySet.update()`) by calling `renew()`
  beside them (services.add_scores, services.save_design, demo.load).

A reader takes the token first and reads the inputs after it (`analysis._memo`): whatever it
then computes is at least as new as the token, and a change committed meanwhile has already
replaced the token it keys its result under.

The row is created by the migration; where it is missing (a flushed test database) the token
reads as None, which means "keep nothing", and the next renewal creates it.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

STAMP_PK = 1


def token() -> uuid.UUID | None:
    """The current token (one primary-key read); None: no stamp row, nothing may be kept."""
    from anshim.prevention.models import AnalysisStamp

    value: uuid.UUID | None = (AnalysisStamp.objects.filter(pk=STAMP_PK)
                               .values_list("token", flat=True).first())
    return value


def renew() -> None:
    """A new random token, written in the caller's transaction (autocommit outside one)."""
    from anshim.prevention.models import AnalysisStamp

    values = {"token": uuid.uuid4(), "changed_at": timezone.now()}
    if AnalysisStamp.objects.filter(pk=STAMP_PK).update(**values):
        return
    try:
        # A savepoint, so that losing the race below leaves the caller's transaction usable.
        with transaction.atomic():
            AnalysisStamp.objects.create(pk=STAMP_PK, **values)
    except IntegrityError:
        # Another writer created the row first: its insert held ours until it committed
        # (PostgreSQL) or it came before us (SQLite writes one at a time); the row is there.
        AnalysisStamp.objects.filter(pk=STAMP_PK).update(**values)


def _changed(sender: type, **kwargs: Any) -> None:
    renew()


def connect() -> None:
    """Renew on every save and delete of an analysis input (called from the app's ready())."""
    from anshim.prevention import models as m

    for model in (m.School, m.SampledSchool, m.Survey, m.SurveyVersion, m.ClassSession,
                  m.Response, m.KnowledgeTest, m.TestScore):
        label = model._meta.label
        post_save.connect(_changed, sender=model, dispatch_uid=f"analysis-stamp-save-{label}")
        post_delete.connect(_changed, sender=model,
                            dispatch_uid=f"analysis-stamp-delete-{label}")
