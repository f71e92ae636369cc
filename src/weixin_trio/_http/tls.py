"""The one TLS client context of the process (CAs as httpx loads them; ~1 MiB each)."""

from __future__ import annotations

import functools
import os
import ssl

__all__ = ["ssl_context"]


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """The shared client TLS context: certifi's CAs, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``.

    Built as ``httpx.create_ssl_context()`` builds it, without importing httpx, and
    offering only ``http/1.1`` by ALPN.
    """
    if os.environ.get("SSL_CERT_FILE"):
        ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    elif os.environ.get("SSL_CERT_DIR"):
        ctx = ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    else:
        import certifi

        ctx = ssl.create_default_context(cafile=certifi.where())
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
