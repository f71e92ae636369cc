"""The ``weixin_trio_*`` collector and readiness over a running monitor (in-process fake)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import trio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import weixin_trio as wx
from weixin_trio._monitor.accounts import open_accounts
from weixin_trio._ops.collector import OpsCollector
from weixin_trio._ops.readiness import readiness
from weixin_trio._ops.sample import take_sample
from weixin_trio.testing import FakeILinkServer, Fault

from .._helpers import until

if TYPE_CHECKING:
    from weixin_trio._monitor.accounts import AccountRunner

USER = "u@im.wechat"


@attrs.frozen
class Acct:
    account_id: str
    token: str
    base_url: str


async def handler(msg: wx.Message) -> None:
    if msg.text == "fail":
        raise RuntimeError("boom")
    await msg.reply(f"echo {msg.text}")


def registry_of(runner: AccountRunner) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OpsCollector(runner))
    return registry


def value(registry: CollectorRegistry, name: str, account: str, **labels: str) -> float:
    got = registry.get_sample_value(name, {"account": account, **labels})
    assert got is not None, name
    return got


def open_runner(fake: FakeILinkServer, **options: Any) -> Any:
    account = Acct(fake.default.bot_id, fake.token, fake.base_url)
    client_options = {"transport": fake.transport(), "pacing": None}
    return open_accounts(
        handler, [account], store=wx.MemoryStore(), client_options=client_options, **options
    )


async def test_counters_move_as_messages_are_handled_failed_and_dead_lettered(
    autojump_clock: trio.abc.Clock,
) -> None:
    fake = FakeILinkServer(seed=1)
    acc = fake.default.bot_id
    async with open_runner(fake, max_attempts=2) as runner:
        registry = registry_of(runner)
        await until(lambda: value(registry, "weixin_trio_polls_total", acc) >= 1)
        assert value(registry, "weixin_trio_messages_handled_total", acc) == 0
        fake.inject_text(USER, "hello")
        await until(lambda: value(registry, "weixin_trio_messages_handled_total", acc) == 1)
        assert value(registry, "weixin_trio_messages_accepted_total", acc) == 1
        fake.inject_text(USER, "fail")
        await until(lambda: value(registry, "weixin_trio_messages_dead_lettered_total", acc) == 1)
        assert value(registry, "weixin_trio_messages_failed_total", acc) == 2
        assert value(registry, "weixin_trio_messages_accepted_total", acc) == 2
        assert value(registry, "weixin_trio_messages_pending", acc) == 0
        assert value(registry, "weixin_trio_messages_in_flight", acc) == 0
        fake.inject_fault("getupdates", Fault.http_status(500))
        await until(lambda: value(registry, "weixin_trio_poll_errors_total", acc) == 1)
        assert value(registry, "weixin_trio_account_ready", acc) == 1
        assert value(registry, "weixin_trio_account_paused", acc) == 0


async def test_throttles_and_the_send_latency_histogram(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeILinkServer(seed=2)
    acc = fake.default.bot_id
    async with open_runner(fake) as runner:
        registry = registry_of(runner)
        fake.inject_text(USER, "fast")
        await until(lambda: len(fake.sends) == 1)
        count = "weixin_trio_send_latency_seconds_count"
        bucket = "weixin_trio_send_latency_seconds_bucket"
        assert value(registry, count, acc) == 1
        assert value(registry, bucket, acc, le="0.005") == 1  # the fake answers at once
        fake.inject_fault("sendmessage", Fault.delay(0.3))
        fake.inject_text(USER, "slow")
        await until(lambda: len(fake.sends) == 2)
        assert value(registry, count, acc) == 2
        assert value(registry, bucket, acc, le="0.25") == 1
        assert value(registry, bucket, acc, le="0.5") == 2
        assert value(registry, bucket, acc, le="+Inf") == 2
        assert 0.3 <= value(registry, "weixin_trio_send_latency_seconds_sum", acc) < 0.31
        assert value(registry, "weixin_trio_send_throttled_total", acc) == 0
        fake.inject_fault("sendmessage", Fault.rate_limited())
        fake.inject_text(USER, "throttled once")
        await until(lambda: len(fake.sends) == 3)  # the retry went out
        assert value(registry, "weixin_trio_send_throttled_total", acc) == 1
        assert value(registry, count, acc) == 4  # the -2 was an answered attempt too
        assert value(registry, "weixin_trio_send_window_closed_total", acc) == 0


async def test_closed_send_windows_are_counted(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeILinkServer(seed=3)
    acc = fake.default.bot_id

    async def chatty(msg: wx.Message) -> None:
        for i in range(20):  # the window allows 10 sends per inbound message
            await msg.reply(f"{i}")

    account = Acct(acc, fake.token, fake.base_url)
    options = {"transport": fake.transport(), "pacing": None}
    async with open_accounts(
        chatty, [account], store=wx.MemoryStore(), client_options=options
    ) as runner:
        registry = registry_of(runner)
        fake.inject_text(USER, "hi")
        await until(lambda: value(registry, "weixin_trio_send_window_closed_total", acc) == 1)
        await until(lambda: runner.statistics()[acc].refused == 1)


async def test_readiness_flips_while_an_account_is_paused(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeILinkServer(seed=4)
    acc = fake.default.bot_id
    async with open_runner(fake, stale_token_pause=600) as runner:
        registry = registry_of(runner)
        await until(lambda: readiness(take_sample(runner), trio.current_time()).ready)
        fake.inject_fault("getupdates", Fault.stale_token(), times=2)  # -14, then the re-poll
        await until(lambda: value(registry, "weixin_trio_account_paused", acc) == 1)
        state = readiness(take_sample(runner), trio.current_time())
        assert not state.ready
        assert list(state.not_ready) == [acc]
        assert "paused" in state.not_ready[acc]
        assert value(registry, "weixin_trio_account_ready", acc) == 0
        assert value(registry, "weixin_trio_stale_tokens_total", acc) == 2
        await trio.sleep(601)
        await until(lambda: readiness(take_sample(runner), trio.current_time()).ready)
        assert value(registry, "weixin_trio_account_paused", acc) == 0
        assert value(registry, "weixin_trio_account_ready", acc) == 1


async def test_the_exposition_parses(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeILinkServer(seed=5)
    async with open_runner(fake) as runner:
        registry = registry_of(runner)
        fake.inject_text(USER, "hello")
        await until(lambda: len(fake.sends) == 1)
        text = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    expected = {
        "weixin_trio_polls": "counter",
        "weixin_trio_poll_errors": "counter",
        "weixin_trio_messages_accepted": "counter",
        "weixin_trio_messages_handled": "counter",
        "weixin_trio_messages_failed": "counter",
        "weixin_trio_messages_dead_lettered": "counter",
        "weixin_trio_messages_pending": "gauge",
        "weixin_trio_messages_in_flight": "gauge",
        "weixin_trio_send_latency_seconds": "histogram",
        "weixin_trio_send_throttled": "counter",
        "weixin_trio_send_window_closed": "counter",
        "weixin_trio_account_paused": "gauge",
        "weixin_trio_account_ready": "gauge",
    }
    for name, kind in expected.items():
        assert families[name].type == kind, name
        assert families[name].samples, name
        assert {s.labels.get("account") for s in families[name].samples} == {fake.default.bot_id}
    assert "weixin_trio_lease_held" not in families  # not in Redis mode


def test_a_process_without_accounts_is_ready() -> None:
    state = readiness(take_sample(object()), 0.0)
    assert state.ready
    assert state.as_json() == {"ready": True, "accounts": 0, "not_ready": {}}
