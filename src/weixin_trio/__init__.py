"""weixin_trio: trio structured-concurrency library for WeChat iLink bots."""

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
from ._version import __version__ as __version__

__all__ = [
    "ApiError",
    "CdnError",
    "MonitorCrashed",
    "NoContextTokenError",
    "ProtocolError",
    "RateLimitedError",
    "SendWindowClosedError",
    "StaleTokenError",
    "TransportError",
    "WeixinError",
    "__version__",
]
