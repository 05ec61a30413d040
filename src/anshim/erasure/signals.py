"""Signals other apps may listen to (the partner exchange announces changes to webhooks).

`bank_changed` is sent once the transaction that added or withdrew entries has committed, for
every writer, bulk imports included (which send no per-row post_save). No arguments beyond
`sender` (the BankChange model): listeners read the change log from their own high-water mark.
"""

from __future__ import annotations

from django.dispatch import Signal

bank_changed = Signal()
