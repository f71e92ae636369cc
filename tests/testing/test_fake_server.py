"""The fake server's own behaviour: validation, deviations, delivery, faults, control paths."""

from __future__ import annotations

import base64
import math
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio
import trio.testing

import weixin_trio as wx
from weixin_trio import _wire as w
from weixin_trio.testing import FakeILinkServer, Fault

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ALICE = "alice@im.wechat"
BOB = "bob@im.wechat"
VERSION_HEADER = "256"


@asynccontextmanager
async def connect(fake: FakeILinkServer, **kwargs: Any) -> AsyncIterator[wx.ILinkClient]:
    kwargs.setdefault("pacing", None)
    kwargs.setdefault("token", fake.token)
    async with wx.open_client(base_url=fake.base_url, transport=fake.transport(), **kwargs) as c:
        yield c


@asynccontextmanager
async def raw_http(fake: FakeILinkServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url) as http:
        yield http


def headers(
    token: str,
    *,
    app_headers: bool = True,
    uin: str | None = base64.b64encode(b"12345").decode(),
    content_type: str = "application/json",
    authorization_type: str | None = "ilink_bot_token",
    scheme: str = "Bearer",
) -> dict[str, str]:
    h = {"Content-Type": content_type, "Authorization": f"{scheme} {token}".strip()}
    if authorization_type is not None:
        h["AuthorizationType"] = authorization_type
    if uin is not None:
        h["X-WECHAT-UIN"] = uin
    if app_headers:
        h["iLink-App-Id"] = "bot"
        h["iLink-App-ClientVersion"] = VERSION_HEADER
    return h


BASE_INFO = {"channel_version": "0.1.0", "bot_agent": "raw-test/1"}


def good_msg(**overrides: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "from_user_id": "",
        "to_user_id": ALICE,
        "client_id": "raw-client-1",
        "message_type": 2,
        "message_state": 2,
        "item_list": [{"type": 1, "text_item": {"text": "hi"}}],
        "context_token": "ctx",
    }
    msg.update(overrides)
    return {key: value for key, value in msg.items() if value is not None}


# --- validation: lenient like the live server, loud in its report -------------------


def issues_of(fake: FakeILinkServer) -> list[tuple[str, str | None]]:
    return [(i.category, i.field) for i in fake.protocol_issues]


async def post(
    fake: FakeILinkServer, path: str, body: Any, **header_options: Any
) -> httpx.Response:
    async with raw_http(fake) as http:
        return await http.post(path, json=body, headers=headers(fake.token, **header_options))


async def test_valid_hand_built_send_is_accepted_without_issues() -> None:
    fake = FakeILinkServer()
    fake.default.issued_tokens.add("ctx")
    resp = await post(fake, "ilink/bot/sendmessage", {"msg": good_msg(), "base_info": BASE_INFO})
    assert resp.status_code == 200
    assert isinstance(resp.json()["message_id"], int)
    assert fake.rejections == []
    assert fake.protocol_issues == []
    assert fake.sent_texts(ALICE) == ["hi"]


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"msg": good_msg(message_type="2"), "base_info": BASE_INFO}, "message_type"),
        ({"msg": good_msg(client_id=123), "base_info": BASE_INFO}, "client_id"),
        ({"msg": good_msg(from_user_id="bot@im.bot"), "base_info": BASE_INFO}, "from_user_id"),
        ({"msg": good_msg(message_type=1), "base_info": BASE_INFO}, "message_type"),
        ({"msg": good_msg(client_id=""), "base_info": BASE_INFO}, "client_id"),
        ({"msg": good_msg(to_user_id=""), "base_info": BASE_INFO}, "to_user_id"),
        ({"msg": good_msg(), "base_info": {"channel_version": 1}}, "channel_version"),
        ({"base_info": BASE_INFO}, "msg"),
        ({"msg": "text", "base_info": BASE_INFO}, "msg"),
    ],
)
async def test_wrong_types_and_missing_required_fields_are_rejected(
    body: dict[str, Any], reason: str, strict: bool
) -> None:
    fake = FakeILinkServer(strict=strict)
    resp = await post(fake, "ilink/bot/sendmessage", body)
    assert resp.status_code == 400
    assert resp.json()["ret"] == -1
    [rejection] = fake.rejections
    assert rejection.startswith("sendmessage: ")
    assert reason in rejection
    assert fake.sends == []


async def test_body_that_is_not_json_is_rejected() -> None:
    fake = FakeILinkServer()
    async with raw_http(fake) as http:
        resp = await http.post(
            "ilink/bot/msg/notifystart", content=b"{nope", headers=headers(fake.token)
        )
    assert resp.status_code == 400
    assert fake.rejections == ["notifystart: body is not JSON"]


@pytest.mark.parametrize(
    ("body", "header_options", "issue"),
    [
        (
            {"msg": {**good_msg(), "bogus": 1}, "base_info": BASE_INFO},
            {},
            ("unknown-field", "$.msg.bogus"),
        ),
        (
            {"msg": good_msg(), "base_info": BASE_INFO, "extra_top": 1},
            {},
            ("unknown-field", "$.extra_top"),
        ),
        (
            {"msg": good_msg(), "base_info": {**BASE_INFO, "new_field": "x"}},
            {},
            ("unknown-field", "$.base_info.new_field"),
        ),
        (
            {"msg": {**good_msg(), "run_id": None}, "base_info": BASE_INFO},
            {},
            ("null-field", "$.msg.run_id"),
        ),
        ({"msg": good_msg()}, {}, ("missing-field", "$.base_info")),
        (
            {"msg": good_msg(), "base_info": BASE_INFO},
            {"content_type": "text/plain"},
            ("content-type", "Content-Type"),
        ),
        (
            {"msg": good_msg(), "base_info": BASE_INFO},
            {"authorization_type": None},
            ("missing-authorization-type", "AuthorizationType"),
        ),
        (
            {"msg": good_msg(), "base_info": BASE_INFO},
            {"authorization_type": "other"},
            ("missing-authorization-type", "AuthorizationType"),
        ),
        (
            {"msg": good_msg(), "base_info": BASE_INFO},
            {"uin": base64.b64encode(b"abc").decode()},
            ("bad-header", "X-WECHAT-UIN"),
        ),
        (
            {"msg": good_msg(), "base_info": BASE_INFO},
            {"uin": base64.b64encode(str(2**32).encode()).decode()},
            ("bad-header", "X-WECHAT-UIN"),
        ),
        (
            {"msg": good_msg(), "base_info": BASE_INFO},
            {"uin": "not base64!"},
            ("bad-header", "X-WECHAT-UIN"),
        ),
        (
            {"msg": good_msg(), "base_info": BASE_INFO},
            {"scheme": "bearer"},
            ("auth-scheme", "Authorization"),
        ),
        (
            {"msg": good_msg(), "base_info": BASE_INFO},
            {"scheme": ""},
            ("auth-scheme", "Authorization"),
        ),
    ],
)
async def test_lenient_requests_are_served_and_reported_and_strict_rejects_them(
    body: dict[str, Any], header_options: dict[str, Any], issue: tuple[str, str]
) -> None:
    lenient = FakeILinkServer()
    lenient.default.issued_tokens.add("ctx")
    resp = await post(lenient, "ilink/bot/sendmessage", body, **header_options)
    assert resp.status_code == 200, resp.text
    assert isinstance(resp.json()["message_id"], int)
    assert lenient.sent_texts(ALICE) == ["hi"]
    assert lenient.rejections == []
    assert issues_of(lenient) == [issue]
    [found] = lenient.protocol_issues
    assert found.endpoint == "sendmessage"
    assert found.strict_rejects

    strict = FakeILinkServer(strict=True)
    strict.default.issued_tokens.add("ctx")
    resp = await post(strict, "ilink/bot/sendmessage", body, **header_options)
    if issue[0] == "auth-scheme":  # as before: an unusable token is a stale session
        assert resp.json()["ret"] == -14
    else:
        assert resp.status_code == 400
        [rejection] = strict.rejections
        assert found.detail in rejection
    assert strict.sends == []
    assert issues_of(strict) == [issue]  # recorded in strict mode too


async def test_a_send_without_item_list_is_what_the_official_client_sends_for_no_text() -> None:
    fake = FakeILinkServer()
    fake.default.issued_tokens.add("ctx")
    body = {"msg": good_msg(item_list=None), "base_info": BASE_INFO}
    resp = await post(fake, "ilink/bot/sendmessage", body)
    assert resp.status_code == 200
    assert resp.content == b""  # accepted; nothing to show, so no message_id
    assert fake.protocol_issues == []
    [send] = fake.sends
    assert send.items == []


async def test_missing_app_headers_and_bot_agent_are_issues_that_even_strict_tolerates() -> None:
    for fake in (FakeILinkServer(), FakeILinkServer(strict=True)):
        resp = await post(
            fake,
            "ilink/bot/msg/notifystart",
            {"base_info": {"channel_version": "1.0.0"}},
            app_headers=False,
            uin=None,
        )
        assert resp.status_code == 200
        assert resp.json() == {"ret": 0}
        assert fake.notify_events() == ["start"]
        assert fake.rejections == []
        assert sorted(issues_of(fake)) == [
            ("missing-bot-agent", "$.base_info.bot_agent"),
            ("missing-header", "X-WECHAT-UIN"),
            ("missing-header", "iLink-App-ClientVersion"),
            ("missing-header", "iLink-App-Id"),
        ]
        assert not any(i.strict_rejects for i in fake.protocol_issues)


@pytest.mark.parametrize(
    ("token", "issue"),
    [
        (None, ("missing-context-token", "$.msg.context_token")),
        ("never-issued", ("unknown-context-token", "$.msg.context_token")),
    ],
)
async def test_sends_with_a_missing_or_unknown_context_token_are_shown_and_reported(
    token: str | None, issue: tuple[str, str]
) -> None:
    for fake in (FakeILinkServer(), FakeILinkServer(strict=True)):
        body = {"msg": good_msg(context_token=token), "base_info": BASE_INFO}
        resp = await post(fake, "ilink/bot/sendmessage", body)
        assert resp.status_code == 200
        assert fake.sent_texts(ALICE) == ["hi"]
        assert issues_of(fake) == [issue]


async def test_a_token_delivered_with_a_message_counts_as_issued(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        fake.inject_text(ALICE, "x")
        [msg] = (await client.get_updates("")).msgs
        await client.send_text(ALICE, "y", context_token=msg.context_token)
        await client.notify_start()
    assert fake.rejections == []
    assert fake.protocol_issues == []


@pytest.mark.parametrize("cursor_field", [{"get_updates_buf": None}, {}])
async def test_a_cold_start_with_a_null_or_absent_cursor_is_served(
    cursor_field: dict[str, Any], autojump_clock: trio.testing.MockClock
) -> None:
    fake = FakeILinkServer()
    mid = fake.inject_text(ALICE, "hello")
    resp = await post(fake, "ilink/bot/getupdates", {**cursor_field, "base_info": BASE_INFO})
    assert resp.status_code == 200
    assert [m["message_id"] for m in resp.json()["msgs"]] == [mid]
    category = "null-field" if cursor_field else "missing-field"
    assert issues_of(fake) == [(category, "$.get_updates_buf")]

    strict = FakeILinkServer(strict=True)
    resp = await post(strict, "ilink/bot/getupdates", {**cursor_field, "base_info": BASE_INFO})
    assert resp.status_code == 400


async def test_a_foreign_cursor_continues_from_what_was_delivered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeILinkServer()
    first = fake.inject_text(ALICE, "one")
    resp = await post(fake, "ilink/bot/getupdates", {"get_updates_buf": "", "base_info": BASE_INFO})
    assert [m["message_id"] for m in resp.json()["msgs"]] == [first]
    second = fake.inject_text(ALICE, "two")
    stale = {"get_updates_buf": "a-cursor-from-an-earlier-run", "base_info": BASE_INFO}
    resp = await post(fake, "ilink/bot/getupdates", stale)
    assert resp.json()["ret"] == 0
    assert [m["message_id"] for m in resp.json()["msgs"]] == [second]  # not "one" again
    assert issues_of(fake) == [("foreign-cursor", "$.get_updates_buf")]

    strict = FakeILinkServer(strict=True)
    resp = await post(strict, "ilink/bot/getupdates", stale)
    assert resp.json() == {"ret": -1, "errmsg": "invalid get_updates_buf"}


async def test_issues_are_served_at_the_control_path() -> None:
    fake = FakeILinkServer()
    await post(fake, "ilink/bot/msg/notifystart", {"base_info": BASE_INFO}, scheme="bearer")
    async with raw_http(fake) as http:
        resp = await http.get("_fake/issues")
    assert resp.json() == [
        {
            "category": "auth-scheme",
            "endpoint": "notifystart",
            "field": "Authorization",
            "detail": "auth scheme spelled 'bearer'",
        }
    ]


# --- delivery: redelivery, acknowledgement -------------------------------------------


async def test_redeliver_duplicates_messages(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        a = fake.inject_text(ALICE, "a")
        b = fake.inject_text(BOB, "b")
        first = await client.get_updates("")
        assert [m.message_id for m in first.msgs] == [a, b]
        fake.redeliver([a])
        second = await client.get_updates(first.next_cursor or "")
        assert [m.message_id for m in second.msgs] == [a]
        assert second.msgs[0] == first.msgs[0]
        # Nothing more: a redelivery happens once.
        third = await client.get_updates(second.next_cursor or "")
        assert third.msgs == ()
    assert fake.delivered_message_ids() == [a, b, a]


async def test_acknowledged_vs_delivered(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        a = fake.inject_text(ALICE, "a")
        first = await client.get_updates("")
        assert fake.delivered_message_ids() == [a]
        assert fake.acknowledged_message_ids() == set()
        b = fake.inject_text(ALICE, "b")
        second = await client.get_updates(first.next_cursor or "")
        assert fake.delivered_message_ids() == [a, b]
        assert fake.acknowledged_message_ids() == {a}
        # Presenting the newest cursor acknowledges the last batch (after the hold).
        empty = await client.get_updates(second.next_cursor or "")
        assert empty.msgs == ()
        assert empty.get_updates_buf == second.next_cursor
        assert fake.acknowledged_message_ids() == {a, b}


async def test_a_batch_whose_cursor_is_never_presented_stays_in_transit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A poller that dies before journaling loses its batch; a later chain must not ack it."""
    fake = FakeILinkServer()
    async with connect(fake) as client:
        first = await client.get_updates("")  # nothing yet: the journaled cursor is ""
        a = fake.inject_text(ALICE, "a")
        lost = await client.get_updates(first.get_updates_buf or "")  # the dying poller
        assert [m.message_id for m in lost.msgs] == [a]
        b = fake.inject_text(ALICE, "b")
        # The next owner polls from the journaled cursor, then presents the new one.
        second = await client.get_updates(first.get_updates_buf or "")
        assert [m.message_id for m in second.msgs] == [b]
        await client.get_updates(second.next_cursor or "")
    assert fake.acknowledged_message_ids() == {b}
    assert fake.in_transit_message_ids() == {a}


async def test_accounts_are_isolated(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer(hold=5)
    other = fake.add_account(bot_id="other@im.bot")
    fake.inject_text(ALICE, "for the other bot", account=other)
    async with connect(fake) as client:
        assert (await client.get_updates("")).msgs == ()
        await client.send_text(ALICE, "from default", context_token="c")
    async with connect(fake, token=other.token) as client:
        [msg] = (await client.get_updates("")).msgs
        assert msg.to_user_id == "other@im.bot"
        await client.send_text(ALICE, "from other", context_token="c")
    assert fake.sent_texts(ALICE) == ["from default"]
    assert fake.sent_texts(ALICE, account=other) == ["from other"]


# --- faults ---------------------------------------------------------------------------


async def _outcomes(fake: FakeILinkServer, calls: int) -> list[int | None]:
    """The HTTP status of each failed ``notifystart``, ``None`` for a success."""
    outcomes: list[int | None] = []
    async with connect(fake) as client:
        for _ in range(calls):
            try:
                await client.notify_start()
            except wx.ApiError as exc:
                outcomes.append(exc.status_code)
            else:
                outcomes.append(None)
            await client.notify_stop()  # not in the rate's endpoints: never fails
    return outcomes


async def test_fault_rate_with_seed_is_reproducible() -> None:
    patterns = []
    for _ in range(2):
        fake = FakeILinkServer(seed=7)
        fake.set_fault_rate(0.5, [Fault.http_status(503)], endpoints=["notifystart"])
        patterns.append(await _outcomes(fake, 40))
        assert set(patterns[-1]) == {None, 503}
        assert len(fake.faults.injected) == patterns[-1].count(503)
        assert fake.notify_events().count("start") == patterns[-1].count(None)
        assert fake.notify_events().count("stop") == 40
    assert patterns[0] == patterns[1]
    assert 5 < patterns[0].count(503) < 35


async def test_fault_rate_zero_and_clear() -> None:
    fake = FakeILinkServer(seed=1)
    fake.set_fault_rate(1.0, [Fault.http_status(503)], endpoints=["notifystart"])
    assert await _outcomes(fake, 3) == [503, 503, 503]
    fake.clear_faults()
    assert await _outcomes(fake, 3) == [None, None, None]


async def test_fault_times_and_sticky() -> None:
    fake = FakeILinkServer()
    fake.inject_fault("notifystart", Fault.http_status(503), times=2)
    assert await _outcomes(fake, 3) == [503, 503, None]
    fake.inject_fault("notifystart", Fault.http_status(503), times=math.inf)
    assert await _outcomes(fake, 4) == [503] * 4
    fake.clear_faults()
    assert await _outcomes(fake, 1) == [None]
    with pytest.raises(ValueError, match="unknown endpoint"):
        fake.inject_fault("nosuchendpoint", Fault.reset())


async def test_delay_fault(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer()
    fake.inject_fault("notifystart", Fault.delay(7))
    async with connect(fake) as client:
        start = trio.current_time()
        await client.notify_start()
        assert trio.current_time() - start == pytest.approx(7)
    assert fake.notify_events() == ["start"]


async def test_failed_requests_are_recorded_too() -> None:
    fake = FakeILinkServer()
    fake.inject_fault("notifystart", Fault.reset())
    async with connect(fake) as client:
        with pytest.raises(wx.TransportError):
            await client.notify_start()
    [request] = fake.requests_to("notifystart")
    assert request.body == {
        "base_info": {
            "channel_version": wx.__version__,
            "bot_agent": f"weixin-trio/{wx.__version__}",
        }
    }
    assert request.account == fake.token


# --- control paths -----------------------------------------------------------------


async def test_control_inject_and_sent() -> None:
    fake = FakeILinkServer()
    async with raw_http(fake) as http, connect(fake) as client:
        injected = await http.post("/_fake/inject", json={"user": ALICE, "text": "ping"})
        assert injected.status_code == 200
        message_id = injected.json()["message_id"]
        [msg] = (await client.get_updates("")).msgs
        assert msg.message_id == message_id
        assert msg.item_list is not None
        assert msg.item_list[0].text_item == w.TextItem(text="ping")
        assert msg.context_token
        result = await client.send_text(ALICE, "pong", context_token=msg.context_token)
        sent = await http.get("/_fake/sent")
    assert sent.status_code == 200
    assert sent.json() == [
        {
            "to_user_id": ALICE,
            "client_id": result.client_id,
            "context_token": msg.context_token,
            "text": "pong",
            "items": [{"type": 1, "text_item": {"text": "pong"}}],
        }
    ]


async def test_control_paths_errors() -> None:
    fake = FakeILinkServer()
    async with raw_http(fake) as http:
        assert (await http.post("/_fake/inject", json={"user": ALICE})).status_code == 400
        assert (await http.post("/_fake/inject", content=b"{")).status_code == 400
        assert (await http.get("/_fake/nothing")).status_code == 404
        assert (await http.post("/_fake/qr/confirm")).status_code == 409
        assert (await http.get("/_fake/sent")).json() == []
    assert fake.default.queue == []


async def test_control_sent_lists_only_shown_sends() -> None:
    fake = FakeILinkServer()
    async with raw_http(fake) as http, connect(fake) as client:
        await client.send_text(ALICE, "once", context_token="c", client_id="dup")
        await client.send_text(ALICE, "once", context_token="c", client_id="dup")
        sent = (await http.get("/_fake/sent")).json()
    assert [s["client_id"] for s in sent] == ["dup"]


# --- tokens, waiting, typing, notify, upload --------------------------------------------


async def test_revoke_token() -> None:
    fake = FakeILinkServer()
    other = fake.add_account()
    async with connect(fake) as client:
        await client.notify_start()
        fake.revoke_token()
        with pytest.raises(wx.StaleTokenError):
            await client.notify_start()
        with pytest.raises(wx.StaleTokenError):
            await client.get_updates("")
    async with connect(fake, token=other.token) as client:
        await client.notify_start()  # other accounts are unaffected
    assert fake.notify_events(account=other) == ["start"]


async def test_wait_for_sent(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer()
    got: list[list[str]] = []

    async def waiter() -> None:
        sends = await fake.wait_for_sent(2, user=ALICE)
        got.append([s.text for s in sends])

    async with connect(fake) as client:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                await trio.sleep(1)
                await client.send_text(BOB, "b1", context_token="c")
                await client.send_text(ALICE, "a1", context_token="c")
                await trio.sleep(1)
                assert got == []
                await client.send_text(ALICE, "a2", context_token="c")
        # Already satisfied: returns at once.
        assert len(await fake.wait_for_sent(3)) == 3
    assert got == [["a1", "a2"]]


async def test_wait_for_sent_blocks_until_enough(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer()
    with trio.move_on_after(30) as scope:
        await fake.wait_for_sent(1)
    assert scope.cancelled_caught


async def test_typing_tickets() -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        alice = await client.get_config(ALICE)
        bob = await client.get_config(BOB)
        assert alice.typing_ticket
        assert bob.typing_ticket
        assert alice.typing_ticket != bob.typing_ticket
        assert (await client.get_config(ALICE)).typing_ticket == alice.typing_ticket
        await client.send_typing(ALICE, alice.typing_ticket, w.TypingStatus.TYPING)
        with pytest.raises(wx.ApiError) as info:
            await client.send_typing(ALICE, bob.typing_ticket, w.TypingStatus.TYPING)
        assert info.value.ret == -1
        with pytest.raises(wx.ApiError):
            await client.send_typing("carol@im.wechat", "tk-guess", w.TypingStatus.TYPING)
        await client.send_typing(ALICE, alice.typing_ticket, w.TypingStatus.CANCEL)
    assert fake.typing_events() == [(ALICE, 1), (ALICE, 2)]


async def test_notify_events() -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        await client.notify_start()
        await client.notify_stop()
        await client.notify_start()
    assert fake.notify_events() == ["start", "stop", "start"]
    assert fake.default.online


def _upload_req(rawsize: int, filesize: int) -> w.GetUploadUrlReq:
    return w.GetUploadUrlReq(
        filekey="ab" * 16,
        media_type=w.UploadMediaType.FILE,
        to_user_id=ALICE,
        rawsize=rawsize,
        rawfilemd5="cd" * 16,
        filesize=filesize,
        aeskey="ef" * 16,
        base_info=w.BaseInfo(),
    )


@pytest.mark.parametrize(("rawsize", "filesize"), [(0, 16), (15, 16), (16, 32), (1000, 1008)])
async def test_getuploadurl_checks_filesize(rawsize: int, filesize: int) -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        ok = await client.get_upload_url(_upload_req(rawsize, filesize))
        assert ok.upload_param
        for wrong in (rawsize, filesize + 16, filesize - 1):
            with pytest.raises(wx.ApiError) as info:
                await client.get_upload_url(_upload_req(rawsize, wrong))
            assert info.value.errmsg == "filesize does not match rawsize"


# --- the test kit has no traps ---------------------------------------------------------


async def test_wait_for_sent_fails_with_what_was_sent_when_the_bot_never_answers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeILinkServer()

    async def broken(msg: wx.Message) -> None:
        await msg.reply("first")
        raise RuntimeError("the handler fails after one reply")

    async with connect(fake, account_id=fake.default.bot_id) as client:
        async with wx.open_monitor(client, broken, max_attempts=1):
            fake.inject_text(ALICE, "hi")
            start = trio.current_time()
            with pytest.raises(AssertionError) as info:
                await fake.wait_for_sent(2, user=ALICE)
            assert trio.current_time() - start == pytest.approx(600.0)
            with pytest.raises(AssertionError):
                await fake.wait_for_sent(5, timeout=1.0)
    text = str(info.value)
    assert "expected 2 shown send(s) to alice@im.wechat within 600 s, got 1" in text
    assert "'first'" in text
