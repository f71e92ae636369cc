"""Receiving: ``open_monitor`` and the ``Monitor``, lanes, commits, ``open_accounts``.

- ``open``: ``open_monitor``/``run_monitor``; ``monitor``: the poll loop and accepting
  a batch into the journal; the parts it holds: ``handling`` (dispatch, handler runs,
  the runner's host) and ``commits`` (the stop's drain, group commit of done marks);
- ``lanes``: the per-user FIFO lane dispatcher; ``values``: handler types, statistics,
  the inbound filter; ``pending_outbox``: texts held while a send window is closed;
- ``accounts``: ``open_accounts``, several accounts in one process.

Imports ``_client``, ``store``, ``_proto``, ``_wire`` and ``_errors``.
"""
