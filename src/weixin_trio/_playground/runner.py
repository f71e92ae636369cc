"""`run_playground`: the fake server, the web UI and (optionally) the bot, in one process."""

from __future__ import annotations

import logging
import webbrowser
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import trio

from .._client.open import open_client
from .._monitor.open import open_monitor
from .._proto.backoff import Backoff
from .._web.serve import serve_asgi
from ..testing import FakeILinkServer
from .app import LOOPBACK_HOSTS, build_app
from .chats import Chats
from .faults import FaultPanel
from .hub import EventHub

if TYPE_CHECKING:
    from .._monitor.values import Handler

__all__ = ["BOT_BACKOFF", "Playground", "open_browser", "run_playground"]

log = logging.getLogger("weixin_trio.playground")

#: The bot's poll backoff in the playground: short, so a fault switched off is
#: recovered from within seconds (the live default waits 30 s after 3 failures).
BOT_BACKOFF: Final = Backoff(retry_delay=0.5, backoff_delay=2.0)
#: Seconds the bot pauses after a repeated ``-14`` (live default: an hour).
STALE_TOKEN_PAUSE: Final = 3.0
#: Seconds the fake holds an idle long poll (live: 35 s).
POLL_HOLD: Final = 2.0
#: The simulated users every playground starts with.
DEFAULT_USERS: Final = ("Alice", "Bob")


class Playground:
    """The parts of a playground: fake server, event hub, chats and fault panel.

    Args:
        host: The address it will listen on: a loopback address (the default) makes
            the app answer only to loopback host names; any other, to every name.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        # A short long-poll hold: a fault switched on hits the next poll within seconds.
        self.fake = FakeILinkServer(hold=POLL_HOLD)
        self.fake.cdn_full_urls = True  # bots with another default CDN base still reach it
        self.hub = EventHub()
        self.chats = Chats(self.fake, self.hub)
        self.panel = FaultPanel(self.fake)
        for name in DEFAULT_USERS:
            self.chats.add_user(name)
        loopback = host in LOOPBACK_HOSTS or host.startswith("127.")
        hosts = (*LOOPBACK_HOSTS, host) if loopback else ("*",)
        self.app = build_app(self.chats, self.panel, self.hub, allowed_hosts=hosts)

    async def run_bot(self, handler: Handler) -> None:
        """Run ``handler`` against the fake server (in-process transport, no pacing).

        A bot that stops (its monitor crashed) is reported on the page; the
        playground stays up.

        Cancellation:
            Stops the bot.
        """
        fake = self.fake
        self.hub.publish("bot", state="running")
        try:
            async with (
                open_client(
                    token=fake.token,
                    base_url=fake.base_url,
                    cdn_base_url=fake.cdn_base_url,
                    transport=fake.transport(),
                    pacing=None,
                ) as client,
                open_monitor(
                    client,
                    handler,
                    backoff=BOT_BACKOFF,
                    stale_token_pause=STALE_TOKEN_PAUSE,
                    drain_timeout=0.0,  # Ctrl+C stops at once
                ),
            ):
                await trio.sleep_forever()
        except Exception as exc:
            log.exception("the bot stopped")
            self.hub.publish("bot", state="stopped", detail=f"{type(exc).__name__}: {exc}")


async def open_browser(url: str) -> None:
    """Open ``url`` in the default browser, in a worker thread (never fails).

    Cancellation:
        Abandons the thread.
    """
    try:
        await trio.to_thread.run_sync(webbrowser.open, url, abandon_on_cancel=True)
    except Exception:
        log.warning("could not open a browser; open %s yourself", url)


async def run_playground(
    handler: Handler | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    browser: bool = False,
    task_status: trio.TaskStatus[dict[str, Any]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a playground until cancelled; ``task_status`` gets its addresses.

    Args:
        handler: The bot to run against the fake server (``None``: connect your own
            to ``base_url`` with ``token``).
        host: The address to listen on (loopback by default).
        port: The port (0: a free one).
        browser: Open the page in the default browser.
        task_status: Reports ``{"url", "base_url", "token", "cdn_base_url"}`` once
            the page is served.

    Cancellation:
        Stops the bot, the web server and every event stream at once.
    """
    playground = Playground(host)
    fake = playground.fake
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(serve_asgi, playground.app, host=host, port=port))
        fake.base_url = f"{url}/fake"
        fake.qr.base_url = fake.base_url
        info = {
            "url": f"{url}/",
            "base_url": fake.base_url,
            "token": fake.token,
            "cdn_base_url": fake.cdn_base_url,
        }
        if handler is not None:
            nursery.start_soon(playground.run_bot, handler)
        if browser:
            nursery.start_soon(open_browser, info["url"])
        task_status.started(info)
