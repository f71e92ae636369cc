"""The operations ASGI app called directly (no socket): routes, /readyz 503, /metrics."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import trio
from prometheus_client.parser import text_string_to_metric_families

from weixin_trio._ops.app import OpsApp
from weixin_trio.testing import FakeILinkServer, Fault

from .._helpers import until
from .test_collector import USER, open_runner

if TYPE_CHECKING:
    from collections.abc import MutableMapping


async def call(
    app: OpsApp, path: str, *, method: str = "GET", headers: list[Any] | None = None
) -> tuple[int, dict[str, str], bytes]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers or []}
    await app(scope, receive, send)
    start, body = sent
    assert start["type"] == "http.response.start"
    heads = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], heads, body["body"]


async def test_routes_and_readiness_over_http(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeILinkServer(seed=6)
    acc = fake.default.bot_id
    async with open_runner(fake, stale_token_pause=300) as runner:
        app = OpsApp(runner)
        assert await call(app, "/healthz") == (
            200,
            {"content-type": "application/json"},
            b'{"alive": true}',
        )
        await until(lambda: runner.statistics()[acc].polls > 0)
        status, _, body = await call(app, "/readyz")
        assert (status, json.loads(body)) == (200, {"ready": True, "accounts": 1, "not_ready": {}})
        fake.inject_fault("getupdates", Fault.stale_token(), times=2)
        await until(lambda: runner.statistics()[acc].paused_until is not None)
        status, _, body = await call(app, "/readyz")
        assert status == 503
        answer = json.loads(body)
        assert answer["ready"] is False
        assert list(answer["not_ready"]) == [acc]
        fake.inject_text(USER, "hello")  # outbound still works while polling pauses
        status, heads, body = await call(app, "/metrics")
        assert status == 200
        assert heads["content-type"].startswith("text/plain")
        names = {f.name for f in text_string_to_metric_families(body.decode())}
        assert {"weixin_trio_polls", "weixin_trio_account_paused"} <= names
        accept = [(b"accept", b"application/openmetrics-text; version=1.0.0")]
        status, heads, body = await call(app, "/metrics", headers=accept)
        assert heads["content-type"].startswith("application/openmetrics-text")
        assert body.endswith(b"# EOF\n")
        assert (await call(app, "/other"))[0] == 404
        assert (await call(app, "/metrics", method="POST"))[0] == 405
        await trio.sleep(301)
        await until(lambda: runner.statistics()[acc].paused_until is None)
        assert (await call(app, "/readyz"))[0] == 200


async def test_lifespan_is_acknowledged() -> None:
    app = OpsApp(object())
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
