"""Temporary alias of ``_proto.backoff`` for modules not moved yet (the CLI)."""

from ._proto.backoff import Backoff as Backoff
