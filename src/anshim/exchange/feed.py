"""The change feed: additions and withdrawals of the banks shared with a partner, by seq.

Order and completeness come from the erasure change log (`BankChange`): its seq only grows and
writers serialise, so seq order is commit order and a reader resuming after seq N never misses a
change. A cursor is signed so that a tampered or foreign cursor is refused instead of silently
skipping changes; it names a `Position`: the last seq its holder has seen and the share epoch
whose banks it holds (`ShareSnapshot`).

Compaction: withdrawal deletes an entry's fingerprints for good, so an addition whose entry has
since been withdrawn is left out of the feed (its withdrawal follows later in the feed). A
partner syncing from the start therefore never receives withdrawn fingerprints, and one that saw
the addition before the withdrawal deletes it when the withdrawal arrives. Either way it ends up
with exactly the current set. Clients must ignore a withdrawal of an entry they never held.

Share changes heal themselves (issue 18): when the banks shared with a partner change after its
cursor was issued, the next pages *restate* the difference before the feed goes on: a withdrawal
for every entry of a bank no longer shared and an addition for every live entry of a newly
shared bank, both up to the cursor's seq (later changes come in the ordinary feed). Restated
items carry `resync: true` and the seq of the change they restate. The cursor stays stateless
(the snapshots are in the database), so it survives restarts; it is signed with Django's
signing (SECRET_KEY, and SECRET_KEY_FALLBACKS while a secret key is rotated) and does not
depend on the encryption key ring, so `anshim keys rotate` leaves it valid.

What is never shared (issue 16): PDQ hashes (and vPDQ frames) of quality below 50 (Meta's rule:
such hashes are too unreliable to act on, and threatexchange's matcher refuses them) and the
registered crop grid. Allow-list banks are published as a *negative* list (`opinion:
"negative"`): hashes of known false positives, never hashes to act on.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field

from django.core import signing
from django.utils import timezone

from anshim.erasure.models import (
    Bank,
    BankChange,
    BankEntry,
    BankPurpose,
    ChangeOp,
    Fingerprint,
    FingerprintKind,
)
from anshim.exchange.models import BankShare, Partner, ShareSnapshot

DEFAULT_PAGE = 500
MAX_PAGE = 1000
_CURSOR_SALT = "anshim.exchange.cursor"
#: Meta's PDQ rule: a hash of quality below this is discarded, never shared.
MIN_SHARED_QUALITY = 50
#: vPDQ timestamps as threatexchange serialises them (``f"{t:.3}"``, VPDQ_TIMESTAMP_PRECISION).
_VPDQ_TIMESTAMP_FORMAT = ".3"


class BadCursor(ValueError):
    """The cursor was not issued by this server for this partner."""


def _signer(partner: Partner) -> signing.Signer:
    # Bound to the partner: a cursor only means something within one partner's view.
    return signing.Signer(salt=f"{_CURSOR_SALT}.{partner.pk}")


@dataclass(frozen=True, slots=True)
class Position:
    """Where a cursor's holder is: it has every change up to `seq` of the banks of epoch
    `held`. While `target` differs from `held`, a resync towards epoch `target` is under way
    and has restated the additions up to seq `restated`."""

    seq: int
    held: int
    target: int
    restated: int = 0

    @property
    def resyncing(self) -> bool:
        return self.held != self.target


def encode_position(partner: Partner, position: Position) -> str:
    value = [position.seq, position.held, position.target, position.restated]
    return _signer(partner).sign_object(value, compress=False)


def encode_cursor(partner: Partner, seq: int) -> str:
    """A cursor after `seq` in the partner's current view (webhooks, the end of a page)."""
    return encode_position(partner, Position(seq, partner.share_epoch, partner.share_epoch))


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def decode_position(partner: Partner, cursor: str | None) -> Position | None:
    """The position a cursor names; None for no cursor (start). BadCursor if forged."""
    if not cursor:
        return None
    if len(cursor) > 200:
        raise BadCursor("The cursor is too long.")
    try:
        value = _signer(partner).unsign_object(cursor)
    except (signing.BadSignature, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BadCursor("The cursor is malformed or was not issued to this partner.") from exc
    if not (isinstance(value, list) and len(value) in (2, 4) and all(map(_is_count, value))):
        raise BadCursor("The cursor is malformed.")
    if len(value) == 2:  # issued before issue 18: [seq, epoch]
        return Position(value[0], value[1], value[1])
    return Position(*value)


def decode_cursor(partner: Partner, cursor: str | None) -> int:
    """The seq a cursor resumes after (0 without one)."""
    position = decode_position(partner, cursor)
    return 0 if position is None else position.seq


@dataclass(frozen=True)
class FeedFingerprint:
    kind: str
    value: str
    quality: int | None = None
    variant: str = "original"
    decode: str = ""
    engine: str = ""
    frames: int | None = None  # vPDQ: how many frames the value holds


@dataclass(frozen=True)
class FeedItem:
    seq: int
    op: str
    entry_id: int
    bank: str
    at: dt.datetime
    fingerprints: list[FeedFingerprint] = field(default_factory=list)
    purpose: str = ""
    media_kind: str = ""
    resync: bool = False

    @property
    def opinion(self) -> str:
        return "negative" if self.purpose == BankPurpose.ALLOW_LIST else "positive"


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedItem]
    last_seq: int  # the seq to resume after (the input seq when nothing new was scanned)
    has_more: bool
    position: Position | None = None  # where the next page starts (read_position only)
    as_of: dt.datetime | None = None  # every change up to this time is in the holder's copy


def shared_bank_ids(partner: Partner) -> list[int]:
    return list(BankShare.objects.filter(partner=partner).values_list("bank_id", flat=True))


def banks_at(partner: Partner, epoch: int) -> set[int] | None:
    """The banks shared with `partner` as of `epoch`; None when no snapshot says (a cursor of
    an epoch older than the snapshots: the resync then restates every bank)."""
    if epoch == 0:
        return set()  # a partner is created before any bank is shared with it
    ids = ShareSnapshot.objects.filter(partner=partner, epoch=epoch).values_list(
        "bank_ids", flat=True).first()
    return None if ids is None else {int(i) for i in ids}


def _vpdq_value(frames: list[tuple[str, int | None, float | None]]) -> str:
    """threatexchange's VPDQSignal string: a JSON list of "pdq,quality,timestamp"."""
    return json.dumps(
        [f"{pdq},{quality if quality is not None else 100},"
         f"{float(timestamp or 0.0):{_VPDQ_TIMESTAMP_FORMAT}}"
         for pdq, quality, timestamp in frames],
        separators=(",", ":"),
    )


def shared_fingerprints(entry_ids: set[int]) -> dict[int, list[FeedFingerprint]]:
    """What partners get of each entry: the hashes that help them match at upload time."""
    prints: dict[int, list[FeedFingerprint]] = defaultdict(list)
    frames: dict[int, list[tuple[str, int | None, float | None]]] = defaultdict(list)
    frame_meta: dict[int, tuple[str, str]] = {}
    for entry_id, kind, value, quality, variant, decode, engine, ts in (
        # The registered crop grid (issue 8) stays with us: hundreds of hashes per picture
        # that only pay off with our quality rules.
        Fingerprint.objects.filter(entry_id__in=entry_ids)
        .exclude(variant__startswith="crop-").exclude(variant__startswith="trim-crop-")
        .order_by("entry_id", "frame_number", "pk")
        .values_list("entry_id", "kind", "value", "quality", "variant", "decode", "engine",
                     "timestamp")
    ):
        low = quality is not None and quality < MIN_SHARED_QUALITY
        if kind == FingerprintKind.VPDQ:
            if not low:
                frames[entry_id].append((value, quality, ts))
                frame_meta.setdefault(entry_id, (decode, engine))
            continue
        if kind == FingerprintKind.PDQ and low:
            continue
        prints[entry_id].append(FeedFingerprint(kind, value, quality, variant, decode, engine))
    for entry_id, entry_frames in frames.items():
        decode, engine = frame_meta[entry_id]
        prints[entry_id].append(FeedFingerprint(
            FingerprintKind.VPDQ, _vpdq_value(entry_frames), None, "original", decode, engine,
            frames=len(entry_frames)))
    return prints


def _items(
    rows: list[tuple[int, str, int, int, dt.datetime]], add_banks: set[int] | None,
    withdraw_banks: set[int], *, resync: bool,
) -> list[FeedItem]:
    """Feed items of change rows (seq, op, entry_id, bank_id, at). An ADD becomes an addition
    when its bank is in `add_banks` (None: every bank) and its entry is still live, and a
    withdrawal when its bank is in `withdraw_banks`; a WITHDRAW is always a withdrawal."""
    added = {int(e) for _, op, e, b, _ in rows
             if op == ChangeOp.ADD and (add_banks is None or b in add_banks)}
    live_entries = dict(BankEntry.objects.filter(pk__in=added).values_list("pk", "media_kind"))
    prints = shared_fingerprints(set(live_entries))
    banks = {pk: (name, purpose) for pk, name, purpose in Bank.objects.filter(
        pk__in={b for _, _, _, b, _ in rows}).values_list("pk", "name", "purpose")}
    items: list[FeedItem] = []
    for seq, op, entry_id, bank_id, at in rows:
        name, purpose = banks[bank_id]
        if op == ChangeOp.ADD and bank_id not in withdraw_banks:
            if entry_id not in live_entries:
                continue  # withdrawn since (compacted away) or a bank not to add
            items.append(FeedItem(seq, "add", entry_id, name, at, prints[entry_id], purpose,
                                  live_entries[entry_id], resync))
        else:
            items.append(FeedItem(seq, "withdraw", entry_id, name, at, [], purpose, "",
                                  resync))
    return items


def _changes(bank_ids: set[int], ops: tuple[str, ...], after: int, up_to: int | None,
             limit: int) -> list[tuple[int, str, int, int, dt.datetime]]:
    query = BankChange.objects.filter(bank_id__in=bank_ids, op__in=ops, seq__gt=after,
                                      entry_id__isnull=False)
    if up_to is not None:
        query = query.filter(seq__lte=up_to)
    return [(seq, op, int(entry_id or 0), bank_id, at)  # never None: filtered above
            for seq, op, entry_id, bank_id, at in
            query.order_by("seq").values_list("seq", "op", "entry_id", "bank_id", "at")
            [: limit + 1]]


def read_feed(partner: Partner, after: int, limit: int = DEFAULT_PAGE,
              bank_ids: set[int] | None = None) -> FeedPage:
    """The next changes after seq `after` of the banks shared now (or `bank_ids`), at most
    `limit` of them scanned."""
    limit = max(1, min(limit, MAX_PAGE))
    banks = set(shared_bank_ids(partner)) if bank_ids is None else bank_ids
    if not banks:
        return FeedPage(items=[], last_seq=after, has_more=False)
    changes = _changes(banks, (ChangeOp.ADD, ChangeOp.WITHDRAW), after, None, limit)
    has_more = len(changes) > limit
    changes = changes[:limit]
    if not changes:
        return FeedPage(items=[], last_seq=after, has_more=False)
    return FeedPage(items=_items(changes, None, set(), resync=False),
                    last_seq=changes[-1][0], has_more=has_more,
                    as_of=None if has_more else changes[-1][4])


def read_position(partner: Partner, position: Position | None,
                  limit: int = DEFAULT_PAGE) -> FeedPage:
    """The page after `position` (None: from the start), healing share changes."""
    limit = max(1, min(limit, MAX_PAGE))
    # The epoch is read before the banks: a share change committed in between makes the next
    # page restate it, never skip it.
    current = int(Partner.objects.filter(pk=partner.pk).values_list(
        "share_epoch", flat=True).first() or 0)
    if position is None:
        position = Position(0, current, current)
    if not position.resyncing and position.held != current:
        position = Position(position.seq, position.held, current)
    if position.resyncing:
        return _resync_page(partner, position, limit)
    banks = banks_at(partner, current)
    page = read_feed(partner, position.seq, limit, bank_ids=banks)
    now = timezone.now()
    return FeedPage(page.items, page.last_seq, page.has_more,
                    Position(page.last_seq, current, current),
                    None if page.has_more else now)


def _resync_page(partner: Partner, position: Position, limit: int) -> FeedPage:
    held = banks_at(partner, position.held)
    target = banks_at(partner, position.target) or set()
    if held is None:
        # An epoch without a snapshot (a cursor that already needed a resync before snapshots
        # existed): restate every bank this partner is known to have had. Never banks it was
        # not shared: even a withdrawal names a bank and an entry.
        ever: set[int] = set()
        for ids in ShareSnapshot.objects.filter(partner=partner).values_list(
                "bank_ids", flat=True):
            ever.update(int(i) for i in ids)
        withdraw, add = ever - target, set(target)
    else:
        withdraw, add = held - target, target - held
    # A bank unshared since the target epoch gets no additions now: the next resync (towards
    # the current epoch) withdraws all of it.
    add &= set(shared_bank_ids(partner))
    changes = _changes(withdraw | add, (ChangeOp.ADD,), position.restated, position.seq, limit)
    more = len(changes) > limit
    changes = changes[:limit]
    items = _items(changes, add, withdraw, resync=True)
    if more:
        after = Position(position.seq, position.held, position.target, changes[-1][0])
    else:
        after = Position(position.seq, position.target, position.target)
    # has_more stays true after the last restated page: the ordinary feed goes on from seq.
    return FeedPage(items, position.seq, True, after, None)


def latest_seq() -> int:
    last = BankChange.objects.order_by("-seq").values_list("seq", flat=True).first()
    return int(last or 0)
