"""Durable state: the ``Store`` protocol, ``MemoryStore`` and ``FileStore``.

The Redis store lives in [`weixin_trio.redis`][weixin_trio.redis] (the ``redis`` extra).
"""

from ._base import (
    AccountState as AccountState,
    DeadLetter as DeadLetter,
    JournalEntry as JournalEntry,
    LeaseLostError as LeaseLostError,
    OutboxEntry as OutboxEntry,
    Store as Store,
    StoreError as StoreError,
    StoreLockedError as StoreLockedError,
    StoreUnavailableError as StoreUnavailableError,
)
from ._file import FileStore as FileStore, account_key as account_key
from ._kv import KeyValueStore as KeyValueStore
from ._memory import MemoryStore as MemoryStore

__all__ = [
    "AccountState",
    "DeadLetter",
    "FileStore",
    "JournalEntry",
    "KeyValueStore",
    "LeaseLostError",
    "MemoryStore",
    "OutboxEntry",
    "Store",
    "StoreError",
    "StoreLockedError",
    "StoreUnavailableError",
    "account_key",
]
