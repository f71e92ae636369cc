"""The JSON-RPC peer on trio memory streams (no subprocess)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from weixin_trio._acp.connection import Connection, method_not_found
from weixin_trio._errors import AcpError, AgentExitedError


class Peer:
    """The other side: reads our lines, writes its own."""

    def __init__(self) -> None:
        self.to_us_send, to_us_receive = trio.testing.memory_stream_one_way_pair()
        from_us_send, self.from_us_receive = trio.testing.memory_stream_one_way_pair()
        self.buffer = b""
        self.notes: list[tuple[str, Any]] = []
        self.conn = Connection(
            from_us_send,
            to_us_receive,
            on_request=self.handler,
            on_notification=lambda m, p: self.notes.append((m, p)),
        )
        self.block = trio.Event()

    async def handler(self, method: str, params: Any) -> Any:
        if method == "echo":
            return params
        if method == "boom":
            raise RuntimeError("boom")
        if method == "hang":
            await self.block.wait()
        raise method_not_found(method)

    async def send(self, obj: dict[str, Any]) -> None:
        await self.to_us_send.send_all(json.dumps({"jsonrpc": "2.0", **obj}).encode() + b"\n")

    async def read(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            self.buffer += await self.from_us_receive.receive_some()
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)  # type: ignore[no-any-return]


async def test_requests_get_results_and_errors(autojump_clock: trio.abc.Clock) -> None:
    peer = Peer()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer.conn.serve)
        results: list[Any] = []

        async def ask() -> None:
            results.append(await peer.conn.request("session/new", {"cwd": "/"}))
            with pytest.raises(AcpError) as info:
                await peer.conn.request("nope")
            results.append(info.value.code)

        nursery.start_soon(ask)
        first = await peer.read()
        assert first["method"] == "session/new"
        await peer.send({"id": first["id"], "result": {"sessionId": "s1"}})
        second = await peer.read()
        await peer.send({"id": second["id"], "error": {"code": -32601, "message": "no"}})
        await trio.sleep(0.1)
        assert results == [{"sessionId": "s1"}, -32601]
        await peer.to_us_send.aclose()


async def test_incoming_requests_are_always_answered(autojump_clock: trio.abc.Clock) -> None:
    peer = Peer()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer.conn.serve)
        await peer.send({"id": 1, "method": "echo", "params": [1]})
        assert await peer.read() == {"jsonrpc": "2.0", "id": 1, "result": [1]}
        await peer.send({"id": 2, "method": "unknown"})
        assert (await peer.read())["error"]["code"] == -32601
        await peer.send({"id": 3, "method": "boom"})
        assert (await peer.read())["error"]["code"] == -32603
        await peer.send({"method": "session/update", "params": {"x": 1}})
        await peer.send({"id": 4, "method": "hang"})
        await trio.sleep(0.1)
        assert peer.notes == [("session/update", {"x": 1})]
        nursery.cancel_scope.cancel()  # shutting down: the hanging request is answered
    assert (await peer.read())["id"] == 4


async def test_the_peer_exiting_fails_waiting_requests(autojump_clock: trio.abc.Clock) -> None:
    peer = Peer()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer.conn.serve)

        async def close_soon() -> None:
            await peer.read()
            await peer.to_us_send.send_all(b"garbage\n")
            await peer.to_us_send.aclose()

        nursery.start_soon(close_soon)
        with pytest.raises(AgentExitedError):
            await peer.conn.request("session/prompt", {})
    assert peer.conn.garbage == 1
    assert peer.conn.closed
    with pytest.raises(AgentExitedError):
        await peer.conn.request("again")
