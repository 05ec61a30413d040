"""Demo banks for `anshim demo`: empty banks of each kind (no media, no hashes of anyone)."""

from __future__ import annotations

from anshim.erasure.models import Bank, BankPurpose
from anshim.erasure.services import create_bank

DEMO_BANKS: tuple[tuple[str, str, int], ...] = (
    ("victim-images", BankPurpose.VICTIM_IMAGES, 31),
    ("evidence", BankPurpose.EVIDENCE, 31),
    ("partner-list", BankPurpose.PARTNER_LIST, 31),
    ("known-false-positives", BankPurpose.ALLOW_LIST, 20),
)


def create_demo_banks() -> list[Bank]:
    """Create the demo banks that are missing; returns the ones created (idempotent)."""
    created = []
    for name, purpose, threshold in DEMO_BANKS:
        if not Bank.objects.filter(name=name).exists():
            created.append(create_bank(name, purpose=purpose, threshold=threshold))
    return created
