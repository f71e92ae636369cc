"""One ACP agent subprocess: start it, speak JSON-RPC on its stdio, stop it.

The agent's stderr goes to the log at DEBUG. Leaving `open_agent` (or cancelling it)
closes the agent's stdin, sends SIGTERM and, after a short shielded deadline, SIGKILL.
"""

from __future__ import annotations

import logging
import subprocess
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .connection import Connection, RequestHandler

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from pathlib import Path

__all__ = ["PROTOCOL_VERSION", "AgentProcess", "open_agent"]

log = logging.getLogger("weixin_trio.acp")

#: The ACP protocol version the bridge speaks.
PROTOCOL_VERSION = 1
#: Seconds the agent gets after SIGTERM before SIGKILL.
TERMINATE_GRACE = 2.0


@attrs.define
class AgentProcess:
    """A running agent: its process, its connection and what ``initialize`` told us."""

    process: trio.Process
    connection: Connection
    load_session: bool = False
    info: dict[str, Any] = attrs.field(factory=dict)
    exited: trio.Event = attrs.field(factory=trio.Event)

    async def initialize(self) -> dict[str, Any]:
        """The ``initialize`` handshake; records ``agentCapabilities.loadSession``.

        Raises:
            AcpError: The agent refused.
            AgentExitedError: The agent exited first.

        Cancellation:
            Safe.
        """
        result = await self.connection.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "clientCapabilities": {
                    "fs": {"readTextFile": True, "writeTextFile": True},
                    "terminal": False,
                },
                "clientInfo": {"name": "weixin-trio", "version": _version()},
            },
        )
        self.info = result if isinstance(result, dict) else {}
        caps = self.info.get("agentCapabilities")
        self.load_session = isinstance(caps, dict) and caps.get("loadSession") is True
        return self.info


def _version() -> str:
    from .._version import __version__

    return __version__


async def _log_stderr(stream: trio.abc.ReceiveStream, name: str) -> None:
    buffer = b""
    async for data in stream:
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            log.debug("%s stderr: %s", name, line.decode(errors="replace")[:2000])
        buffer = buffer[-65536:]
    if buffer:
        log.debug("%s stderr: %s", name, buffer.decode(errors="replace")[:2000])


async def _stop(process: trio.Process, name: str) -> None:
    with trio.CancelScope(shield=True):
        if process.stdin is not None:
            with trio.move_on_after(0.5):
                await process.stdin.aclose()
        if process.returncode is None:
            process.terminate()
            with trio.move_on_after(TERMINATE_GRACE):
                await process.wait()
        if process.returncode is None:
            log.warning("%s ignored SIGTERM; killing it", name)
            process.kill()
            await process.wait()


@asynccontextmanager
async def open_agent(
    command: Sequence[str],
    cwd: Path,
    *,
    on_request: RequestHandler,
    on_notification: Callable[[str, Any], None],
    name: str = "agent",
) -> AsyncIterator[AgentProcess]:
    """Start ``command`` in ``cwd`` and yield it once its connection is read.

    ``agent.exited`` is set when the agent's output ends (it exited or closed stdout).

    Raises:
        OSError: The command could not be started.

    Cancellation:
        Stops the agent (SIGTERM, then SIGKILL after a short shielded deadline).
    """
    process = await trio.lowlevel.open_process(
        list(command),
        cwd=str(cwd),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    connection = Connection(
        process.stdin,
        process.stdout,
        on_request=on_request,
        on_notification=on_notification,
        name=name,
    )
    agent = AgentProcess(process, connection)

    async def serve() -> None:
        try:
            await connection.serve()
        finally:
            agent.exited.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            nursery.start_soon(_log_stderr, process.stderr, name)
            try:
                yield agent
            finally:
                nursery.cancel_scope.cancel()
    finally:
        await _stop(process, name)
