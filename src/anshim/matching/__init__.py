"""Anshim's hash-matching engine: exact PDQ range search, digests, vPDQ videos.

No Django here: numpy arrays in, typed errors out. See docs/matching.md.
"""

from anshim.matching.errors import (
    CorruptIndexError,
    DuplicateIdError,
    MalformedHashError,
    MatchingError,
    NotAttachedError,
    UnknownIdError,
)
from anshim.matching.exact_index import ExactIndex
from anshim.matching.layout import ChunkLayout, plan_layout
from anshim.matching.pdq_codes import format_pdq_hex, hamming_matrix, parse_pdq_hex
from anshim.matching.pdq_index import DEFAULT_THRESHOLD, InvalidThresholdError, PDQIndex
from anshim.matching.video_index import VideoFrame, VideoHits, VideoVerdict, match_percentages

__all__ = [
    "DEFAULT_THRESHOLD",
    "ChunkLayout",
    "CorruptIndexError",
    "DuplicateIdError",
    "ExactIndex",
    "InvalidThresholdError",
    "MalformedHashError",
    "MatchingError",
    "NotAttachedError",
    "PDQIndex",
    "UnknownIdError",
    "VideoFrame",
    "VideoHits",
    "VideoVerdict",
    "format_pdq_hex",
    "hamming_matrix",
    "match_percentages",
    "parse_pdq_hex",
    "plan_layout",
]
