"""`AnshimSignalExchangeAPI`: an Anshim server's change feed as a threatexchange exchange.

Records are keyed by Anshim entry id (one entry = one piece of media and its hashes); a
withdrawal deletes the record, so the naive merge ends with exactly the server's current set.
When the banks shared with the platform change, the server restates the difference in the
feed (withdrawals and additions marked `resync`), so no state ever has to be cleared by hand.

Hash kinds map onto threatexchange signal types by name: pdq -> `pdq`, md5 -> `video_md5`,
sha256 -> `video_sha256` (threatexchange's names for plain file hashes, whatever the media),
vpdq -> `vpdq` (one `VPDQSignal` per video; needs threatexchange's vpdq extension, which the
caller lists among its signal types). Nothing here imports those classes, so the adapter
works whether or not the vpdq extension (and its native `vpdq` package) is installed.

Allow-list banks come as negatives: with `allow_lists=NEGATIVE` they load as
`NEGATIVE_CLASS` opinions (for systems that honour opinions, like the threatexchange CLI);
by default they are skipped, because a system that ignores opinions (hasher-matcher-actioner
as of 2026) would treat them as hashes to act on.

Dataclass field types stay real types (no `from __future__ import annotations`): the
threatexchange CLI and HMA build their configuration forms from them. The record classes keep
their names and module: HMA pickles fetched records.
"""

import datetime as dt
import enum
import pathlib
import time
import typing as t
from dataclasses import dataclass, field

import requests
from threatexchange.exchanges import auth
from threatexchange.exchanges import fetch_state as state
from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults
from threatexchange.exchanges.signal_exchange_api import SignalExchangeAPI
from threatexchange.signal_type.signal_base import SignalType

FEED_PATH = "api/v1/exchange/fingerprints"
FEEDBACK_PATH = "api/v1/exchange/feedback"
HASH_FEEDBACK_PATH = "api/v1/exchange/feedback/hashes"
PAGE_SIZE = 1000
MAX_RETRIES = 5

#: Anshim fingerprint kinds -> threatexchange signal type names.
SIGNAL_TYPE_NAMES: dict[str, str] = {
    "pdq": "pdq", "md5": "video_md5", "sha256": "video_sha256", "vpdq": "vpdq",
}
KINDS_BY_SIGNAL_TYPE: dict[str, str] = {v: k for k, v in SIGNAL_TYPE_NAMES.items()}

#: threatexchange opinion categories -> Anshim's per-hash feedback vocabulary.
_OPINIONS = {
    state.SignalOpinionCategory.POSITIVE_CLASS: "confirmed",
    state.SignalOpinionCategory.NEGATIVE_CLASS: "disputed",
    state.SignalOpinionCategory.INVESTIGATION_SEED: "pending_review",
}


class AllowLists(enum.Enum):
    """What to do with the server's allow-list banks (hashes of known false positives)."""

    SKIP = "skip"
    NEGATIVE = "negative"


@dataclass(kw_only=True)
class AnshimCollabConfig(CollaborationConfigWithDefaults):
    """One Anshim server."""

    api: str = field(init=False, default="anshim")
    base_url: str = field(metadata={
        "help": "the Anshim server's root URL, e.g. https://anshim.example.org/ "
                "(the partner API lives under api/v1/exchange/)",
        "metavar": "URL",
    })
    allow_lists: AllowLists = field(default=AllowLists.SKIP, metadata={
        "help": "SKIP (default): leave allow-list banks out. NEGATIVE: load them as "
                "NEGATIVE_CLASS opinions; only for systems that honour opinions "
                "(the threatexchange CLI does; HMA treats every banked hash as a match)",
    })
    token_file: str = field(default="", metadata={
        "help": "optional: a file holding the partner API token (anx_...), instead of "
                "the TX_ANSHIM_TOKEN variable or ~/.tx_anshim_token",
        "metavar": "PATH",
    })


@dataclass
class AnshimCredentials(auth.CredentialHelper):
    """The partner API token that `anshim partner create` printed."""

    ENV_VARIABLE: t.ClassVar[str] = "TX_ANSHIM_TOKEN"
    FILE_NAME: t.ClassVar[str] = "~/.tx_anshim_token"

    token: str = field(metadata={
        "help": "the partner API token (starts with anx_), shown once by "
                "`anshim partner create` or `anshim partner rotate`",
    })

    @classmethod
    def _from_str(cls, s: str) -> "AnshimCredentials":
        return cls(token=s.strip())

    def _are_valid(self) -> bool:
        return self.token.startswith("anx_") and len(self.token) > 20


@dataclass
class AnshimCheckpoint(state.FetchCheckpointBase):
    """The opaque feed cursor; resuming from it never misses or repeats a change."""

    cursor: str
    last_fetch_time: int = 0
    #: Unix time up to which every change is in the fetched copy (0: not known yet).
    progress_time: int = 0

    def is_stale(self) -> bool:
        return False  # the feed can always be resumed, however old the cursor

    def get_progress_timestamp(self) -> t.Optional[int]:
        # getattr: checkpoints pickled by an older version lack the field.
        return getattr(self, "progress_time", 0) or None


@dataclass
class AnshimEntry:
    """An Anshim entry as fetched: its bank and its (kind, value) hashes."""

    bank: str
    hashes: t.List[t.Tuple[str, str]]
    purpose: str = ""
    opinion: str = "positive"
    media_kind: str = ""


@dataclass
class AnshimSignalMetadata(state.FetchedSignalMetadata):
    """Which entries (and banks) a signal belongs to. Banks are tags: positive banks hold
    media that must come down; negative ones (allow-lists) known false positives."""

    entry_ids: t.Set[int] = field(default_factory=set)
    banks: t.Set[str] = field(default_factory=set)
    negative_banks: t.Set[str] = field(default_factory=set)

    def get_as_opinions(self) -> t.Sequence[state.SignalOpinion]:
        opinions = []
        if self.banks:
            opinions.append(state.SignalOpinion(
                False, state.SignalOpinionCategory.POSITIVE_CLASS, set(self.banks)))
        negative: t.Set[str] = getattr(self, "negative_banks", set())  # older pickles lack it
        if negative:
            opinions.append(state.SignalOpinion(
                False, state.SignalOpinionCategory.NEGATIVE_CLASS, set(negative)))
        return opinions


class AnshimAPIError(Exception):
    """The server refused a request; `code` is its machine-readable `error`."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AnshimResyncRequired(AnshimAPIError):
    """Answered by servers before anshim-threatexchange 0.2 (409) when the shared banks
    changed; current servers restate the difference in the feed instead. Kept importable."""


class AnshimClient:
    """Minimal HTTP client for the partner API (Bearer token, honours 429 Retry-After)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0,
                 session: t.Optional[requests.Session] = None) -> None:
        if not base_url:
            raise ValueError("base_url is required (the Anshim server's root URL)")
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers.setdefault("User-Agent", "anshim-threatexchange/0.2")

    def _request(self, method: str, path: str, **kwargs: t.Any) -> t.Any:
        for _ in range(MAX_RETRIES):
            response = self.session.request(method, self.base_url + path, timeout=self.timeout,
                                            **kwargs)
            if response.status_code == 429:
                time.sleep(min(60.0, float(response.headers.get("Retry-After", "1"))))
                continue
            if response.status_code >= 400:
                try:
                    body = response.json()
                except ValueError:
                    body = {}
                code = body.get("error", "") if isinstance(body, dict) else ""
                cls = AnshimResyncRequired if response.status_code == 409 else AnshimAPIError
                raise cls(f"{method} {path}: {response.status_code} {response.text[:500]}",
                          status=response.status_code, code=code or "")
            return response.json()
        raise AnshimAPIError(f"{method} {path}: still rate limited after {MAX_RETRIES} tries",
                             status=429, code="rate_limited")

    def feed_page(self, cursor: t.Optional[str], limit: int = PAGE_SIZE) -> t.Dict[str, t.Any]:
        params: t.Dict[str, t.Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return t.cast(t.Dict[str, t.Any], self._request("GET", FEED_PATH, params=params))

    def feedback(self, action: str, *, acted_at: dt.datetime, url: str = "",
                 entry_id: t.Optional[int] = None, reference: str = "") -> t.Dict[str, t.Any]:
        body: t.Dict[str, t.Any] = {"action": action, "acted_at": acted_at.isoformat(),
                                    "reference": reference}
        if url:
            body["url"] = url
        if entry_id is not None:
            body["entry_id"] = entry_id
        return t.cast(t.Dict[str, t.Any], self._request("POST", FEEDBACK_PATH, json=body))

    def hash_opinions(self, items: t.Sequence[t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
        """POST /feedback/hashes: each item has kind, value, opinion, acted_at (and reason,
        reference)."""
        return t.cast(t.Dict[str, t.Any],
                      self._request("POST", HASH_FEEDBACK_PATH, json={"items": list(items)}))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _progress(page: t.Dict[str, t.Any], previous: int) -> int:
    as_of = page.get("as_of")
    if not as_of:
        return previous
    try:
        return int(dt.datetime.fromisoformat(str(as_of).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return previous


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
    def get_config_cls() -> t.Type[AnshimCollabConfig]:
        return AnshimCollabConfig

    @staticmethod
    def get_checkpoint_cls() -> t.Type[AnshimCheckpoint]:
        return AnshimCheckpoint

    @staticmethod
    def get_record_cls() -> t.Type[AnshimSignalMetadata]:
        return AnshimSignalMetadata

    @staticmethod
    def get_credential_cls() -> t.Type[AnshimCredentials]:
        return AnshimCredentials

    @classmethod
    def for_collab(
        cls, collab: AnshimCollabConfig, credentials: t.Optional[AnshimCredentials] = None,
    ) -> "AnshimSignalExchangeAPI":
        """Credentials, in order: those passed in (HMA's exchange credential form), the
        collab's `token_file`, then TX_ANSHIM_TOKEN or ~/.tx_anshim_token."""
        token_file: str = getattr(collab, "token_file", None) or ""  # older configs lack it
        if credentials is None and token_file:
            path = pathlib.Path(token_file).expanduser()
            credentials = AnshimCredentials._from_str(path.read_text())
            if not credentials._are_valid():
                raise auth.SignalExchangeAPIInvalidAuthException(
                    cls, f"{path} does not hold an Anshim partner token (anx_...)")
        credentials = credentials or AnshimCredentials.get(cls)
        return cls(collab, AnshimClient(collab.base_url, credentials.token))

    def fetch_iter(
        self,
        supported_signal_types: t.Sequence[t.Type[SignalType]],
        checkpoint: t.Optional[AnshimCheckpoint],
    ) -> t.Iterator[state.FetchDelta[int, AnshimEntry, AnshimCheckpoint]]:
        cursor = checkpoint.cursor if checkpoint is not None else None
        progress = (checkpoint.get_progress_timestamp() or 0) if checkpoint is not None else 0
        while True:
            page = self.client.feed_page(cursor)
            updates: t.Dict[int, t.Optional[AnshimEntry]] = {}
            # In feed order: an add then a withdraw of one entry in a page leaves None.
            for item in page["items"]:
                if item["op"] == "add":
                    updates[int(item["entry_id"])] = AnshimEntry(
                        bank=item["bank"],
                        hashes=[(f["kind"], f["value"]) for f in item["fingerprints"]],
                        purpose=item.get("purpose", ""),
                        opinion=item.get("opinion", "positive"),
                        media_kind=item.get("media_kind", ""),
                    )
                else:
                    updates[int(item["entry_id"])] = None
            cursor = page["cursor"]
            progress = _progress(page, progress)
            yield state.FetchDelta(
                updates, AnshimCheckpoint(cursor, int(time.time()), progress))
            if not page["has_more"]:
                return

    @classmethod
    def naive_convert_to_signal_type(
        cls,
        signal_types: t.Sequence[t.Type[SignalType]],
        collab: AnshimCollabConfig,
        fetched: t.Mapping[int, AnshimEntry],
    ) -> t.Dict[t.Type[SignalType], t.Dict[str, AnshimSignalMetadata]]:
        by_name = {st.get_name(): st for st in signal_types}
        by_kind = {kind: by_name[name] for kind, name in SIGNAL_TYPE_NAMES.items()
                   if name in by_name}
        negatives = getattr(collab, "allow_lists", AllowLists.SKIP) == AllowLists.NEGATIVE
        out: t.Dict[t.Type[SignalType], t.Dict[str, AnshimSignalMetadata]] = {}
        for entry_id, entry in fetched.items():
            if entry is None:
                continue
            negative = str(getattr(entry, "opinion", "positive")) == "negative"
            if negative and not negatives:
                continue
            for kind, value in entry.hashes:
                s_type = by_kind.get(kind)
                if s_type is None:
                    continue
                meta = out.setdefault(s_type, {}).setdefault(value, AnshimSignalMetadata())
                meta.entry_ids.add(entry_id)
                (meta.negative_banks if negative else meta.banks).add(entry.bank)
        return out

    # --- telling the server ------------------------------------------------------------

    @staticmethod
    def _kind_of(s_type: t.Type[SignalType]) -> str:
        kind = KINDS_BY_SIGNAL_TYPE.get(s_type.get_name())
        if kind is None:
            raise NotImplementedError(f"Anshim keeps no {s_type.get_name()} signals")
        return kind

    def report_opinion(
        self,
        s_type: t.Type[SignalType],
        signal: str,
        opinion: state.SignalOpinion,
    ) -> None:
        """`threatexchange label`: POSITIVE_CLASS -> confirmed (you acted on it),
        NEGATIVE_CLASS -> disputed (a false positive), INVESTIGATION_SEED -> pending_review;
        the labels go along as the reason."""
        self.report_opinions([(s_type, signal, opinion)])

    def report_opinions(
        self, opinions: t.Sequence[t.Tuple[t.Type[SignalType], str, state.SignalOpinion]],
    ) -> t.List[t.Dict[str, t.Any]]:
        """Several opinions in one request (up to 1,000); the server's result per item."""
        items = []
        for s_type, signal, opinion in opinions:
            word = _OPINIONS.get(opinion.category)
            if word is None:
                raise NotImplementedError(f"no Anshim feedback for {opinion.category.name}")
            items.append({"kind": self._kind_of(s_type), "value": signal, "opinion": word,
                          "reason": ",".join(sorted(opinion.tags))[:200],
                          "acted_at": _now().isoformat()})
        return t.cast(t.List[t.Dict[str, t.Any]], self.client.hash_opinions(items)["results"])

    def report_seen(
        self,
        s_type: t.Type[SignalType],
        signal: str,
        metadata: t.Optional[AnshimSignalMetadata] = None,
    ) -> None:
        """You observed content matching this signal on your platform."""
        self.client.hash_opinions([{"kind": self._kind_of(s_type), "value": signal,
                                    "opinion": "seen", "acted_at": _now().isoformat()}])

    def report_removal(self, action: str, *, acted_at: dt.datetime, url: str = "",
                       entry_id: t.Optional[int] = None, reference: str = "",
                       ) -> t.Dict[str, t.Any]:
        """Tell Anshim what you did (removed / not_found / refused) about a URL on your
        platform or one of its entries."""
        return self.client.feedback(action, acted_at=acted_at, url=url, entry_id=entry_id,
                                    reference=reference)
