"""The stores' key-value API: small JSON documents per account and namespace.

Every store ([`MemoryStore`][weixin_trio.MemoryStore], [`FileStore`][weixin_trio.FileStore],
[`RedisStore`][weixin_trio.redis.RedisStore]) implements `KeyValueStore`. It holds what
a bot keeps besides its journal: allow lists, pairing codes, conversation state, flags.
Values are encoded like every other record of the stores (ASCII JSON; what JSON cannot
express raises `UnencodableError` and nothing is written)
and come back decoded, as fresh objects (a tuple comes back as a list).

A namespace is a short name (letters, digits, ``_``, ``.``, ``-``; at most 64
characters, not starting with ``.`` or ``-``); a key is any non-empty string.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol, runtime_checkable

from .._errors import UnencodableError
from ._journal import encode_json

__all__ = ["KeyValueStore", "MemoryKV", "check_key", "check_namespace", "decode", "encode"]

_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def check_namespace(namespace: object) -> str:
    """``namespace`` if it is a valid namespace name.

    Raises:
        ValueError: It is not (the name is a file name in a `FileStore` and part of a
            key in Redis).
    """
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise ValueError(
            f"invalid key-value namespace {namespace!r}: use 1-64 letters, digits, '_', '.'"
            " or '-', starting with a letter, digit or '_'"
        )
    return namespace


def check_key(key: object) -> str:
    """``key`` if it is a valid key: a non-empty string that encodes as UTF-8.

    Raises:
        ValueError: It is empty or not a string.
        UnencodableError: It holds a lone surrogate (Redis could not store it).
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"a key-value key must be a non-empty string, not {key!r}")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise UnencodableError("a key-value key must encode as UTF-8") from None
    return key


def encode(value: Any) -> bytes:
    """``value`` as the stores' ASCII JSON (one line, ending in a newline).

    Raises:
        UnencodableError: JSON cannot express ``value``.
    """
    try:
        return encode_json(value)
    except UnencodableError as exc:
        raise UnencodableError(f"cannot store a key-value document: {exc}") from None


def decode(body: bytes | str) -> Any:
    """The value `encode` wrote."""
    return json.loads(body)


@runtime_checkable
class KeyValueStore(Protocol):
    """Small JSON documents per account and namespace, next to the journal.

    Each call is atomic on its own: a reader sees a document before or after a write,
    never half of it. Writes are durable when they return. A `FileStore` keeps them in
    files of their own, so another process (``weixin-trio pair approve``) can change
    them while a bot holds the account's writer lock, and the bot sees the change on
    its next read.
    """

    async def kv_get(self, account: str, namespace: str, key: str) -> Any | None:
        """The value stored under ``key``, or ``None``."""
        ...

    async def kv_put(self, account: str, namespace: str, key: str, value: Any) -> None:
        """Store ``value`` (anything JSON can express) under ``key``."""
        ...

    async def kv_delete(self, account: str, namespace: str, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        ...

    async def kv_items(self, account: str, namespace: str) -> dict[str, Any]:
        """Every key of the namespace and its value (``{}`` when none)."""
        ...


class MemoryKV:
    """The key-value documents of a `MemoryStore` (encoded, so values are copies)."""

    def __init__(self) -> None:
        self._spaces: dict[tuple[str, str], dict[str, bytes]] = {}

    def get(self, account: str, namespace: str, key: str) -> Any | None:
        """The value of ``key``, or ``None``."""
        body = self._spaces.get((account, check_namespace(namespace)), {}).get(check_key(key))
        return None if body is None else decode(body)

    def put(self, account: str, namespace: str, key: str, value: Any) -> None:
        """Store ``value`` under ``key``."""
        space = (account, check_namespace(namespace))
        body = encode(value)
        self._spaces.setdefault(space, {})[check_key(key)] = body

    def delete(self, account: str, namespace: str, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        space = self._spaces.get((account, check_namespace(namespace)), {})
        return space.pop(check_key(key), None) is not None

    def items(self, account: str, namespace: str) -> dict[str, Any]:
        """Every key and value of a namespace."""
        space = self._spaces.get((account, check_namespace(namespace)), {})
        return {k: decode(v) for k, v in space.items()}
