"""Anshim as a python-threatexchange exchange (the library under Meta's hasher-matcher-actioner).

Install the optional extra (`pip install anshim[threatexchange]`), then, with the CLI:

    threatexchange config extensions add anshim_threatexchange
    threatexchange config collab edit anshim --create \
        --json '{"name": "anshim", "base_url": "https://anshim.example/"}'
    TX_ANSHIM_TOKEN=anx_... threatexchange fetch

In HMA, add `anshim_threatexchange` to the extensions and create an exchange of type `anshim`.
This package never imports Django or the `anshim` package: it only speaks HTTP to the API.
"""

from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest

from anshim_threatexchange.api import (
    AnshimCheckpoint,
    AnshimCollabConfig,
    AnshimCredentials,
    AnshimEntry,
    AnshimResyncRequired,
    AnshimSignalExchangeAPI,
    AnshimSignalMetadata,
)

TX_MANIFEST = ThreatExchangeExtensionManifest(apis=(AnshimSignalExchangeAPI,))

__all__ = [
    "TX_MANIFEST",
    "AnshimCheckpoint",
    "AnshimCollabConfig",
    "AnshimCredentials",
    "AnshimEntry",
    "AnshimResyncRequired",
    "AnshimSignalExchangeAPI",
    "AnshimSignalMetadata",
]
