"""The change feed: additions and withdrawals of the banks shared with a partner, by seq.

Order and completeness come from the erasure change log (`BankChange`): its seq only grows and
writers serialise, so seq order is commit order and a reader resuming after seq N never misses a
change. A cursor is the last seq a partner has seen, signed so that a tampered or foreign cursor
is refused instead of silently skipping changes.

Compaction: withdrawal deletes an entry's fingerprints for good, so an addition whose entry has
since been withdrawn is left out of the feed (its withdrawal follows later in the feed). A
partner syncing from the start therefore never receives withdrawn fingerprints, and one that saw
the addition before the withdrawal deletes it when the withdrawal arrives. Either way it ends up
with exactly the current set. Clients must ignore a withdrawal of an entry they never held.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.core import signing

from anshim.erasure.models import Bank, BankChange, BankEntry, ChangeOp, Fingerprint
from anshim.exchange.models import BankShare, Partner

DEFAULT_PAGE = 500
MAX_PAGE = 1000
_CURSOR_SALT = "anshim.exchange.cursor"


class BadCursor(ValueError):
    """The cursor was not issued by this server for this partner."""


def _signer(partner: Partner) -> signing.Signer:
    # Bound to the partner: a cursor only means something within one partner's view.
    return signing.Signer(salt=f"{_CURSOR_SALT}.{partner.pk}")


class ResyncRequired(Exception):
    """The banks shared with the partner changed since the cursor was issued."""


def encode_cursor(partner: Partner, seq: int) -> str:
    return _signer(partner).sign_object([seq, partner.share_epoch], compress=False)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def decode_cursor(partner: Partner, cursor: str | None) -> int:
    """The seq to resume after; BadCursor if forged, ResyncRequired if the shares changed."""
    if not cursor:
        return 0
    if len(cursor) > 200:
        raise BadCursor("The cursor is too long.")
    try:
        value = _signer(partner).unsign_object(cursor)
    except (signing.BadSignature, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BadCursor("The cursor is malformed or was not issued to this partner.") from exc
    if not (isinstance(value, list) and len(value) == 2 and all(map(_is_count, value))):
        raise BadCursor("The cursor is malformed.")
    seq, epoch = value
    if epoch != partner.share_epoch:
        raise ResyncRequired(
            "The banks shared with you have changed: delete your copy and sync again from "
            "the start (without a cursor).")
    return int(seq)


@dataclass(frozen=True)
class FeedFingerprint:
    kind: str
    value: str


@dataclass(frozen=True)
class FeedItem:
    seq: int
    op: str
    entry_id: int
    bank: str
    at: dt.datetime
    fingerprints: list[FeedFingerprint] = field(default_factory=list)


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedItem]
    last_seq: int  # the seq to resume after (the input seq when nothing new was scanned)
    has_more: bool


def shared_bank_ids(partner: Partner) -> list[int]:
    return list(BankShare.objects.filter(partner=partner).values_list("bank_id", flat=True))


def read_feed(partner: Partner, after: int, limit: int = DEFAULT_PAGE) -> FeedPage:
    """The next changes after seq `after`, at most `limit` of them scanned."""
    limit = max(1, min(limit, MAX_PAGE))
    bank_ids = shared_bank_ids(partner)
    if not bank_ids:
        return FeedPage(items=[], last_seq=after, has_more=False)
    changes = list(
        BankChange.objects.filter(
            bank_id__in=bank_ids, op__in=(ChangeOp.ADD, ChangeOp.WITHDRAW), seq__gt=after,
            entry_id__isnull=False,
        ).order_by("seq").values_list("seq", "op", "entry_id", "bank_id", "at")[: limit + 1]
    )
    has_more = len(changes) > limit
    changes = changes[:limit]
    if not changes:
        return FeedPage(items=[], last_seq=after, has_more=False)

    added_ids = {int(entry_id) for _, op, entry_id, _, _ in changes
                 if op == ChangeOp.ADD and entry_id is not None}
    live = set(BankEntry.objects.filter(pk__in=added_ids).values_list("pk", flat=True))
    prints: dict[int, list[FeedFingerprint]] = defaultdict(list)
    for entry_id, kind, value in (
        # Partners get what helps them match at upload time: the original hashes and the
        # border-trimmed PDQ. The registered crop grid (issue 8) stays with us: hundreds of
        # hashes per picture that only pay off with our quality rules, so it is not sent.
        Fingerprint.objects.filter(entry_id__in=live)
        .exclude(variant__startswith="crop-").exclude(variant__startswith="trim-crop-")
        .order_by("entry_id", "pk")
        .values_list("entry_id", "kind", "value")
    ):
        prints[entry_id].append(FeedFingerprint(kind=kind, value=value))
    bank_names = dict(Bank.objects.filter(pk__in=bank_ids).values_list("pk", "name"))

    items: list[FeedItem] = []
    for seq, op, maybe_entry, bank_id, at in changes:
        entry_id = int(maybe_entry or 0)  # never None: filtered in the query
        if op == ChangeOp.ADD:
            if entry_id not in live:
                continue  # withdrawn since: compacted away, its withdrawal follows
            items.append(FeedItem(seq, op, entry_id, bank_names[bank_id], at, prints[entry_id]))
        else:
            items.append(FeedItem(seq, op, entry_id, bank_names[bank_id], at))
    return FeedPage(items=items, last_seq=changes[-1][0], has_more=has_more)


def latest_seq() -> int:
    last = BankChange.objects.order_by("-seq").values_list("seq", flat=True).first()
    return int(last or 0)
