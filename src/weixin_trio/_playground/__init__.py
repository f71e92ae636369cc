"""The browser playground: a fake iLink server, a chat page and live events.

``weixin-trio playground`` (the ``web`` extra) builds on these modules:

- `hub`: the ordered event log the page follows (server-sent events);
- `chats`: simulated users and groups, what they send (real AES through the fake
  CDN) and what the bot sends back, watched on the fake server;
- `faults`: the fault panel's presets;
- `app`: the ASGI app (page, static assets, JSON API, event stream, the fake server
  itself under ``/fake``);
- `runner`: everything in one process, plus the bot's handler if one is given.
"""
