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


class ErrorOut(Schema):
    error: str | None = Field(None, description="Stable machine-readable code.")
    detail: Any = Field(..., description="What went wrong, for people.")


class FingerprintOut(BaseModel):
    kind: str = Field(..., description="pdq, md5, sha256 or vpdq (lowercase hex value).")
    value: str


class FeedItemOut(BaseModel):
    seq: int = Field(..., description="Position in the change log; strictly increasing.")
    op: Literal["add", "withdraw"]
    entry_id: int
    bank: str
    at: dt.datetime
    fingerprints: list[FingerprintOut] = Field(
        ..., description="The entry's fingerprints for `add`; empty for `withdraw`."
    )


class FeedPageOut(Schema):
    items: list[FeedItemOut]
    cursor: str = Field(..., description="Pass as ?cursor= to continue after this page.")
    has_more: bool = Field(..., description="False once the feed is caught up.")


def feed_page_payload(page: FeedPage, cursor: str) -> dict[str, Any]:
    return {
        "items": [
            {"seq": i.seq, "op": i.op, "entry_id": i.entry_id, "bank": i.bank,
             "at": i.at.isoformat(),
             "fingerprints": [{"kind": f.kind, "value": f.value} for f in i.fingerprints]}
            for i in page.items
        ],
        "cursor": cursor,
        "has_more": page.has_more,
    }


class PdqHashIn(BaseModel):
    kind: Literal["pdq"]
    value: str = Field(..., pattern=r"^[0-9a-fA-F]{64}$", description="64 hex digits.")


class Md5HashIn(BaseModel):
    kind: Literal["md5"]
    value: str = Field(..., pattern=r"^[0-9a-fA-F]{32}$", description="32 hex digits.")


HashIn = Annotated[PdqHashIn | Md5HashIn, Field(discriminator="kind")]


class LookupIn(Schema):
    hashes: list[HashIn] = Field(..., min_length=1, max_length=MAX_LOOKUP)
    max_distance: Distance | None = Field(
        None,
        description="Optional stricter PDQ threshold; each bank's own threshold still applies.",
    )


class MatchOut(BaseModel):
    entry_id: int
    bank: str
    distance: int


class LookupResultOut(BaseModel):
    kind: str
    value: str
    matches: list[MatchOut]


class LookupOut(Schema):
    results: list[LookupResultOut] = Field(..., description="One per submitted hash, in order.")


_ACTED_AT_PATTERN = r"^20[0-9]{2}-"


class FeedbackIn(Schema):
    """Give `url`, `entry_id` or both."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["url"]},
        {"required": ["entry_id"], "properties": {"entry_id": {"type": "integer"}}},
    ]})

    action: Literal["removed", "not_found", "refused"]
    url: str = Field("", max_length=2000, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00-\x20\x7f]+$",
                     description="The http(s) URL the partner acted on.")
    entry_id: EntryId | None = Field(None, description="One of our entry ids.")
    reference: str = Field("", max_length=200, description="Your own id for the item.")
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
