"""Signals of the cases app for the apps above it (the reports keep their summaries here).

`case_rows_updated` is sent by a domain action that writes case rows with a queryset
`.update()` (which sends no post_save), inside the writing transaction, with ``case_ids``
(the rows) and ``fields`` (the columns written). Receivers decide which columns matter to
them; the cases app knows nothing of them."""

from __future__ import annotations

from django.dispatch import Signal

case_rows_updated = Signal()
