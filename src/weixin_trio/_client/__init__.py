"""One account's connection: ``open_client``, ``ILinkClient`` and the parts it holds.

- ``endpoints``: the private endpoint layer, the one HTTP and error choke point;
- ``state``: the account's ``LiveState`` (context tokens, send windows, typing
  tickets, the pending-outbox slot, the long-poll hint);
- ``messenger``: text and item sends (context token, send window, hand-off);
- ``sender``: the send queue, its sender tasks and the governor (``pacing``);
- ``cdn_transfer``/``media_send``, ``typing_indicator``, ``runs``: helpers that take
  only the part they need; ``message``: the inbound ``Message`` and its replies.

Imports ``_proto``, ``_wire``, the public helpers and ``_errors``; never ``_monitor``,
``store`` or ``redis``: a client works without a monitor.
"""
