"""Media fingerprinting engine: PDQ (with dihedral variants) for images, vPDQ for videos,
MD5 and SHA-256 for both. A library with no Django import; media bytes never touch the disk.

Quick use::

    from anshim.fingerprint import fingerprint_bytes, fingerprint_file, fingerprint_files
    fp = fingerprint_file("photo.jpg", dihedral=True)
    fp.pdq, fp.quality, fp.dihedral, fp.decode, fp.engine

Hashes agree with Meta's PDQ (pdqhash) on the same file: the decode is exact by default.
"""

from __future__ import annotations

from .batch import BatchResult, fingerprint_files
from .engine import Fingerprint, fingerprint_bytes, fingerprint_file
from .errors import CorruptMedia, FingerprintError, MediaTooLarge, NoVideoStream, UnsupportedMedia
from .exact import md5_hex, sha256_hex
from .pdq import (
    bits_to_hex,
    hamming_distance,
    hex_to_bits,
    luma_from_rgb,
    pdq_dihedral_from_luma,
    pdq_from_luma,
    pdq_from_luma_batch,
)
from .sniff import sniff
from .types import (
    DECODE_EXACT,
    DECODE_REDUCED,
    DEFAULT_LIMITS,
    DIHEDRAL_NAMES,
    ENGINE_VERSION,
    ImageFingerprint,
    Limits,
    VideoFingerprint,
    VpdqFrame,
    VpdqMatch,
)
from .vpdq import (
    DEFAULT_DISTANCE_TOLERANCE,
    DEFAULT_QUALITY_TOLERANCE,
    format_vpdq,
    match_vpdq,
    parse_vpdq,
)

__all__ = [
    "DECODE_EXACT",
    "DECODE_REDUCED",
    "DEFAULT_DISTANCE_TOLERANCE",
    "DEFAULT_LIMITS",
    "DEFAULT_QUALITY_TOLERANCE",
    "DIHEDRAL_NAMES",
    "ENGINE_VERSION",
    "BatchResult",
    "CorruptMedia",
    "Fingerprint",
    "FingerprintError",
    "ImageFingerprint",
    "Limits",
    "MediaTooLarge",
    "NoVideoStream",
    "UnsupportedMedia",
    "VideoFingerprint",
    "VpdqFrame",
    "VpdqMatch",
    "bits_to_hex",
    "fingerprint_bytes",
    "fingerprint_file",
    "fingerprint_files",
    "format_vpdq",
    "hamming_distance",
    "hex_to_bits",
    "luma_from_rgb",
    "match_vpdq",
    "md5_hex",
    "parse_vpdq",
    "pdq_dihedral_from_luma",
    "pdq_from_luma",
    "pdq_from_luma_batch",
    "sha256_hex",
    "sniff",
]
