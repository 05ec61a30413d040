"""Anshim as a python-threatexchange exchange (the library under Meta's hasher-matcher-actioner).

`pip install anshim-threatexchange`, then with the threatexchange CLI::

    threatexchange config extensions add anshim_threatexchange
    threatexchange config collab edit anshim --create \
        --base-url https://anshim.example.org/ anshim-center
    TX_ANSHIM_TOKEN=anx_... threatexchange fetch

In hasher-matcher-actioner, add `AnshimSignalExchangeAPI` to `exchange_types` of
`DefaultOMMStore` in `omm_config.py`, create an exchange of type `anshim` with
`{"base_url": ...}` and set its credential `token`. See the README and Anshim's
docs/partners.md. This package never imports Django or the `anshim` package: it only speaks
HTTP to the partner API.
"""

from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest

from anshim_threatexchange.api import (
    AllowLists,
    AnshimAPIError,
    AnshimCheckpoint,
    AnshimClient,
    AnshimCollabConfig,
    AnshimCredentials,
    AnshimEntry,
    AnshimResyncRequired,
    AnshimSignalExchangeAPI,
    AnshimSignalMetadata,
)
from anshim_threatexchange.webhooks import verify_webhook

__version__ = "0.2.0"

TX_MANIFEST = ThreatExchangeExtensionManifest(apis=(AnshimSignalExchangeAPI,))

__all__ = [
    "TX_MANIFEST",
    "AllowLists",
    "AnshimAPIError",
    "AnshimCheckpoint",
    "AnshimClient",
    "AnshimCollabConfig",
    "AnshimCredentials",
    "AnshimEntry",
    "AnshimResyncRequired",
    "AnshimSignalExchangeAPI",
    "AnshimSignalMetadata",
    "verify_webhook",
]
