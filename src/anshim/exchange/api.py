"""Partner platform API routes, mounted at /api/v1/exchange (see partner_api.py).

Thin views: authentication (auth.py), rate limit (ratelimit.py), then one call into the feed,
lookup or feedback services. Nothing here ever reads case data.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field as NinjaField
from ninja import Query, Router, Schema, Status

from anshim.exchange import feedback as feedback_service
from anshim.exchange import lookup as lookup_service
from anshim.exchange.auth import PartnerBearer, require_scope
from anshim.exchange.feed import (
    DEFAULT_PAGE,
    MAX_PAGE,
    BadCursor,
    decode_position,
    encode_position,
    read_position,
)
from anshim.exchange.hashlist import hash_list_lines
from anshim.exchange.models import Scope
from anshim.exchange.ratelimit import PartnerThrottle
from anshim.exchange.schemas import (
    ErrorOut,
    FeedbackIn,
    FeedbackOut,
    FeedPageOut,
    HashFeedbackIn,
    HashFeedbackOut,
    LookupIn,
    LookupOut,
    feed_page_payload,
)

router = Router(auth=PartnerBearer(), throttle=[PartnerThrottle()], tags=["exchange"])

# 400: unparseable body or bad cursor; 422: well-formed but invalid input.
_ERRORS: dict[int, type[Schema]] = {
    400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut, 429: ErrorOut,
}
# Bodies above DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB by default): 413 payload_too_large.
_POST_ERRORS: dict[int, type[Schema]] = {**_ERRORS, 413: ErrorOut}


class FeedQuery(Schema):
    cursor: str | None = NinjaField(
        None, max_length=200, pattern=r"^[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$",
        description="Opaque cursor from a previous page; omit to start.",
    )
    limit: int = NinjaField(DEFAULT_PAGE, ge=1, le=MAX_PAGE)


@router.get(
    "/fingerprints",
    response={200: FeedPageOut, **_ERRORS},
    summary="Change feed of the shared banks' fingerprints",
    operation_id="getFingerprints",
)
def fingerprints(request: HttpRequest, query: Query[FeedQuery]) -> Status[object]:
    """Additions and withdrawals in a stable order. Start without a cursor, then pass each
    page's `cursor` until `has_more` is false; keep the last cursor to follow new changes.
    A withdrawal of an entry you never received can be ignored. When the banks shared with
    you change, the next pages restate the difference (`resync: true`): withdrawals for the
    entries of banks no longer shared, additions for the entries of newly shared ones; no
    action is needed on your side. Allow-list banks come with `opinion: negative`."""
    partner = require_scope(request, Scope.READ)
    try:
        position = decode_position(partner, query.cursor)
    except BadCursor as exc:
        return Status(400, {"error": "bad_cursor", "detail": str(exc)})
    page = read_position(partner, position, query.limit)
    assert page.position is not None  # read_position always says where to go on
    return Status(200, feed_page_payload(page, encode_position(partner, page.position)))


@router.get(
    "/hashes",
    response={200: str, **_ERRORS},
    summary="The shared banks' current hashes as a threatexchange signal file",
    operation_id="getHashList",
    openapi_extra={"responses": {"200": {"description": "One `signal_type signal` per line.",
                                         "content": {"text/plain": {"schema": {
                                             "type": "string"}}}}}},
)
def hashes(request: HttpRequest) -> StreamingHttpResponse:
    """Every current hash to act on, one `signal_type signal` line each (`pdq`,
    `video_md5`, `video_sha256`, `vpdq`): the format of threatexchange's `LocalFile`
    collaboration, so the file loads with no code. Allow-lists (negatives) are left out."""
    partner = require_scope(request, Scope.READ)

    def lines() -> Iterator[bytes]:
        for line in hash_list_lines(partner):
            yield (line + "\n").encode("utf-8")

    response = StreamingHttpResponse(lines(), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="anshim-hashes.txt"'
    return response


@router.post(
    "/lookup",
    response={200: LookupOut, 503: ErrorOut, **_POST_ERRORS},
    summary="Check up to 1,000 PDQ, MD5, SHA-256 or vPDQ hashes against the shared banks",
    operation_id="lookupHashes",
    exclude_none=True,  # match percentages only where they mean something (vPDQ)
)
def lookup(request: HttpRequest, payload: LookupIn) -> Status[object]:
    """For each hash, the matching entry ids with their distances (PDQ: Hamming distance
    within each bank's threshold; MD5 and SHA-256: exact, distance 0; vPDQ: whole videos by
    the vPDQ rule, with match percentages). No case data is ever returned."""
    partner = require_scope(request, Scope.LOOKUP)
    hashes: list[tuple[str, str]] = [
        (h.kind, h.value if h.kind == "vpdq" else h.value.lower()) for h in payload.hashes]
    try:
        results = lookup_service.lookup(partner, hashes, payload.max_distance)
    except lookup_service.BadSignal as exc:
        return Status(422, {"error": "invalid_input", "detail": str(exc)})
    except lookup_service.MatcherUnavailable as exc:
        return Status(503, {"error": "matcher_unavailable", "detail": str(exc)})
    return Status(200, {"results": [
        {"kind": kind, "value": value,
         "matches": [{"entry_id": m.entry_id, "bank": m.bank, "distance": m.distance,
                      **({"query_percent": m.query_percent,
                          "compared_percent": m.compared_percent}
                         if m.query_percent is not None else {})}
                     for m in matches]}
        for (kind, value), matches in zip(hashes, results, strict=True)
    ]})


@router.post(
    "/feedback",
    response={201: FeedbackOut, 404: ErrorOut, **_POST_ERRORS},
    summary="Report what you did about a URL or one of our entries",
    operation_id="reportRemoval",
)
def feedback(request: HttpRequest, payload: FeedbackIn) -> Status[object]:
    """`removed`, `not_found` or `refused`, with when you acted. Updates our sightings (and
    takedown requests) of that URL or entry on your platform. A URL that is not on your
    platform, or an entry not in a bank shared with you, is 404."""
    partner = require_scope(request, Scope.FEEDBACK)
    try:
        item = feedback_service.record_feedback(
            partner, action=payload.action, url=payload.url or "", entry_id=payload.entry_id,
            reference=payload.reference, acted_at=payload.acted_at,
        )
    except feedback_service.NotInScope as exc:
        code = "unknown_entry" if payload.entry_id is not None and not payload.url else (
            "not_found")
        return Status(404, {"error": code, "detail": str(exc) if code == "unknown_entry"
                            else "Not found."})
    return Status(201, {"id": item.pk, "received_at": item.received_at})


@router.post(
    "/feedback/hashes",
    response={200: HashFeedbackOut, **_POST_ERRORS},
    summary="Per-hash opinions, in StopNCII's or NCMEC's vocabulary or ours",
    operation_id="reportHashOpinions",
)
def hash_feedback(request: HttpRequest, payload: HashFeedbackIn) -> Status[object]:
    """Up to 1,000 hashes, each with an opinion: `confirmed` / `Blocked` / `affirmative`
    (you acted on the match: your copies are gone), `disputed` / `NotBlocked` / `negative`
    (a false positive; say why in `reason`), `pending_review` / `PendingReview`, or `seen`.
    Each result is `recorded` or `not_found` (not a hash of a bank shared with you)."""
    partner = require_scope(request, Scope.FEEDBACK)
    opinions = [feedback_service.HashOpinion(
        kind=i.kind, value=i.value, opinion=i.opinion, acted_at=i.acted_at, reason=i.reason,
        reference=i.reference) for i in payload.items]
    try:
        results = feedback_service.record_hash_opinions(partner, opinions)
    except lookup_service.BadSignal as exc:
        return Status(422, {"error": "invalid_input", "detail": str(exc)})
    return Status(200, {"results": [
        {"status": r.status, "entry_ids": list(r.entry_ids)} for r in results]})
