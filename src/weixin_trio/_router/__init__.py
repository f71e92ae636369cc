"""[`Router`][weixin_trio.Router]: commands, filters, middleware, built-ins, on the monitor.

A router is a handler (``open_monitor(client, router)``), so lanes, the journal,
interrupts and redelivery work as for any other handler. Modules: ``signatures``
(the handler types), ``routes`` (what a route matches), ``chain`` (middleware and
error handlers), ``router`` (the `Router`), ``builtins`` (``/echo``, ``/help``,
``/status``, ``/toggle-debug``), ``debug`` (the per-account debug mode and its trace),
``delivery`` (what the router knows about the message it is handling).
"""

from __future__ import annotations

from .router import Router

__all__ = ["Router"]
