"""VideoIndex: vPDQ matching — a frame-level PDQ index plus per-video match percentages.

Definitions follow Meta's vPDQ: frames whose quality is below ``quality_threshold``
are ignored on both sides; a query frame *matches* a video if some (considered) frame
of that video is within ``threshold``;

* ``query_match_percent``   = matched query frames / considered query frames * 100
* ``compared_match_percent`` = video frames within ``threshold`` of some considered
  query frame / considered frames of the video * 100
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from anshim.matching.errors import DuplicateIdError, MatchingError, UnknownIdError
from anshim.matching.pdq_codes import parse_pdq_hex
from anshim.matching.pdq_index import DEFAULT_THRESHOLD, PDQIndex

DEFAULT_QUALITY_THRESHOLD = 50


@dataclass(frozen=True)
class VideoFrame:
    """One vPDQ frame: PDQ hash (64 hex), PDQ quality (0-100), timestamp in seconds."""

    pdq_hex: str
    quality: int
    timestamp: float = 0.0


@dataclass(frozen=True)
class VideoMatch:
    """How much of the query and of one indexed video match each other (percent)."""

    video_id: int
    query_match_percent: float
    compared_match_percent: float


class VideoIndex:
    """Many videos' frames in one PDQIndex; search a query video against all of them."""

    def __init__(
        self,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        quality_threshold: int = DEFAULT_QUALITY_THRESHOLD,
    ) -> None:
        self.threshold = threshold
        self.quality_threshold = quality_threshold
        self._frames = PDQIndex(threshold=threshold)
        self._next_frame = 0
        self._frame_video: dict[int, int] = {}
        self._video_frames: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self._video_frames)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._video_frames

    def _considered(self, frames: Iterable[VideoFrame]) -> list[VideoFrame]:
        return [f for f in frames if f.quality >= self.quality_threshold]

    def add_video(self, video_id: int, frames: Sequence[VideoFrame]) -> None:
        """Index a video's frames (those below the quality threshold are dropped)."""
        if video_id in self._video_frames:
            raise DuplicateIdError(f"video {video_id} is already in the index")
        kept = self._considered(frames)
        parse_pdq_hex([f.pdq_hex for f in frames])  # reject malformed frames up front
        frame_ids = list(range(self._next_frame, self._next_frame + len(kept)))
        self._frames.add(frame_ids, [f.pdq_hex for f in kept])
        self._next_frame += len(kept)
        self._video_frames[video_id] = frame_ids
        for fid in frame_ids:
            self._frame_video[fid] = video_id

    def remove_video(self, video_id: int) -> None:
        """Forget a video; its frames stop matching at once."""
        frame_ids = self._video_frames.pop(video_id, None)
        if frame_ids is None:
            raise UnknownIdError(f"video {video_id} is not in the index")
        if frame_ids:
            self._frames.remove(frame_ids)
        for fid in frame_ids:
            del self._frame_video[fid]

    def compact(self) -> None:
        """Fold added and removed frames into the frame index's base."""
        self._frames.compact()

    def search(
        self,
        frames: Sequence[VideoFrame],
        *,
        threshold: int | None = None,
        min_query_percent: float = 0.0,
        min_compared_percent: float = 0.0,
    ) -> list[VideoMatch]:
        """Videos sharing at least one frame match with the query, best first."""
        query = self._considered(frames)
        if not query:
            if frames:
                parse_pdq_hex([f.pdq_hex for f in frames])
            return []
        t = self.threshold if threshold is None else threshold
        if t < 0:
            raise MatchingError("threshold must be >= 0")
        counts, ids, _ = self._frames.search_codes(parse_pdq_hex([f.pdq_hex for f in query]), t)
        qidx = np.repeat(np.arange(len(query)), counts)
        query_hits: dict[int, set[int]] = {}
        video_hits: dict[int, set[int]] = {}
        for q, fid in zip(qidx.tolist(), ids.tolist(), strict=True):
            video = self._frame_video[fid]
            query_hits.setdefault(video, set()).add(q)
            video_hits.setdefault(video, set()).add(fid)
        out: list[VideoMatch] = []
        for video, hit_queries in query_hits.items():
            total = len(self._video_frames[video])
            match = VideoMatch(
                video,
                100.0 * len(hit_queries) / len(query),
                100.0 * len(video_hits[video]) / total if total else 0.0,
            )
            if (
                match.query_match_percent >= min_query_percent
                and match.compared_match_percent >= min_compared_percent
            ):
                out.append(match)
        out.sort(key=lambda m: (-m.query_match_percent, -m.compared_match_percent, m.video_id))
        return out


def match_percentages(
    query: Sequence[VideoFrame],
    compared: Sequence[VideoFrame],
    *,
    threshold: int = DEFAULT_THRESHOLD,
    quality_threshold: int = DEFAULT_QUALITY_THRESHOLD,
) -> tuple[float, float]:
    """Brute-force vPDQ percentages of two videos (the reference definition)."""
    q = [f for f in query if f.quality >= quality_threshold]
    c = [f for f in compared if f.quality >= quality_threshold]
    if not q or not c:
        return 0.0, 0.0
    qc, cc = parse_pdq_hex([f.pdq_hex for f in q]), parse_pdq_hex([f.pdq_hex for f in c])
    within = np.bitwise_count(qc[:, None, :] ^ cc[None, :, :]).sum(axis=2) <= threshold
    return (
        100.0 * float(within.any(axis=1).sum()) / len(q),
        100.0 * float(within.any(axis=0).sum()) / len(c),
    )
