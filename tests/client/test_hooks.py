"""Send hooks: before_send rewrites or cancels, after_send observes; once per logical send."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
import trio

import weixin_trio as wx
from weixin_trio.testing import Fault

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from weixin_trio.testing import FakeILinkServer

USER = "alice@im.wechat"


@pytest.fixture(autouse=True)
def _hand_picked_tokens_count_as_issued(fake_ilink: FakeILinkServer) -> None:
    fake_ilink.default.issued_tokens.update({"ctx"})


@asynccontextmanager
async def hooked(fake: FakeILinkServer, **options: Any) -> AsyncIterator[wx.ILinkClient]:
    async with wx.open_client(
        token=fake.token,
        base_url=fake.base_url,
        cdn_base_url=fake.cdn_base_url,
        transport=fake.transport(),
        pacing=None,
        context_tokens={USER: "ctx"},
        **options,
    ) as client:
        yield client


async def test_before_send_rewrites_and_after_send_observes(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    seen: list[wx.Outgoing] = []
    reports: list[wx.SendReport] = []

    def shout(out: wx.Outgoing) -> wx.Outgoing:
        seen.append(out)
        return out.evolve(text=(out.text or "").upper())

    async def sign(out: wx.Outgoing) -> wx.Outgoing:
        await trio.lowlevel.checkpoint()
        return out.evolve(text=f"{out.text} -- bot")

    async with hooked(fake_ilink, before_send=[shout, sign], after_send=reports.append) as client:
        result = await client.send_text(USER, "hello")
    assert fake_ilink.sent_texts(USER) == ["HELLO -- bot"]
    assert [(o.to, o.kind, o.text) for o in seen] == [(USER, "text", "hello")]
    [report] = reports
    assert report.ok
    assert not report.cancelled
    assert report.result == result
    assert report.outgoing.text == "HELLO -- bot"
    assert report.duration >= 0
    assert "ctx" not in repr(seen[0])  # the context token is not in the repr


async def test_returning_none_cancels_without_charging_the_window(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    reports: list[wx.SendReport] = []

    def veto(out: wx.Outgoing) -> wx.Outgoing | None:
        return None if "secret" in (out.text or "") else out

    async def handler(msg: wx.Message) -> None:
        before = msg.client.send_window(USER, context_token=msg.context_token).remaining
        result = await msg.reply("the secret is 42")
        assert result.cancelled
        assert result.client_id == ""
        assert not result.confirmed
        after = msg.client.send_window(USER, context_token=msg.context_token).remaining
        assert before == after  # not charged
        await msg.reply("no comment")
        done.set()

    done = trio.Event()
    async with (
        hooked(fake_ilink, before_send=veto, after_send=reports.append) as client,
        wx.open_monitor(client, handler),
    ):
        mid = fake_ilink.inject_text(USER, "tell me")
        await done.wait()
    assert fake_ilink.sent_texts(USER) == ["no comment"]
    assert [r.cancelled for r in reports] == [True, False]
    assert [r.outgoing.reply_to for r in reports] == [mid, mid]


async def test_a_split_text_runs_the_hooks_once(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    calls: list[str] = []
    reports: list[wx.SendReport] = []

    def count(out: wx.Outgoing) -> wx.Outgoing:
        calls.append(out.text or "")
        return out

    text = "\n\n".join(f"paragraph {i} " + "x" * 80 for i in range(5))
    async with hooked(
        fake_ilink, before_send=count, after_send=reports.append, text_limit=100
    ) as client:
        result = await client.send_text(USER, text)
    assert len(fake_ilink.sent_texts(USER)) == 5
    assert calls == [text]
    [report] = reports
    assert report.result is result
    assert len(result.parts) == 5


async def test_retries_run_the_hooks_once(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("sendmessage", Fault.http_status(503), times=2)
    calls: list[wx.Outgoing] = []
    reports: list[wx.SendReport] = []

    def note(out: wx.Outgoing) -> wx.Outgoing:
        calls.append(out)
        return out

    async with hooked(fake_ilink, before_send=note, after_send=reports.append) as client:
        await client.send_text(USER, "hello")
    assert len(fake_ilink.requests_to("sendmessage")) == 3
    assert fake_ilink.sent_texts(USER) == ["hello"]
    assert len(calls) == 1
    [report] = reports
    assert report.ok
    assert report.duration >= 1.0  # the backoff between the attempts


async def test_a_failed_send_is_reported_and_raised(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("sendmessage", Fault.api_error(ret=-1))
    reports: list[wx.SendReport] = []
    async with hooked(fake_ilink, after_send=reports.append) as client:
        with pytest.raises(wx.ApiError) as info:
            await client.send_text(USER, "hello")
    [report] = reports
    assert not report.ok
    assert report.error is info.value
    assert report.result is None


async def test_a_raising_before_send_fails_the_send(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    def broken(out: wx.Outgoing) -> wx.Outgoing:
        raise RuntimeError("bug in hook")

    async with hooked(fake_ilink, before_send=broken) as client:
        with pytest.raises(wx.SendHookError) as info:
            await client.send_text(USER, "hello")
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "broken" in str(info.value)
    assert fake_ilink.requests_to("sendmessage") == []


@pytest.mark.parametrize(
    "hook",
    [
        lambda o: o.evolve(to="mallory@im.wechat"),
        lambda o: o.evolve(kind="image"),
        lambda o: "a string",
    ],
)
async def test_rewriting_recipient_or_kind_is_refused(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock, hook: Any
) -> None:
    async with hooked(fake_ilink, before_send=hook) as client:
        with pytest.raises(wx.SendHookError):
            await client.send_text(USER, "hello")
    assert fake_ilink.requests_to("sendmessage") == []


async def test_a_raising_after_send_is_logged_and_swallowed(
    fake_ilink: FakeILinkServer,
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(report: wx.SendReport) -> None:
        raise RuntimeError("bug in observer")

    later: list[wx.SendReport] = []
    with caplog.at_level(logging.ERROR, "weixin_trio.hooks"):
        async with hooked(fake_ilink, after_send=[broken, later.append]) as client:
            result = await client.send_text(USER, "hello")
    assert result.confirmed
    assert len(later) == 1  # the next hook still ran
    assert "after_send hook" in caplog.text


async def test_media_sends_run_the_hooks_once_with_the_caption(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    seen: list[wx.Outgoing] = []
    reports: list[wx.SendReport] = []

    def rename(out: wx.Outgoing) -> wx.Outgoing:
        seen.append(out)
        return out.evolve(text="new caption", file_name="renamed.txt")

    async with hooked(fake_ilink, before_send=rename, after_send=reports.append) as client:
        await client.send_file(USER, b"report body", file_name="r.txt", caption="old")
    [out] = seen
    assert (out.kind, out.file_name, out.text, out.source) == (
        "file",
        "r.txt",
        "old",
        b"report body",
    )
    assert "report body" not in repr(out)
    assert fake_ilink.sent_texts(USER)[0] == "new caption"
    [(_, plaintext, item)] = fake_ilink.sent_media(USER)
    assert plaintext == b"report body"
    assert item["file_item"]["file_name"] == "renamed.txt"
    assert len(reports) == 1


async def test_a_cancelled_media_send_uploads_nothing(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    async with hooked(fake_ilink, before_send=lambda o: None if o.is_media else o) as client:
        result = await client.send_image(USER, b"\x89PNG\r\n\x1a\n" + b"x" * 100)
        await client.send_text(USER, "text still goes")
    assert result.cancelled
    assert fake_ilink.requests_to("getuploadurl") == []
    assert fake_ilink.sent_texts(USER) == ["text still goes"]


async def test_hooks_must_be_callables(fake_ilink: FakeILinkServer) -> None:
    with pytest.raises(TypeError):
        async with hooked(fake_ilink, before_send=["not callable"]):
            pass
