"""Announce bank changes to partner webhooks once the change has committed."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save

from anshim.erasure.models import BankChange, ChangeOp


def _on_bank_change(sender: type[BankChange], instance: BankChange, created: bool,
                    **kwargs: Any) -> None:
    if created and instance.op in (ChangeOp.ADD, ChangeOp.WITHDRAW):
        from anshim.exchange.webhooks import schedule_dispatch

        # Dispatching is idempotent (a high-water mark per partner), so several changes in one
        # transaction queueing several dispatches only cost empty runs.
        transaction.on_commit(schedule_dispatch)


def _on_share_change(sender: type[Any], instance: Any, **kwargs: Any) -> None:
    from django.db.models import F

    from anshim.exchange.models import Partner

    Partner.objects.filter(pk=instance.partner_id).update(share_epoch=F("share_epoch") + 1)


def connect() -> None:
    from django.db.models.signals import post_delete

    from anshim.exchange.models import BankShare

    post_save.connect(_on_share_change, sender=BankShare,
                      dispatch_uid="anshim.exchange.share_epoch_save")
    post_delete.connect(_on_share_change, sender=BankShare,
                        dispatch_uid="anshim.exchange.share_epoch_delete")
    post_save.connect(_on_bank_change, sender=BankChange,
                      dispatch_uid="anshim.exchange.bank_change_webhooks")
