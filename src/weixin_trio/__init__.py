"""weixin_trio: a trio structured-concurrency library for WeChat iLink ("ClawBot") bots.

The public API lives here; submodules with a leading underscore are private.
Sans-IO helpers are public modules of their own: [`weixin_trio.markdown`][weixin_trio.markdown],
`weixin_trio.text`, `weixin_trio.crypto`, `weixin_trio.cdn`,
`weixin_trio.media`; the test kit is `weixin_trio.testing`.
"""

import contextlib

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
from ._errors import (
    ApiError as ApiError,
    CdnError as CdnError,
    MonitorCrashed as MonitorCrashed,
    NoContextTokenError as NoContextTokenError,
    ProtocolError as ProtocolError,
    RateLimitedError as RateLimitedError,
    SendWindowClosedError as SendWindowClosedError,
    StaleTokenError as StaleTokenError,
    TransportError as TransportError,
    WeixinError as WeixinError,
)
from ._monitor.accounts import AccountRunner as AccountRunner, open_accounts as open_accounts
from ._monitor.monitor import Monitor as Monitor
from ._monitor.open import open_monitor as open_monitor, run_monitor as run_monitor
from ._monitor.values import (
    MalformedMessageError as MalformedMessageError,
    MonitorStatistics as MonitorStatistics,
    StaleTokenInfo as StaleTokenInfo,
    should_process as should_process,
)
from ._proto.backoff import Backoff as Backoff
from ._proto.inbound import MediaRef as MediaRef, Quote as Quote
from ._proto.send_windows import SendWindow as SendWindow, SendWindowPolicy as SendWindowPolicy
from ._version import __version__ as __version__
from .store import (
    DeadLetter as DeadLetter,
    FileStore as FileStore,
    LeaseLostError as LeaseLostError,
    MemoryStore as MemoryStore,
    Store as Store,
    StoreError as StoreError,
    StoreLockedError as StoreLockedError,
    StoreUnavailableError as StoreUnavailableError,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CDN_BASE_URL",
    "AccountRunner",
    "ApiError",
    "Backoff",
    "CdnError",
    "DeadLetter",
    "FileStore",
    "ILinkClient",
    "LeaseLostError",
    "MalformedMessageError",
    "MediaRef",
    "MemoryStore",
    "Message",
    "Monitor",
    "MonitorCrashed",
    "MonitorStatistics",
    "NoContextTokenError",
    "Pacing",
    "ProtocolError",
    "Quote",
    "RateLimitedError",
    "Run",
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


def _fixup_module_metadata() -> None:
    """Make public names report ``weixin_trio`` as their module (like trio does)."""
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("weixin_trio.") and hasattr(
            obj, "__qualname__"
        ):
            with contextlib.suppress(AttributeError, TypeError):
                obj.__module__ = __name__


_fixup_module_metadata()
del _fixup_module_metadata
