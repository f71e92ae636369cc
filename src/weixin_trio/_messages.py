"""Temporary alias of ``_client.message`` for modules not moved yet (the CLI)."""

from ._client.message import Message as Message
