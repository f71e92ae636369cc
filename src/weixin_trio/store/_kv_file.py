"""The key-value documents of a `FileStore`: one JSON file per account and namespace.

Layout: ``<account-dir>/kv/<namespace>.json`` (mode 0600; the ``kv`` directory 0700)
and its lock, ``<account-dir>/kv/<namespace>.lock``.

They are not part of the journal and not under the account's writer lock: another
process (``weixin-trio pair approve``) may change them while a bot runs. Each change
is a read-modify-write under a short ``flock`` of the namespace's lock file, and the
new document replaces the old one atomically (temp file + fsync + rename + directory
fsync, through the store's `ops` seam), so a reader, which takes no lock, sees the old
document or the new one, and a failed write leaves the old one. Every function here
blocks: the store runs them in worker threads.
"""

from __future__ import annotations

import fcntl
import os
from typing import TYPE_CHECKING, Any, TypeVar

from ._base import StoreError
from ._fsio import fsync_dir, write_private
from ._kv import decode, encode

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["KV_DIR", "kv_delete", "kv_put", "kv_read"]

T = TypeVar("T")

#: The directory of the key-value documents inside an account's directory.
KV_DIR = "kv"


def kv_read(account_dir: Path, namespace: str) -> dict[str, Any]:
    """The namespace's document (``{}`` when it has none); takes no lock, never writes.

    Raises:
        StoreError: The document is corrupt (named by its path).
        OSError: It cannot be read.
    """
    path = account_dir / KV_DIR / f"{namespace}.json"
    try:
        body = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        document = decode(body)
    except ValueError as exc:
        raise StoreError(f"corrupt key-value document {path}: {exc}") from None
    if not isinstance(document, dict):
        raise StoreError(f"corrupt key-value document {path}: not a JSON object")
    return document


def _make_dirs(account_dir: Path) -> Path:
    """The ``kv`` directory, created (durably) when missing."""
    directory = account_dir / KV_DIR
    if directory.is_dir():
        return directory
    created: list[Path] = []
    path = directory
    while not path.exists():
        created.append(path)
        path = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for made in reversed(created):  # outermost first
        fsync_dir(made.parent)
    return directory


def _change(account_dir: Path, namespace: str, change: Callable[[dict[str, Any]], T]) -> T:
    """Run ``change`` on the document under its lock; write it back if it changed."""
    directory = _make_dirs(account_dir)
    fd = os.open(directory / f"{namespace}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for one read and one small write
        document = kv_read(account_dir, namespace)
        before = encode(document)
        result = change(document)
        after = encode(document)
        if after != before:
            write_private(directory, f"{namespace}.json", after)
        return result
    finally:
        os.close(fd)  # releases the flock


def kv_put(account_dir: Path, namespace: str, key: str, value: Any) -> None:
    """Store ``value`` under ``key`` (atomic and durable; `UnencodableError` first).

    Raises:
        UnencodableError: JSON cannot express ``value`` (nothing was written).
        OSError: The write failed (the old document stays).
    """
    body = encode(value)  # fail before taking the lock

    def put(document: dict[str, Any]) -> None:
        document[key] = decode(body)

    _change(account_dir, namespace, put)


def kv_delete(account_dir: Path, namespace: str, key: str) -> bool:
    """Remove ``key``; whether it was there.

    Raises:
        OSError: The write failed (the old document stays).
    """
    if not (account_dir / KV_DIR / f"{namespace}.json").exists():
        return False  # nothing to remove: create no directory
    return _change(account_dir, namespace, lambda d: d.pop(key, _MISSING) is not _MISSING)


_MISSING = object()
