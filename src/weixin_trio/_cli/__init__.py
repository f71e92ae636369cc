"""The ``weixin-trio`` command line (``rich`` and ``segno`` are imported only here).

- ``app``: argument parsing, logging set-up, exit codes, ``main``;
- ``commands``: the one-shot commands (login, accounts, status, send, demo);
- ``serve``: ``run`` and ``worker``, serving until a signal; ``stores``: the state;
- ``text``: QR codes and status tables for a terminal; ``demo``: the offline demo.

Imports everything; nothing imports it but ``weixin_trio.__main__``.
"""

from .app import main as main

__all__ = ["main"]
