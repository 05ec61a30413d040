"""Announce bank changes to partner webhooks, and drop this process's partner caches when
what they hold changes."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models.signals import post_delete, post_save

logger = logging.getLogger(__name__)


def _on_bank_changed(sender: Any, **kwargs: Any) -> None:
    """`anshim.erasure.signals.bank_changed`: sent after commit by every writer, bulk imports
    included, for additions, withdrawals and bank settings changes alike."""
    from anshim.exchange.lookup import forget_shared_banks
    from anshim.exchange.webhooks import schedule_dispatch

    forget_shared_banks()
    # Dispatching is idempotent (a high-water mark per partner): a settings change or several
    # changes in a row only cost empty runs, and a dispatch that could not be queued now is
    # caught up by the next one. The writer has committed: never fail it from here.
    try:
        schedule_dispatch()
    except Exception:
        logger.exception("could not queue the partner webhook dispatch")


def _on_share_change(sender: type[Any], instance: Any, **kwargs: Any) -> None:
    from django.db import transaction

    from anshim.exchange.lookup import forget_shared_banks
    from anshim.exchange.models import BankShare, Partner, ShareSnapshot
    from anshim.exchange.tokens import forget_cached_tokens

    if not kwargs.get("created", True):
        return  # a share saved again unchanged: the set of banks is the same
    origin = kwargs.get("origin")
    if isinstance(origin, Partner) or getattr(origin, "model", None) is Partner:
        return  # the partner itself is being deleted: nothing left to describe
    # The partner row lock orders concurrent share changes: each epoch gets exactly the set
    # of banks that was shared once its change was made (the feed diffs two such sets).
    with transaction.atomic():
        partner = Partner.objects.select_for_update().filter(pk=instance.partner_id).first()
        if partner is None:
            return  # the partner itself is being deleted (cascade)
        epoch = partner.share_epoch + 1
        Partner.objects.filter(pk=partner.pk).update(share_epoch=epoch)
        banks = sorted(BankShare.objects.filter(partner_id=partner.pk)
                       .values_list("bank_id", flat=True))
        ShareSnapshot.objects.create(partner_id=partner.pk, epoch=epoch, bank_ids=banks)
    forget_shared_banks()
    forget_cached_tokens()  # the cached Partner carries a share_epoch


def _on_partner_change(sender: type[Any], **kwargs: Any) -> None:
    from anshim.exchange.tokens import forget_cached_tokens

    forget_cached_tokens()


def connect() -> None:
    from anshim.erasure.signals import bank_changed
    from anshim.exchange.models import BankShare, Partner, PartnerToken

    post_save.connect(_on_share_change, sender=BankShare,
                      dispatch_uid="anshim.exchange.share_epoch_save")
    post_delete.connect(_on_share_change, sender=BankShare,
                        dispatch_uid="anshim.exchange.share_epoch_delete")
    bank_changed.connect(_on_bank_changed, dispatch_uid="anshim.exchange.bank_changed")
    # Scopes, rate, activity or a token's expiry edited (admin, services): refuse at once in
    # this process; other processes follow within tokens.CACHE_SECONDS.
    for model in (Partner, PartnerToken):
        for signal in (post_save, post_delete):
            signal.connect(_on_partner_change, sender=model,
                           dispatch_uid=f"anshim.exchange.forget_tokens_{signal is post_save}"
                                        f"_{model.__name__}")
