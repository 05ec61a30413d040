"""Partner platform API, mounted at /api/v1/exchange.

Thin views: authentication (auth.py), rate limit (ratelimit.py), then one call into the feed,
lookup or feedback services. Nothing here ever reads case data.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Field as NinjaField
from ninja import Query, Router, Schema, Status

from anshim.exchange import feedback as feedback_service
from anshim.exchange import lookup as lookup_service
from anshim.exchange.auth import PartnerBearer, require_scope
from anshim.exchange.feed import (
    DEFAULT_PAGE,
    MAX_PAGE,
    BadCursor,
    ResyncRequired,
    decode_cursor,
    encode_cursor,
)
from anshim.exchange.feed import read_feed as read_feed_service
from anshim.exchange.models import Scope
from anshim.exchange.ratelimit import PartnerThrottle
from anshim.exchange.schemas import (
    ErrorOut,
    FeedbackIn,
    FeedbackOut,
    FeedPageOut,
    LookupIn,
    LookupOut,
    feed_page_payload,
)

router = Router(auth=PartnerBearer(), throttle=[PartnerThrottle()], tags=["exchange"])

# 400: unparseable body or bad cursor; 422: well-formed but invalid input.
_ERRORS: dict[int, type[Schema]] = {
    400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut, 429: ErrorOut,
}


class FeedQuery(Schema):
    cursor: str | None = NinjaField(
        None, max_length=200, pattern=r"^[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$",
        description="Opaque cursor from a previous page; omit to start.",
    )
    limit: int = NinjaField(DEFAULT_PAGE, ge=1, le=MAX_PAGE)


@router.get(
    "/fingerprints",
    response={200: FeedPageOut, 409: ErrorOut, **_ERRORS},
    summary="Change feed of the shared banks' fingerprints",
)
def fingerprints(request: HttpRequest, query: Query[FeedQuery]) -> Status[object]:
    """Additions and withdrawals in a stable order. Start without a cursor, then pass each
    page's `cursor` until `has_more` is false; keep the last cursor to follow new changes.
    A withdrawal of an entry you never received (withdrawn before you synced) can be ignored.
    409 `resync_required`: the banks shared with you changed since that cursor was issued;
    delete your copy and start again without a cursor."""
    partner = require_scope(request, Scope.READ)
    try:
        after = decode_cursor(partner, query.cursor)
    except BadCursor as exc:
        return Status(400, {"error": "bad_cursor", "detail": str(exc)})
    except ResyncRequired as exc:
        return Status(409, {"error": "resync_required", "detail": str(exc)})
    page = read_feed_service(partner, after, query.limit)
    return Status(200, feed_page_payload(page, encode_cursor(partner, page.last_seq)))


@router.post(
    "/lookup",
    response={200: LookupOut, 503: ErrorOut, **_ERRORS},
    summary="Check up to 1,000 PDQ or MD5 hashes against the shared banks",
)
def lookup(request: HttpRequest, payload: LookupIn) -> Status[object]:
    """For each hash, the matching entry ids with their distances (PDQ: Hamming distance
    within each bank's threshold; MD5: exact, distance 0). No case data is ever returned."""
    partner = require_scope(request, Scope.LOOKUP)
    hashes: list[tuple[str, str]] = [(h.kind, h.value.lower()) for h in payload.hashes]
    try:
        results = lookup_service.lookup(partner, hashes, payload.max_distance)
    except lookup_service.MatcherUnavailable as exc:
        return Status(503, {"error": "matcher_unavailable", "detail": str(exc)})
    return Status(200, {"results": [
        {"kind": kind, "value": value,
         "matches": [{"entry_id": m.entry_id, "bank": m.bank, "distance": m.distance}
                     for m in matches]}
        for (kind, value), matches in zip(hashes, results, strict=True)
    ]})


@router.post(
    "/feedback",
    response={201: FeedbackOut, 404: ErrorOut, **_ERRORS},
    summary="Report what you did about a URL or one of our entries",
)
def feedback(request: HttpRequest, payload: FeedbackIn) -> Status[object]:
    """`removed`, `not_found` or `refused`, with when you acted. Updates our takedown requests
    and sightings for that URL or entry."""
    partner = require_scope(request, Scope.FEEDBACK)
    try:
        item = feedback_service.record_feedback(
            partner, action=payload.action, url=payload.url or "", entry_id=payload.entry_id,
            reference=payload.reference, acted_at=payload.acted_at,
        )
    except feedback_service.UnknownEntry as exc:
        return Status(404, {"error": "unknown_entry", "detail": str(exc)})
    return Status(201, {"id": item.pk, "received_at": item.received_at})
