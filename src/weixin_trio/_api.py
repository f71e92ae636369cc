"""Temporary alias of ``_client.ilink_client`` for modules not moved yet (the CLI)."""

from ._client.ilink_client import DEFAULT_CDN_BASE_URL as DEFAULT_CDN_BASE_URL
