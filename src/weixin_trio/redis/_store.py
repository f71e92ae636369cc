"""``RedisStore``: the Store protocol on Redis, shared by processes on any machine."""

from __future__ import annotations

import json
import re
import ssl
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, final
from urllib.parse import urlsplit, urlunsplit

import coredis
import coredis.exceptions
import trio

from .._util import unwrap_single_error
from ..store._base import (
    AccountState,
    DeadLetter,
    JournalEntry,
    LeaseLostError,
    OutboxEntry,
    StoreError,
    StoreUnavailableError,
)
from ..store._file_read import account_key
from ..store._journal import DEFAULT_SEEN_WINDOW, encode_json
from ..store._kv import check_key, check_namespace, decode, encode
from . import _scripts

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping, Sequence

__all__ = ["RedisStore", "open_redis_store", "safe_url"]

#: The client type this module works with (``decode_responses=True``).
RedisClient = coredis.Redis[str]


def safe_url(url: str) -> str:
    """``url`` without its password (for error messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host_port = parts.netloc.rpartition("@")[2]  # as written (keeps IPv6 brackets)
    netloc = f"{parts.username or ''}:***@{host_port}"
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """Translate coredis errors into the store's error tree.

    Raises:
        StoreUnavailableError: Redis cannot be reached (transient).
        LeaseLostError: A fenced write found another owner's lease.
        StoreError: Any other refusal by Redis.
    """
    try:
        yield
    except (coredis.exceptions.ConnectionError, TimeoutError, OSError) as exc:
        raise StoreUnavailableError(f"Redis unavailable while {what}: {exc}") from exc
    except coredis.exceptions.ResponseError as exc:
        if str(exc).startswith("LEASE_LOST"):
            raise LeaseLostError(f"lease lost while {what}: {exc}") from None
        raise StoreError(f"Redis refused {what}: {exc}") from exc
    except coredis.exceptions.RedisError as exc:
        raise StoreError(f"Redis failed while {what}: {exc}") from exc


def _pairs(flat: Sequence[str]) -> Iterator[tuple[str, str]]:
    return zip(flat[0::2], flat[1::2], strict=True)


def _sequenced(value: str) -> tuple[int, str]:
    seq, _, body = value.partition(":")
    return int(seq), body


def _dump(value: Any) -> str:
    # The stores' ASCII JSON: a lone surrogate in a message becomes a ``\udXXX`` escape
    # instead of failing the UTF-8 encoding of the script's arguments (and the account
    # with it); what JSON cannot express raises UnencodableError, as in FileStore.
    return encode_json(value)[:-1].decode("ascii")


@final
class RedisStore:
    """Durable state of every account in Redis (``pip install weixin-trio[redis]``).

    Same contract as [`FileStore`][weixin_trio.FileStore]: `accept` writes the batch,
    the cursor, the context tokens and the dedupe window in one Lua script (atomic), so
    a crash at any instant leaves all of it or none of it. Keys are hash-tagged per
    account (Redis Cluster works). Durability is Redis's: run it with
    ``appendonly yes`` (``appendfsync everysec`` loses at most a second of writes when
    the Redis host itself dies).

    Fencing: after `fence` gives an account a lease token, every write of that
    account is refused with [`LeaseLostError`][weixin_trio.LeaseLostError] unless the lease key
    still holds the token (checked inside the same script as the write).

    Obtain one with `open_redis_store`, or wrap a ``coredis.Redis`` client
    (``decode_responses=True``) that you manage yourself.

    Args:
        client: A connected ``coredis.Redis`` with ``decode_responses=True``.
        prefix: Prefix of every key (several bots can share one Redis).
        seen_window: How many recently accepted message ids are kept for dedupe.
        url: Where the client connects, for messages (never with a password).
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str = "wxt",
        seen_window: int = DEFAULT_SEEN_WINDOW,
        url: str = "redis",
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", prefix):
            raise ValueError(f"invalid key prefix {prefix!r}")
        self.client = client
        self.prefix = prefix
        self.url = safe_url(url)
        self._window = seen_window
        self._fences: dict[str, str] = {}
        self._write = client.register_script(_scripts.WRITE)
        self._load = client.register_script(_scripts.LOAD)

    def __repr__(self) -> str:
        return f"<RedisStore prefix={self.prefix!r}>"

    @property
    def accounts_key(self) -> str:
        """The hash of every account's credentials."""
        return f"{self.prefix}:accounts"

    def fence(self, account: str, token: str | None) -> None:
        """Fence every later write of ``account`` with a lease token (``None``: stop)."""
        if token is None:
            self._fences.pop(account, None)
        else:
            self._fences[account] = token

    def fence_token(self, account: str) -> str:
        """The lease token fencing ``account``'s writes (``""``: unfenced)."""
        return self._fences.get(account, "")

    async def _run_write(self, account: str, what: str, *args: str | int | float) -> None:
        keys = _scripts.account_keys(self.prefix, account)
        argv = [self._fences.get(account, ""), *(str(a) for a in args)]
        with redis_errors(f"{what} for {account}"):
            await self._write(keys=keys, args=argv)

    async def load(self, account: str) -> AccountState:
        """Read an account's state in one atomic script.

        Raises:
            StoreUnavailableError: Redis cannot be reached.
            StoreError: A stored value is corrupt.
        """
        keys = _scripts.account_keys(self.prefix, account)
        with redis_errors(f"loading {account}"):
            raw: Any = await self._load(keys=keys, args=[])
        try:
            return self._decode(raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"corrupt Redis state of {account}: {exc}") from None

    @staticmethod
    def _decode(raw: Sequence[Any]) -> AccountState:
        cursor, pending, fails, seen, ctx, inbound, dead, outbox = raw
        attempts = {int(k): int(v) for k, v in _pairs(fails)}
        entries = []
        for mid, value in _pairs(pending):
            seq, body = _sequenced(value)
            data = json.loads(body)
            entry = JournalEntry(int(mid), data["raw"], attempts.get(int(mid), int(data["n"])))
            entries.append((seq, entry))
        queued = []
        for _entry_id, value in _pairs(outbox):
            seq, body = _sequenced(value)
            d = json.loads(body)
            queued.append((seq, OutboxEntry(d["id"], d["u"], d["s"], float(d["at"]))))
        letters = []
        for line in dead:
            d = json.loads(line)
            letters.append(
                DeadLetter(int(d["id"]), d["raw"], int(d["n"]), str(d["e"]), float(d["at"]))
            )
        return AccountState(
            cursor=str(cursor),
            pending=tuple(e for _, e in sorted(entries, key=lambda p: p[0])),
            seen_ids=tuple(int(i) for i in seen),
            context_tokens=dict(_pairs(ctx)),
            dead_letters=tuple(letters),
            last_inbound={u: float(t) for u, t in _pairs(inbound)},
            outbox=tuple(e for _, e in sorted(queued, key=lambda p: p[0])),
        )

    async def accept(
        self,
        account: str,
        *,
        cursor: str,
        entries: Sequence[JournalEntry],
        context_tokens: Mapping[str, str],
        last_inbound: Mapping[str, float] | None = None,
    ) -> None:
        """Journal a batch, its cursor and per-user data in one atomic script.

        Raises:
            StoreUnavailableError: Redis cannot be reached (nothing was written).
            LeaseLostError: Another process holds the account's lease.
        """
        args: list[str | int | float] = ["accept", cursor, self._window, len(entries)]
        for e in entries:
            args += [e.message_id, _dump({"raw": e.raw, "n": e.attempts})]
        args.append(len(context_tokens))
        for user, token in context_tokens.items():
            args += [user, token]
        inbound = last_inbound or {}
        args.append(len(inbound))
        for user, at in inbound.items():
            args += [user, repr(float(at))]
        await self._run_write(account, "journaling a batch", *args)

    async def mark_done(self, account: str, message_ids: Sequence[int]) -> None:
        """Finish messages."""
        if message_ids:
            await self._run_write(account, "marking messages done", "done", *message_ids)

    async def record_failure(self, account: str, message_id: int, attempts: int) -> None:
        """Record a failed attempt."""
        await self._run_write(account, "recording a failure", "fail", message_id, attempts)

    async def dead_letter(self, account: str, letter: DeadLetter) -> None:
        """Keep a dead letter and finish its message, atomically."""
        record = {
            "id": letter.message_id,
            "raw": dict(letter.raw),
            "n": letter.attempts,
            "e": letter.error,
            "at": letter.at,
        }
        await self._run_write(account, "dead-lettering", "dead", letter.message_id, _dump(record))

    async def outbox_put(self, account: str, entry: OutboxEntry) -> None:
        """Queue a text for a closed send window."""
        record = {"id": entry.entry_id, "u": entry.user_id, "s": entry.text, "at": entry.queued_at}
        await self._run_write(account, "queueing a text", "oput", entry.entry_id, _dump(record))

    async def outbox_remove(self, account: str, entry_id: str) -> None:
        """Forget a sent queued text."""
        await self._run_write(account, "removing a queued text", "odel", entry_id)

    async def flush(self, account: str) -> None:
        """Nothing to do: every write above was acknowledged by Redis when it returned."""
        del account
        await trio.lowlevel.checkpoint()

    async def save_account(self, account_id: str, data: Mapping[str, Any]) -> None:
        """Keep an account's credentials in the accounts hash.

        Anyone who can read the Redis database can read the bot tokens: protect it
        (ACL, password, TLS, a private network).
        """
        body = _dump({**data, "account_id": account_id})
        with redis_errors("saving an account"):
            await self.client.hset(self.accounts_key, {account_id: body})

    async def load_accounts(self) -> list[dict[str, Any]]:
        """Every stored account, by id.

        Raises:
            StoreError: One is corrupt (named by its id).
        """
        with redis_errors("loading accounts"):
            stored = await self.client.hgetall(self.accounts_key)
        found = []
        for account_id in sorted(stored):
            try:
                data = json.loads(stored[account_id])
            except ValueError:
                raise StoreError(f"corrupt account {account_id!r} in Redis") from None
            if not isinstance(data, dict) or data.get("account_id") != account_id:
                raise StoreError(f"corrupt account {account_id!r} in Redis: no account_id")
            found.append(data)
        return found

    async def remove_account(self, account_id: str) -> bool:
        """Forget an account's credentials (its journal stays, for a later re-login)."""
        with redis_errors("removing an account"):
            return bool(await self.client.hdel(self.accounts_key, [account_id]))

    def kv_key(self, account: str, namespace: str) -> str:
        """The hash of ``account``'s key-value namespace (in the account's cluster slot)."""
        return f"{self.prefix}:{{{account_key(account)}}}:kv:{check_namespace(namespace)}"

    async def kv_get(self, account: str, namespace: str, key: str) -> Any | None:
        """The value stored under ``key``, or ``None`` (see `KeyValueStore`).

        Raises:
            StoreUnavailableError: Redis cannot be reached.
            StoreError: The stored value is corrupt.
        """
        name = self.kv_key(account, namespace)
        with redis_errors(f"reading {namespace} of {account}"):
            body = await self.client.hget(name, check_key(key))
        return None if body is None else self._decode_kv(name, key, body)

    async def kv_put(self, account: str, namespace: str, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` (one ``HSET``; not fenced by a lease).

        Raises:
            UnencodableError: JSON cannot express ``value`` (nothing was written).
            StoreUnavailableError: Redis cannot be reached.
        """
        name = self.kv_key(account, namespace)
        body = encode(value)[:-1].decode("ascii")
        with redis_errors(f"writing {namespace} of {account}"):
            await self.client.hset(name, {check_key(key): body})

    async def kv_delete(self, account: str, namespace: str, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        name = self.kv_key(account, namespace)
        with redis_errors(f"writing {namespace} of {account}"):
            return bool(await self.client.hdel(name, [check_key(key)]))

    async def kv_items(self, account: str, namespace: str) -> dict[str, Any]:
        """Every key of the namespace and its value (one ``HGETALL``)."""
        name = self.kv_key(account, namespace)
        with redis_errors(f"reading {namespace} of {account}"):
            stored = await self.client.hgetall(name)
        return {k: self._decode_kv(name, k, v) for k, v in stored.items()}

    @staticmethod
    def _decode_kv(name: str, key: str, body: str) -> Any:
        try:
            return decode(body)
        except ValueError:
            raise StoreError(f"corrupt value of {key!r} in Redis hash {name}") from None

    async def aclose(self) -> None:
        """Nothing to release (the connection pool belongs to whoever opened it)."""
        await trio.lowlevel.checkpoint()


@asynccontextmanager
async def open_redis_store(
    url: str,
    *,
    prefix: str = "wxt",
    seen_window: int = DEFAULT_SEEN_WINDOW,
    connect_timeout: float = 5.0,
    **client_options: Any,
) -> AsyncIterator[RedisStore]:
    """Connect to Redis at ``url`` and yield a [`RedisStore`][weixin_trio.redis.RedisStore] on it.

    Args:
        url: ``redis://[user:password@]host:port/db`` (``rediss://`` for TLS, with
            the certificate and host name verified against the system's CAs unless
            ``ssl_context`` is given).
        prefix: Prefix of every key.
        seen_window: How many recently accepted message ids are kept for dedupe.
        connect_timeout: Seconds the first ``PING`` may take.
        **client_options: More options of ``coredis.Redis.from_url``.

    Yields:
        The store; the connection pool closes when the block ends.

    Raises:
        StoreUnavailableError: Redis did not answer ``PING`` (the URL is named without
            its password).

    Exceptions: one exception from the block (yours, or an internal failure) reaches
    the caller as itself, not wrapped in an ``ExceptionGroup``; several at once arrive
    as one ``ExceptionGroup`` of them.

    Cancellation:
        Safe: the pool is closed on the way out.
    """
    options: dict[str, Any] = {
        "connect_timeout": connect_timeout,
        "stream_timeout": 30.0,
        **client_options,
    }
    if url.startswith("rediss://") and "ssl_context" not in options:
        # coredis's own default accepts any certificate name; verify like a browser.
        options["ssl_context"] = ssl.create_default_context()
    client: RedisClient = coredis.Redis.from_url(url, decode_responses=True, **options)
    # Built (and the prefix checked) before coredis's task group is entered, so a bad
    # prefix is a plain ValueError, not one wrapped in an ExceptionGroup.
    store = RedisStore(client, prefix=prefix, seen_window=seen_window, url=url)
    where = safe_url(url)
    failure: StoreError | None = None
    with unwrap_single_error():
        async with client:
            try:
                with trio.fail_after(connect_timeout), redis_errors(f"connecting to {where}"):
                    await client.ping()
            except trio.TooSlowError:
                failure = StoreUnavailableError(f"Redis at {where} did not answer PING")
            except StoreError as exc:
                # e.g. unreachable, or a wrong password: raised below, outside coredis's
                # task group (no group wrapper)
                failure = exc
            else:
                yield store
        if failure is not None:
            raise failure
