"""Durable state: the ``Store`` protocol, ``MemoryStore`` and ``FileStore``."""

from ._base import (
    AccountState as AccountState,
    DeadLetter as DeadLetter,
    JournalEntry as JournalEntry,
    OutboxEntry as OutboxEntry,
    Store as Store,
    StoreError as StoreError,
)
from ._file import FileStore as FileStore, account_key as account_key
from ._memory import MemoryStore as MemoryStore

__all__ = [
    "AccountState",
    "DeadLetter",
    "FileStore",
    "JournalEntry",
    "MemoryStore",
    "OutboxEntry",
    "Store",
    "StoreError",
    "account_key",
]
