"""Error notices: a message given up gets one short, classified notice to its sender."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

import weixin_trio as wx
from weixin_trio._errors import ApiError, CdnError, RateLimitedError, TransportError
from weixin_trio._monitor.handler_runner import HandlerRunner, RunnerCounters
from weixin_trio._proto.backoff import Backoff
from weixin_trio._proto.error_notices import notice_client_id, notice_kind, unreachable
from weixin_trio.testing import Fault

from .._helpers import until

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import pytest

    from weixin_trio.redis import RedisStore
    from weixin_trio.testing import FakeILinkServer

USER = "alice@im.wechat"
NOTICES = wx.ErrorNotices()
FAST = Backoff(retry_delay=0.1, backoff_delay=0.1, growth=1.0, jitter=0.0)


async def _dead_letter_one(
    fake: FakeILinkServer,
    client: wx.ILinkClient,
    handler: Callable[[wx.Message], Awaitable[None]],
    *,
    error_notice: object = NOTICES,
    inject: Callable[[], int] | None = None,
) -> tuple[int, wx.MonitorStatistics]:
    store = wx.MemoryStore()
    async with wx.open_monitor(
        client,
        handler,
        store=store,
        max_attempts=2,
        retry_backoff=FAST,
        error_notice=error_notice,  # type: ignore[arg-type]
    ) as monitor:
        mid = inject() if inject else fake.inject_text(USER, "hello")
        await until(lambda: monitor.statistics().dead_lettered > 0, timeout=60)
        await trio.sleep(1)  # the notice's send
        stats = monitor.statistics()
    assert [d.message_id for d in (await store.load(client.account_id)).dead_letters] == [mid]
    return mid, stats


async def test_a_failing_handler_gets_one_internal_notice(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(msg: wx.Message) -> None:
        raise ValueError("boom")

    mid, _ = await _dead_letter_one(fake_ilink, ilink_client, handler)
    [sent] = fake_ilink.sent_to(USER)
    assert sent.text == NOTICES.internal
    assert sent.client_id == notice_client_id(ilink_client.account_id, mid)


async def test_no_notice_by_default(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(msg: wx.Message) -> None:
        raise ValueError("boom")

    await _dead_letter_one(fake_ilink, ilink_client, handler, error_notice=None)
    assert fake_ilink.sent_to(USER) == []


async def test_a_timed_out_handler_gets_the_internal_notice(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(msg: wx.Message) -> None:
        await trio.sleep(100)

    store = wx.MemoryStore()
    async with wx.open_monitor(
        ilink_client,
        handler,
        store=store,
        max_attempts=1,
        handler_timeout=5,
        error_notice=wx.ErrorNotices(internal="timed out, sorry"),
    ) as monitor:
        fake_ilink.inject_text(USER, "hello")
        await fake_ilink.wait_for_sent(1, user=USER)
        assert monitor.statistics().timed_out == 1
    assert fake_ilink.sent_texts(USER) == ["timed out, sorry"]


async def test_a_failed_download_gets_the_download_notice(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("cdn_download", Fault.http_status(404), times=10)

    async def handler(msg: wx.Message) -> None:
        await msg.download()

    await _dead_letter_one(
        fake_ilink,
        ilink_client,
        handler,
        inject=lambda: fake_ilink.inject_image(USER, b"\x89PNG\r\n\x1a\n" + b"x" * 100),
    )
    assert fake_ilink.sent_texts(USER) == [NOTICES.download]


async def test_a_failed_upload_gets_the_upload_notice(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("cdn_upload", Fault.http_status(502), times=6)

    async def handler(msg: wx.Message) -> None:
        await msg.reply_file(b"report", file_name="r.txt")

    await _dead_letter_one(fake_ilink, ilink_client, handler)
    assert fake_ilink.sent_texts(USER) == [NOTICES.upload]


async def test_a_reply_that_could_not_be_sent_gets_the_send_notice(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    # One 5xx per attempt (no send retries), then the notice gets through.
    fake_ilink.inject_fault("sendmessage", Fault.http_status(503), times=2)

    async def handler(msg: wx.Message) -> None:
        await msg.reply("the answer")

    async with wx.open_client(
        token=fake_ilink.token,
        base_url=fake_ilink.base_url,
        cdn_base_url=fake_ilink.cdn_base_url,
        transport=fake_ilink.transport(),
        pacing=None,
        send_retry=None,
    ) as client:
        await _dead_letter_one(fake_ilink, client, handler)
    assert fake_ilink.sent_texts(USER) == [NOTICES.send]


async def test_never_after_a_permanent_send_error(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("sendmessage", Fault.api_error(ret=-1, errmsg="no"), times=2)

    async def handler(msg: wx.Message) -> None:
        await msg.reply("the answer")

    await _dead_letter_one(fake_ilink, ilink_client, handler)
    assert fake_ilink.sent_to(USER) == []
    assert len(fake_ilink.requests_to("sendmessage")) == 2  # no notice was even tried


async def test_custom_texts_and_switching_a_kind_off(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    seen: list[tuple[str, str]] = []

    def notice(kind: str, error: Exception) -> str | None:
        seen.append((kind, type(error).__name__))
        return None if isinstance(error, KeyError) else f"oops ({kind})"

    async def handler(msg: wx.Message) -> None:
        raise KeyError(msg.text) if msg.text == "k" else ValueError(msg.text)

    await _dead_letter_one(fake_ilink, ilink_client, handler, error_notice=notice)
    await _dead_letter_one(
        fake_ilink,
        ilink_client,
        handler,
        error_notice=notice,
        inject=lambda: fake_ilink.inject_text(USER, "k"),
    )
    assert seen == [("internal", "ValueError"), ("internal", "KeyError")]
    assert fake_ilink.sent_texts(USER) == ["oops (internal)"]
    await _dead_letter_one(
        fake_ilink, ilink_client, handler, error_notice=wx.ErrorNotices(internal="")
    )
    assert fake_ilink.sent_texts(USER) == ["oops (internal)"]


async def test_a_redelivered_message_shows_its_notice_once(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    """A crash after the notice but before the dead letter was kept: the same client_id."""
    counters = RunnerCounters()

    async def handler(msg: wx.Message) -> None:
        raise ValueError("boom")

    runner = HandlerRunner(
        handler,
        max_attempts=1,
        handler_timeout=None,
        retry_backoff=FAST,
        counters=counters,
        error_notice=NOTICES,
    )
    got: list[wx.Message] = []

    async def grab(msg: wx.Message) -> None:
        got.append(msg)

    async with wx.open_monitor(ilink_client, grab):
        fake_ilink.inject_text(USER, "hello")
        await until(lambda: bool(got), timeout=10)
    for _ in range(2):  # the first run, and the redelivery
        await runner.send_notice(got[0], ValueError("boom"))
    assert fake_ilink.sent_texts(USER) == [NOTICES.internal]
    assert len(fake_ilink.requests_to("sendmessage")) == 2


async def test_a_failing_notice_is_logged_not_raised(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(msg: wx.Message) -> None:
        fake_ilink.inject_fault("sendmessage", Fault.api_error(ret=-1), times=100)
        raise ValueError("boom")

    _, stats = await _dead_letter_one(fake_ilink, ilink_client, handler)
    assert stats.dead_lettered == 1
    assert "error notice failed" in caplog.text


def test_classification() -> None:
    assert notice_kind(ValueError()) == "internal"
    assert notice_kind(TimeoutError()) == "internal"
    assert notice_kind(wx.RemoteMediaError("too_large", "x", url="u")) == "download"
    assert notice_kind(ApiError(endpoint="ilink/bot/getuploadurl", status_code=500)) == "upload"
    assert notice_kind(CdnError("CDN upload failed")) == "upload"
    assert notice_kind(TransportError("x", endpoint="ilink/bot/sendmessage")) == "send"
    assert notice_kind(ApiError(endpoint="ilink/bot/sendmessage", status_code=502)) == "send"
    assert unreachable(ApiError(endpoint="ilink/bot/sendmessage", ret=-1))
    assert unreachable(wx.StaleTokenError(endpoint="ilink/bot/sendmessage", ret=-14))
    assert unreachable(wx.NoContextTokenError(USER))
    assert not unreachable(RateLimitedError(endpoint="ilink/bot/sendmessage", ret=-2))
    assert not unreachable(ApiError(endpoint="ilink/bot/sendmessage", status_code=503))
    assert not unreachable(ApiError(endpoint="ilink/bot/getuploadurl", ret=-1))
    assert not unreachable(ValueError())


async def test_the_redis_fanout_worker_sends_notices_too(redis_store: RedisStore) -> None:
    """The worker runs handlers through the same HandlerRunner: same notice, once."""
    from weixin_trio.redis import StreamPublisher, agree_partitions, open_fanout_worker
    from weixin_trio.testing import FakeILinkServer

    from ..redis.test_streams import Publisher, accounts_of, options, save_accounts, wait_for

    fake = FakeILinkServer(seed=11, hold=0.5)  # short polls: the clock is real
    store = redis_store
    acct = fake.default
    await save_accounts(store, fake, accounts_of(fake))
    await agree_partitions(store, 2)

    async def handler(msg: wx.Message) -> None:
        raise RuntimeError("boom")

    with trio.fail_after(20):
        async with (
            wx.open_client(
                token=acct.token, base_url=fake.base_url, account_id=acct.bot_id, **options(fake)
            ) as client,
            open_fanout_worker(
                handler,
                store=store,
                lease_ttl=3.0,
                node_id="w",
                max_attempts=2,
                retry_delay=0.05,
                client_options=options(fake),
                error_notice=wx.ErrorNotices(internal="sorry!"),
            ) as worker,
        ):
            pub = Publisher(StreamPublisher(store, partitions=2), {acct.bot_id: client})
            mid = await pub.publish(acct, USER, "poison")
            await wait_for(lambda: bool(fake.sent_to(USER, account=acct)))
            assert worker.statistics().dead_lettered == 1
    [sent] = fake.sent_to(USER, account=acct)
    assert sent.text == "sorry!"
    assert sent.client_id == notice_client_id(acct.bot_id, mid)
