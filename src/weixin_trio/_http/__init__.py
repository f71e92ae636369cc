"""The lean HTTP path: HTTP/1.1 keep-alive with h11 directly on trio streams (issue 16).

Every API request of a client goes through one object with a ``request`` method (the
[`Http`][weixin_trio._http.api.Http] protocol): a [`Pool`][weixin_trio._http.pool.Pool]
of [`Connection`][weixin_trio._http.connection.Connection] objects by default, or the
[`HttpxAdapter`][weixin_trio._http.httpx_adapter.HttpxAdapter] when the user gave an
``httpx.AsyncClient``. Only the byte stream under a connection differs between
production (`connect_tcp`: TCP, TLS) and tests (`transport_stream`: an in-process
stream answered by any httpx transport), so the test suite runs the same h11 and pool
code as production.

The core modules (``api``, ``target``, ``connection``, ``pool``, ``shared``,
``connect_tcp``, ``tls``) do not import httpx.
"""
