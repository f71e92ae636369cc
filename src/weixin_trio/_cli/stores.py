"""Where the command line keeps its state: the FileStore or RedisStore, status files."""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from ..login import Account
from ..store import FileStore, StoreUnavailableError
from ..store._fsio import write_private
from ..store._journal import encode_json
from .common import CliError, default_state_dir

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from ..redis import RedisStore

    AnyStore = FileStore | RedisStore


log = logging.getLogger("weixin_trio.cli")


@asynccontextmanager
async def _open_store(args: Any, *, read_only: bool = False) -> AsyncIterator[AnyStore]:
    """The FileStore under ``--state-dir``, or the RedisStore at ``--redis``.

    ``read_only``: the FileStore only reads (no lock, no compaction, no write), so it
    is safe next to a running bot; a writer FileStore is closed (its locks released)
    when the block ends.
    """
    if not args.redis:
        async with FileStore(args.state_dir or default_state_dir(), read_only=read_only) as fs:
            yield fs
        return
    try:
        from ..redis import open_redis_store
    except ImportError:
        raise CliError("--redis needs the redis extra: pip install 'weixin-trio[redis]'") from None
    try:
        async with open_redis_store(args.redis, prefix=args.redis_prefix) as store:
            yield store
    except StoreUnavailableError as exc:
        raise CliError(str(exc)) from None


def _where(store: AnyStore) -> str:
    """Where a store keeps its data (a Redis URL is shown without its password)."""
    if isinstance(store, FileStore):
        return str(store.path)
    return f"{store.url} (prefix {store.prefix})"


async def _accounts(store: AnyStore, wanted: list[str] | None = None) -> list[Account]:
    try:
        accounts = [Account.from_json(d) for d in await store.load_accounts()]
    except ValueError as exc:
        raise CliError(f"corrupt account in {_where(store)}: {exc}") from None
    if wanted:
        known = {a.account_id for a in accounts}
        missing = [w for w in wanted if w not in known]
        if missing:
            raise CliError(f"unknown account(s): {', '.join(missing)}")
        accounts = [a for a in accounts if a.account_id in wanted]
    return accounts


def _status_path(store: FileStore, account_id: str) -> Path:
    return store.account_dir(account_id) / "status.json"


async def _write_status(store: AnyStore, account_id: str, beat: dict[str, Any]) -> None:
    """Publish an account's heartbeat (a file, or a field of ``<prefix>:status``).

    The file is replaced atomically (complete, or the old one stays), so a reader never
    sees half a heartbeat.
    """
    if isinstance(store, FileStore):
        path = _status_path(store, account_id)
        body = encode_json(beat)
        await trio.to_thread.run_sync(write_private, path.parent, path.name, body)
    else:
        from ..redis._store import redis_errors

        with redis_errors("writing the status"):
            await store.client.hset(f"{store.prefix}:status", {account_id: json.dumps(beat)})


async def _read_status(store: AnyStore, account_id: str) -> dict[str, Any]:
    raw: str | None
    if isinstance(store, FileStore):
        path = _status_path(store, account_id)
        try:
            raw = await trio.Path(path).read_text()
        except (OSError, ValueError):
            raw = None
    else:
        raw = await store.client.hget(f"{store.prefix}:status", account_id)
    try:
        beat = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return beat if isinstance(beat, dict) else {}
