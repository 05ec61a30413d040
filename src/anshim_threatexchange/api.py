"""`AnshimSignalExchangeAPI`: fetch an Anshim server's change feed as a threatexchange exchange.

Records are keyed by Anshim entry id (one entry = one piece of media and its hashes); a
withdrawal deletes the record, so the naive merge ends with exactly the server's current set.
Hash kinds map onto threatexchange signal types: pdq -> PdqSignal, md5 -> VideoMD5Signal,
sha256 -> VideoSHA256Signal (both are plain file hashes whatever the media); vPDQ frames are
kept in the record but not converted (their signal format needs whole videos).
Dataclass field types stay real types (no `from __future__ import annotations`): the
threatexchange CLI builds its `config collab edit` options from them.
"""

import datetime as dt
import time
import typing as t
from dataclasses import dataclass, field

import requests
from threatexchange.exchanges import auth
from threatexchange.exchanges import fetch_state as state
from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults
from threatexchange.exchanges.signal_exchange_api import SignalExchangeAPI
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.sha256 import VideoSHA256Signal
from threatexchange.signal_type.signal_base import SignalType

FEED_PATH = "api/v1/exchange/fingerprints"
FEEDBACK_PATH = "api/v1/exchange/feedback"
PAGE_SIZE = 1000
MAX_RETRIES = 5


def _signal_types() -> dict[str, type[SignalType]]:
    return {"pdq": PdqSignal, "md5": VideoMD5Signal, "sha256": VideoSHA256Signal}


@dataclass
class AnshimCollabConfig(CollaborationConfigWithDefaults):
    """One Anshim server. `base_url` is the site root, e.g. https://anshim.example/."""

    api: str = field(init=False, default="anshim")
    base_url: str = "http://127.0.0.1:8000/"


@dataclass
class AnshimCredentials(auth.CredentialHelper):
    """The partner API token (`anshim partner create` prints it)."""

    ENV_VARIABLE: t.ClassVar[str] = "TX_ANSHIM_TOKEN"
    FILE_NAME: t.ClassVar[str] = "~/.tx_anshim_token"

    token: str

    @classmethod
    def _from_str(cls, s: str) -> "AnshimCredentials":
        return cls(token=s.strip())

    def _are_valid(self) -> bool:
        return self.token.startswith("anx_")


@dataclass
class AnshimCheckpoint(state.FetchCheckpointBase):
    """The opaque feed cursor; resuming from it never misses or repeats a change."""

    cursor: str
    last_fetch_time: int = 0

    def is_stale(self) -> bool:
        return False  # the feed can always be resumed, however old the cursor


@dataclass
class AnshimEntry:
    """An Anshim entry as fetched: its bank and its (kind, value) hashes."""

    bank: str
    hashes: list[tuple[str, str]]


@dataclass
class AnshimSignalMetadata(state.FetchedSignalMetadata):
    """Which entries (and banks) a signal belongs to. Banks are tags; every signal is a
    positive: banks hold media that must come down."""

    entry_ids: set[int] = field(default_factory=set)
    banks: set[str] = field(default_factory=set)

    def get_as_opinions(self) -> t.Sequence[state.SignalOpinion]:
        return [state.SignalOpinion(False, state.SignalOpinionCategory.POSITIVE_CLASS,
                                    set(self.banks))]


class AnshimAPIError(Exception):
    """The server refused a request (bad token, bad cursor, ...)."""


class AnshimResyncRequired(AnshimAPIError):
    """The banks shared with this platform changed: clear the fetched state and fetch again
    (`threatexchange fetch --clear`, or delete the collab's state in HMA)."""


class AnshimClient:
    """Minimal HTTP client for the partner API (Bearer token, honours 429 Retry-After)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _request(self, method: str, path: str, **kwargs: t.Any) -> t.Any:
        for _ in range(MAX_RETRIES):
            response = self.session.request(method, self.base_url + path, timeout=self.timeout,
                                            **kwargs)
            if response.status_code == 429:
                time.sleep(min(60.0, float(response.headers.get("Retry-After", "1"))))
                continue
            if response.status_code == 409:
                raise AnshimResyncRequired(response.json().get("detail", "resync required"))
            if response.status_code >= 400:
                raise AnshimAPIError(f"{method} {path}: {response.status_code} {response.text}")
            return response.json()
        raise AnshimAPIError(f"{method} {path}: still rate limited after {MAX_RETRIES} tries")

    def feed_page(self, cursor: str | None, limit: int = PAGE_SIZE) -> dict[str, t.Any]:
        params: dict[str, t.Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return t.cast(dict[str, t.Any], self._request("GET", FEED_PATH, params=params))

    def feedback(self, action: str, *, acted_at: dt.datetime, url: str = "",
                 entry_id: int | None = None, reference: str = "") -> dict[str, t.Any]:
        body: dict[str, t.Any] = {"action": action, "acted_at": acted_at.isoformat(),
                                  "reference": reference}
        if url:
            body["url"] = url
        if entry_id is not None:
            body["entry_id"] = entry_id
        return t.cast(dict[str, t.Any], self._request("POST", FEEDBACK_PATH, json=body))


class AnshimSignalExchangeAPI(
    auth.SignalExchangeWithAuth[AnshimCollabConfig, AnshimCredentials],
    SignalExchangeAPI[AnshimCollabConfig, AnshimCheckpoint, AnshimSignalMetadata, int,
                      AnshimEntry],
):
    """An Anshim server's shared banks as a threatexchange collaboration."""

    def __init__(self, collab: AnshimCollabConfig, client: AnshimClient) -> None:
        self.collab = collab
        self.client = client

    @classmethod
    def get_name(cls) -> str:
        return "anshim"

    @staticmethod
    def get_config_cls() -> type[AnshimCollabConfig]:
        return AnshimCollabConfig

    @staticmethod
    def get_checkpoint_cls() -> type[AnshimCheckpoint]:
        return AnshimCheckpoint

    @staticmethod
    def get_record_cls() -> type[AnshimSignalMetadata]:
        return AnshimSignalMetadata

    @staticmethod
    def get_credential_cls() -> type[AnshimCredentials]:
        return AnshimCredentials

    @classmethod
    def for_collab(
        cls, collab: AnshimCollabConfig, credentials: AnshimCredentials | None = None,
    ) -> "AnshimSignalExchangeAPI":
        credentials = credentials or AnshimCredentials.get(cls)
        return cls(collab, AnshimClient(collab.base_url, credentials.token))

    def fetch_iter(
        self,
        supported_signal_types: t.Sequence[type[SignalType]],
        checkpoint: AnshimCheckpoint | None,
    ) -> t.Iterator[state.FetchDelta[int, AnshimEntry, AnshimCheckpoint]]:
        cursor = checkpoint.cursor if checkpoint is not None else None
        while True:
            page = self.client.feed_page(cursor)
            updates: dict[int, AnshimEntry | None] = {}
            # In feed order: an add then a withdraw of one entry in a page leaves None.
            for item in page["items"]:
                if item["op"] == "add":
                    updates[int(item["entry_id"])] = AnshimEntry(
                        bank=item["bank"],
                        hashes=[(f["kind"], f["value"]) for f in item["fingerprints"]],
                    )
                else:
                    updates[int(item["entry_id"])] = None
            cursor = page["cursor"]
            yield state.FetchDelta(updates, AnshimCheckpoint(cursor, int(time.time())))
            if not page["has_more"]:
                return

    @classmethod
    def naive_convert_to_signal_type(
        cls,
        signal_types: t.Sequence[type[SignalType]],
        collab: AnshimCollabConfig,
        fetched: t.Mapping[int, AnshimEntry],
    ) -> dict[type[SignalType], dict[str, AnshimSignalMetadata]]:
        wanted = {st.get_name(): st for st in signal_types}
        by_kind = {kind: st for kind, st in _signal_types().items() if st.get_name() in wanted}
        out: dict[type[SignalType], dict[str, AnshimSignalMetadata]] = {}
        for entry_id, entry in fetched.items():
            if entry is None:
                continue
            for kind, value in entry.hashes:
                s_type = by_kind.get(kind)
                if s_type is None:
                    continue
                meta = out.setdefault(s_type, {}).setdefault(value, AnshimSignalMetadata())
                meta.entry_ids.add(entry_id)
                meta.banks.add(entry.bank)
        return out

    def report_removal(self, action: str, *, acted_at: dt.datetime, url: str = "",
                       entry_id: int | None = None, reference: str = "") -> dict[str, t.Any]:
        """Tell Anshim what you did (removed / not_found / refused) about a URL or entry."""
        return self.client.feedback(action, acted_at=acted_at, url=url, entry_id=entry_id,
                                    reference=reference)
