"""serve_asgi: a real loopback server that reports its URL and stops when cancelled."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from weixin_trio._web.serve import serve_asgi


async def hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = scope["path"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def never_ending(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await hello(scope, receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"tick", "more_body": True})
    await trio.sleep_forever()


async def test_serves_on_a_free_port_and_reports_the_url() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve_asgi, hello)
            assert url.startswith("http://127.0.0.1:")
            assert not url.endswith(":0")
            async with httpx.AsyncClient() as http:
                response = await http.get(f"{url}/ping")
            assert response.text == "/ping"
            nursery.cancel_scope.cancel()


async def test_cancel_closes_open_streams_at_once() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve_asgi, never_ending)
            got = trio.Event()

            async def listen() -> None:
                async with (
                    httpx.AsyncClient() as http,
                    http.stream("GET", url) as response,
                ):
                    async for _ in response.aiter_bytes():
                        got.set()

            nursery.start_soon(listen)
            await got.wait()
            started = trio.current_time()
            nursery.cancel_scope.cancel()
    assert trio.current_time() - started < 1.0
