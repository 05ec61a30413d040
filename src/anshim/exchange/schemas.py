"""Request and response shapes of the partner API (they are the OpenAPI document)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    field_validator,
    model_validator,
)

from anshim.exchange.feed import FeedPage

MAX_LOOKUP = 1000
#: Free text without control characters (tab and newlines allowed): what the server's input
#: filter (anshim.security.textinput) lets through, said in the schema.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
_FRAME = r'"[0-9a-fA-F]{64},(100|[1-9]?[0-9]),[0-9]{1,9}(\.[0-9]{1,9})?(e[+-]?[0-9]{1,2})?"'
#: threatexchange's VPDQSignal string: a JSON list of "pdq,quality,timestamp" frames.
_WS = r"[ \t\n\r]*"  # JSON's whitespace (not \s: that admits \v and \f)
VPDQ_PATTERN = rf"^{_WS}\[{_WS}{_FRAME}({_WS},{_WS}{_FRAME})*{_WS}\]{_WS}$"
#: Request bodies refuse unknown fields (documented as additionalProperties: false).
_STRICT = ConfigDict(extra="forbid")


def _json_integer(value: Any) -> Any:
    # JSON Schema's integer admits 20.0 but never true/false or "20"; pydantic's lax int takes
    # all three: refuse what the published schema refuses.
    if isinstance(value, bool):
        raise ValueError("expected an integer, not a boolean")
    if isinstance(value, str | bytes):
        raise ValueError("expected an integer, not a string")
    return value


Distance = Annotated[int, Field(ge=0, le=64), BeforeValidator(_json_integer)]
EntryId = Annotated[int, Field(ge=1, le=2**63 - 1), BeforeValidator(_json_integer)]


# Items that come by the thousand are plain pydantic models: ninja's Schema adds a Django-aware
# validator per object that costs more than the whole lookup at this size.


ErrorCode = Literal[
    "invalid_input", "bad_cursor", "unauthorized", "token_expired", "token_revoked",
    "partner_inactive", "insufficient_scope", "rate_limited", "not_found", "unknown_entry",
    "matcher_unavailable", "resync_required", "payload_too_large",
]


class ErrorOut(Schema):
    error: ErrorCode = Field(..., description="Stable machine-readable code.")
    detail: Any = Field(..., description="What went wrong, for people.")


class FingerprintOut(BaseModel):
    kind: Literal["pdq", "md5", "sha256", "vpdq"] = Field(
        ..., description="pdq, md5, sha256: lowercase hex. vpdq: one whole video as "
                         "threatexchange's VPDQSignal string (a JSON list of "
                         "\"pdq,quality,timestamp\" frames).")
    value: str
    quality: int | None = Field(None, description="PDQ quality 0-100 (never below 50: such "
                                                  "hashes are not shared); null if unknown.")
    variant: str = Field("original", description="original, a dihedral name or trim.")
    decode: str = Field("", description="exact or reduced: how the media was decoded. Weigh "
                                        "reduced-decode hashes less (they may be a few bits "
                                        "further from a reference hash of the same file).")
    engine: str = Field("", description="The engine (name/version) that made the hash; "
                                        "empty for imported lists.")
    frames: int | None = Field(None, description="vpdq: the number of frames in the value.")


class FeedItemOut(BaseModel):
    seq: int = Field(..., description="The change this item stems from. Increasing, except "
                                      "in items with `resync` true, which restate older "
                                      "changes after the banks shared with you changed.")
    op: Literal["add", "withdraw"]
    entry_id: int
    bank: str
    purpose: Literal["victim_images", "evidence", "imported_list", "partner_list",
                     "allow_list"] = Field(..., description="The bank's purpose.")
    opinion: Literal["positive", "negative"] = Field(
        ..., description="positive: act on matches. negative: an allow-list of known false "
                         "positives; never act on a match, and treat a positive match of the "
                         "same hash as disputed.")
    media_kind: Literal["image", "video", "hashes", ""] = Field(
        "", description="What the entry is (add only).")
    resync: bool = Field(False, description="Restated because the shared banks changed.")
    at: dt.datetime
    fingerprints: list[FingerprintOut] = Field(
        ..., description="The entry's fingerprints for `add`; empty for `withdraw`."
    )


class FeedPageOut(Schema):
    items: list[FeedItemOut]
    cursor: str = Field(..., description="Pass as ?cursor= to continue after this page.")
    has_more: bool = Field(..., description="False once the feed is caught up.")
    as_of: dt.datetime | None = Field(
        None, description="Once caught up: every change up to this time is in your copy "
                          "(a progress checkpoint); null while more pages follow.")


def _fingerprint_payload(f: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": f.kind, "value": f.value, "quality": f.quality,
                           "variant": f.variant, "decode": f.decode, "engine": f.engine}
    if f.frames is not None:
        out["frames"] = f.frames
    return out


def feed_page_payload(page: FeedPage, cursor: str) -> dict[str, Any]:
    return {
        "items": [
            {"seq": i.seq, "op": i.op, "entry_id": i.entry_id, "bank": i.bank,
             "purpose": i.purpose, "opinion": i.opinion, "media_kind": i.media_kind,
             "resync": i.resync, "at": i.at.isoformat(),
             "fingerprints": [_fingerprint_payload(f) for f in i.fingerprints]}
            for i in page.items
        ],
        "cursor": cursor,
        "has_more": page.has_more,
        "as_of": page.as_of.isoformat() if page.as_of else None,
    }


class PdqHashIn(BaseModel):
    model_config = _STRICT
    kind: Literal["pdq"]
    value: str = Field(..., pattern=r"^[0-9a-fA-F]{64}$", description="64 hex digits.")


class Md5HashIn(BaseModel):
    model_config = _STRICT
    kind: Literal["md5"]
    value: str = Field(..., pattern=r"^[0-9a-fA-F]{32}$", description="32 hex digits.")


class Sha256HashIn(BaseModel):
    model_config = _STRICT
    kind: Literal["sha256"]
    value: str = Field(..., pattern=r"^[0-9a-fA-F]{64}$", description="64 hex digits.")


class VpdqHashIn(BaseModel):
    model_config = _STRICT
    kind: Literal["vpdq"]
    value: str = Field(..., min_length=2, max_length=200_000, pattern=VPDQ_PATTERN,
                       description="threatexchange's VPDQSignal string: a JSON list of "
                                   "\"pdq,quality,timestamp\" frames.")


HashIn = Annotated[PdqHashIn | Md5HashIn | Sha256HashIn | VpdqHashIn,
                   Field(discriminator="kind")]


class LookupIn(Schema):
    model_config = _STRICT
    hashes: list[HashIn] = Field(..., min_length=1, max_length=MAX_LOOKUP)
    max_distance: Distance | None = Field(
        None,
        description="Optional stricter PDQ threshold; each bank's own threshold still applies.",
    )


class MatchOut(BaseModel):
    entry_id: int
    bank: str
    distance: int = Field(..., description="PDQ: Hamming distance; exact kinds: 0; vpdq: the "
                                           "best frame distance.")
    query_percent: float | None = Field(None, description="vpdq: share of your frames that "
                                                          "matched.")
    compared_percent: float | None = Field(None, description="vpdq: share of ours.")


class LookupResultOut(BaseModel):
    kind: str
    value: str
    matches: list[MatchOut]


class LookupOut(Schema):
    results: list[LookupResultOut] = Field(..., description="One per submitted hash, in order.")


_ACTED_AT_PATTERN = r"^20[0-9]{2}-"


class FeedbackIn(Schema):
    """Give `url`, `entry_id` or both."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["url"]},
        {"required": ["entry_id"], "properties": {"entry_id": {"type": "integer"}}},
    ]})

    action: Literal["removed", "not_found", "refused"]
    url: str = Field("", max_length=2000, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00-\x20\x7f-\x9f]+$",
                     description="The http(s) URL the partner acted on.")
    entry_id: EntryId | None = Field(None, description="One of our entry ids.")
    reference: str = Field("", max_length=200, pattern=TEXT_PATTERN,
                           description="Your own id for the item.")
    acted_at: AwareDatetime = Field(
        ..., description="When the partner acted, with its UTC offset (years 2000-2099).",
        json_schema_extra={"pattern": _ACTED_AT_PATTERN},
    )

    @field_validator("acted_at")
    @classmethod
    def _in_utc(cls, value: dt.datetime) -> dt.datetime:
        # Stored in UTC: offsets like +18:00 are valid ISO 8601 but not PostgreSQL.
        if not 2000 <= value.year <= 2099:
            raise ValueError("acted_at must be in the years 2000-2099")
        return value.astimezone(dt.UTC)

    @model_validator(mode="after")
    def _needs_target(self) -> FeedbackIn:
        if not self.url and self.entry_id is None:
            raise ValueError("give a url or an entry_id")
        return self


class FeedbackOut(Schema):
    id: int
    received_at: dt.datetime


_OPINION_HELP = ("confirmed | disputed | pending_review | seen, or StopNCII's Blocked | "
                 "NotBlocked | PendingReview, or NCMEC's affirmative | negative.")


class _OpinionFields(BaseModel):
    model_config = _STRICT
    opinion: Literal["confirmed", "disputed", "pending_review", "seen", "Blocked",
                     "NotBlocked", "PendingReview", "affirmative", "negative"] = Field(
        ..., description=_OPINION_HELP)
    reason: str = Field("", max_length=200, pattern=TEXT_PATTERN,
                        description="Why (NCMEC's reason), e.g. 'false positive: a logo'.")
    reference: str = Field("", max_length=200, pattern=TEXT_PATTERN,
                           description="Your own id for the item.")
    acted_at: AwareDatetime = Field(
        ..., description="When you formed the opinion, with its UTC offset (years 2000-2099).",
        json_schema_extra={"pattern": _ACTED_AT_PATTERN},
    )

    @field_validator("acted_at")
    @classmethod
    def _in_utc(cls, value: dt.datetime) -> dt.datetime:
        if not 2000 <= value.year <= 2099:
            raise ValueError("acted_at must be in the years 2000-2099")
        return value.astimezone(dt.UTC)


class PdqOpinionIn(_OpinionFields):
    kind: Literal["pdq"]
    value: str = Field(..., pattern=r"^[0-9a-fA-F]{64}$", description="64 hex digits.")


class Md5OpinionIn(_OpinionFields):
    kind: Literal["md5"]
    value: str = Field(..., pattern=r"^[0-9a-fA-F]{32}$", description="32 hex digits.")


class Sha256OpinionIn(_OpinionFields):
    kind: Literal["sha256"]
    value: str = Field(..., pattern=r"^[0-9a-fA-F]{64}$", description="64 hex digits.")


class VpdqOpinionIn(_OpinionFields):
    kind: Literal["vpdq"]
    value: str = Field(..., min_length=2, max_length=200_000, pattern=VPDQ_PATTERN,
                       description="The video's VPDQSignal string, as the feed gave it.")


HashOpinionIn = Annotated[PdqOpinionIn | Md5OpinionIn | Sha256OpinionIn | VpdqOpinionIn,
                          Field(discriminator="kind")]


class HashFeedbackIn(Schema):
    model_config = _STRICT
    items: list[HashOpinionIn] = Field(..., min_length=1, max_length=MAX_LOOKUP)


class HashFeedbackResultOut(BaseModel):
    status: Literal["recorded", "not_found"]
    entry_ids: list[int] = Field(..., description="Our entries the hash belongs to.")


class HashFeedbackOut(Schema):
    results: list[HashFeedbackResultOut] = Field(..., description="One per item, in order.")
