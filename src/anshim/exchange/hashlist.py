"""The shared banks' current hashes as threatexchange signal-file lines (`signal_type signal`).

The format of threatexchange's `LocalFile` collaboration (`file_api.py`: one signal per line,
its type name first), so a partner loads the file with configuration only. Type names are
threatexchange's: `pdq`, `video_md5`, `video_sha256` (threatexchange's names for plain file
hashes, whatever the media) and `vpdq` (one whole video per line, compact JSON: no spaces).
Only hashes to act on: allow-list banks (negatives) have no place in a file without opinions.
The same sharing rules as the feed apply (quality >= 50, no crop grid).
"""

from __future__ import annotations

from collections.abc import Iterator

from anshim.erasure.models import Bank, BankEntry, BankPurpose
from anshim.exchange.feed import shared_bank_ids, shared_fingerprints
from anshim.exchange.models import Partner

#: Our fingerprint kinds -> threatexchange signal type names.
SIGNAL_TYPE_NAMES = {"pdq": "pdq", "md5": "video_md5", "sha256": "video_sha256",
                     "vpdq": "vpdq"}
_BATCH = 2000


def hash_list_lines(partner: Partner) -> Iterator[str]:
    """The (type, signal) lines entry by entry, in batches (a bank of millions never sits in
    memory); a hash shared by entries of one batch comes once (LocalFile keys by signal, so a
    rare repeat across batches is harmless)."""
    banks = list(Bank.objects.filter(pk__in=shared_bank_ids(partner))
                 .exclude(purpose=BankPurpose.ALLOW_LIST).values_list("pk", flat=True))
    if not banks:
        return
    after = 0
    while True:
        ids = list(BankEntry.objects.filter(bank_id__in=banks, pk__gt=after)
                   .order_by("pk").values_list("pk", flat=True)[:_BATCH])
        if not ids:
            return
        prints = shared_fingerprints(set(ids))
        seen: set[tuple[str, str]] = set()
        for entry_id in ids:
            for f in prints.get(entry_id, []):
                key = (SIGNAL_TYPE_NAMES[f.kind], f.value)
                if key not in seen:
                    seen.add(key)
                    yield f"{key[0]} {key[1]}"
        after = ids[-1]
