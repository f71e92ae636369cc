"""weixin_trio: a trio structured-concurrency library for WeChat iLink ("ClawBot") bots.

The public API lives here; submodules with a leading underscore are private.
Sans-IO helpers are public modules of their own: [`weixin_trio.markdown`][weixin_trio.markdown],
`weixin_trio.text`, `weixin_trio.crypto`, `weixin_trio.cdn`,
`weixin_trio.media`; the test kit is `weixin_trio.testing`.

Importing the package is cheap: it loads the exceptions and the version only. The
client, monitor and store names load together on first use (PEP 562), so the sans-IO
helpers (``import weixin_trio.text``) do not pay for trio and the HTTP stack; the
media, CDN-transfer, crypto, login and CLI code loads only when used, so a text bot
never loads it.
"""

import contextlib
import importlib
import typing

from ._errors import (
    ApiError as ApiError,
    CdnError as CdnError,
    LeaseLostError as LeaseLostError,
    MonitorCrashed as MonitorCrashed,
    NoContextTokenError as NoContextTokenError,
    NoStoreError as NoStoreError,
    ProtocolError as ProtocolError,
    RateLimitedError as RateLimitedError,
    RemoteMediaError as RemoteMediaError,
    SendHookError as SendHookError,
    SendWindowClosedError as SendWindowClosedError,
    StaleTokenError as StaleTokenError,
    StoreError as StoreError,
    StoreLockedError as StoreLockedError,
    StoreUnavailableError as StoreUnavailableError,
    TransportError as TransportError,
    WeixinError as WeixinError,
)
from ._version import __version__ as __version__

if typing.TYPE_CHECKING:
    # What mypy and the docs see; at run time `__getattr__` loads these on first use.
    from ._access.control import AccessControl as AccessControl
    from ._client.ilink_client import (
        DEFAULT_BASE_URL as DEFAULT_BASE_URL,
        DEFAULT_CDN_BASE_URL as DEFAULT_CDN_BASE_URL,
        ILinkClient as ILinkClient,
        SendResult as SendResult,
    )
    from ._client.message import Message as Message
    from ._client.open import open_client as open_client
    from ._client.pacing import Pacing as Pacing
    from ._client.runs import Run as Run
    from ._client.sender import SendRetryPolicy as SendRetryPolicy
    from ._monitor.accounts import AccountRunner as AccountRunner, open_accounts as open_accounts
    from ._monitor.monitor import Monitor as Monitor
    from ._monitor.open import open_monitor as open_monitor, run_monitor as run_monitor
    from ._monitor.values import (
        MalformedMessageError as MalformedMessageError,
        MonitorStatistics as MonitorStatistics,
        StaleTokenInfo as StaleTokenInfo,
        should_process as should_process,
    )
    from ._proto.address_policy import RemoteMediaPolicy as RemoteMediaPolicy
    from ._proto.backoff import Backoff as Backoff
    from ._proto.commands import Command as Command
    from ._proto.error_notices import ErrorNotices as ErrorNotices
    from ._proto.inbound import MediaRef as MediaRef, Quote as Quote
    from ._proto.outgoing import Outgoing as Outgoing, SendReport as SendReport
    from ._proto.send_windows import SendWindow as SendWindow, SendWindowPolicy as SendWindowPolicy
    from ._router.router import Router as Router
    from ._state.conversation import ConversationState as ConversationState
    from ._state.flow import Flow as Flow
    from .store import (
        DeadLetter as DeadLetter,
        FileStore as FileStore,
        KeyValueStore as KeyValueStore,
        MemoryStore as MemoryStore,
        Store as Store,
    )

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CDN_BASE_URL",
    "AccessControl",
    "AccountRunner",
    "ApiError",
    "Backoff",
    "CdnError",
    "Command",
    "ConversationState",
    "DeadLetter",
    "ErrorNotices",
    "FileStore",
    "Flow",
    "ILinkClient",
    "KeyValueStore",
    "LeaseLostError",
    "MalformedMessageError",
    "MediaRef",
    "MemoryStore",
    "Message",
    "Monitor",
    "MonitorCrashed",
    "MonitorStatistics",
    "NoContextTokenError",
    "NoStoreError",
    "Outgoing",
    "Pacing",
    "ProtocolError",
    "Quote",
    "RateLimitedError",
    "RemoteMediaError",
    "RemoteMediaPolicy",
    "Router",
    "Run",
    "SendHookError",
    "SendReport",
    "SendResult",
    "SendRetryPolicy",
    "SendWindow",
    "SendWindowClosedError",
    "SendWindowPolicy",
    "StaleTokenError",
    "StaleTokenInfo",
    "Store",
    "StoreError",
    "StoreLockedError",
    "StoreUnavailableError",
    "TransportError",
    "WeixinError",
    "__version__",
    "open_accounts",
    "open_client",
    "open_monitor",
    "run_monitor",
    "should_process",
]

#: The home module of every public name that loads on first use (the same names as the
#: ``TYPE_CHECKING`` block above; ``tests/test_imports.py`` checks that they agree).
_LAZY: typing.Final[dict[str, str]] = {
    "AccessControl": "._access.control",
    "DEFAULT_BASE_URL": "._client.ilink_client",
    "DEFAULT_CDN_BASE_URL": "._client.ilink_client",
    "ILinkClient": "._client.ilink_client",
    "SendResult": "._client.ilink_client",
    "Message": "._client.message",
    "open_client": "._client.open",
    "Pacing": "._client.pacing",
    "Run": "._client.runs",
    "SendRetryPolicy": "._client.sender",
    "AccountRunner": "._monitor.accounts",
    "open_accounts": "._monitor.accounts",
    "Monitor": "._monitor.monitor",
    "open_monitor": "._monitor.open",
    "run_monitor": "._monitor.open",
    "MalformedMessageError": "._monitor.values",
    "MonitorStatistics": "._monitor.values",
    "StaleTokenInfo": "._monitor.values",
    "should_process": "._monitor.values",
    "RemoteMediaPolicy": "._proto.address_policy",
    "Backoff": "._proto.backoff",
    "Command": "._proto.commands",
    "ErrorNotices": "._proto.error_notices",
    "MediaRef": "._proto.inbound",
    "Quote": "._proto.inbound",
    "Outgoing": "._proto.outgoing",
    "SendReport": "._proto.outgoing",
    "SendWindow": "._proto.send_windows",
    "SendWindowPolicy": "._proto.send_windows",
    "Router": "._router.router",
    "ConversationState": "._state.conversation",
    "Flow": "._state.flow",
    "DeadLetter": ".store",
    "FileStore": ".store",
    "KeyValueStore": ".store",
    "MemoryStore": ".store",
    "Store": ".store",
}

#: Public submodules that ``import weixin_trio`` used to load as a side effect; they
#: still answer attribute access (``weixin_trio.text``), importing on first use. The
#: others (``crypto``, ``login``, ``voice``, ``redis``, ``testing``) need an import, as
#: before: some need an extra, and ``hasattr`` must not raise ``ImportError``.
_SUBMODULES: typing.Final = frozenset({"cdn", "markdown", "media", "store", "text"})


def _fixup_module_metadata(names: list[str]) -> None:
    """Make public names report ``weixin_trio`` as their module (like trio does)."""
    for name in names:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("weixin_trio.") and hasattr(
            obj, "__qualname__"
        ):
            with contextlib.suppress(AttributeError, TypeError):
                obj.__module__ = __name__


def _load_public_names() -> None:
    """Import the client, monitor and store names all at once (one consistent state)."""
    found = {
        name: getattr(importlib.import_module(home, __name__), name) for name, home in _LAZY.items()
    }
    globals().update(found)
    _fixup_module_metadata(list(found))


_fixup_module_metadata([name for name in __all__ if name not in _LAZY])

if not typing.TYPE_CHECKING:  # mypy must not read every unknown name as valid

    def __getattr__(name: str) -> object:
        if name in _LAZY:
            _load_public_names()
            return globals()[name]
        if name in _SUBMODULES:
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})
