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
    from django.db.models import F

    from anshim.exchange.lookup import forget_shared_banks
    from anshim.exchange.models import Partner
    from anshim.exchange.tokens import forget_cached_tokens

    Partner.objects.filter(pk=instance.partner_id).update(share_epoch=F("share_epoch") + 1)
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
