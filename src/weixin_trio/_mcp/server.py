"""The MCP tools and resources of one account (the only module that imports ``mcp``).

Tools (stable names): ``send_text``, ``wait_for_message``, ``read_messages``,
``list_conversations``, ``send_file``, ``send_window``. Resource template:
``weixin://conversations/{user}`` (the user's recent messages, as JSON).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from .._errors import WeixinError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .._client.ilink_client import ILinkClient
    from .inbox import Inbox

__all__ = ["RECENT", "TOOLS", "build_server", "serve_stdio"]

#: How many messages a conversation resource shows.
RECENT = 50
#: The tool names (stable).
TOOLS = (
    "send_text",
    "wait_for_message",
    "read_messages",
    "list_conversations",
    "send_file",
    "send_window",
)


def _plain(value: Any) -> dict[str, Any]:
    """A result of the client as a JSON object (attrs classes field by field)."""
    if attrs.has(type(value)):
        return json.loads(json.dumps(attrs.asdict(value, recurse=True), default=str))  # type: ignore[no-any-return]
    return {"result": str(value)}


@contextmanager
def _told_to_the_agent() -> Iterator[None]:
    """A failure the agent can act on (closed window, CDN refusal) as the tool's error text.

    The SDK shows other exceptions to the agent only as "Error executing tool NAME".
    """
    try:
        yield
    except WeixinError as exc:
        raise ToolError(f"{type(exc).__name__}: {exc}") from exc


def build_server(client: ILinkClient, inbox: Inbox) -> MCPServer[Any]:
    """An MCP server whose tools send from ``client`` and read ``inbox``."""
    server: MCPServer[Any] = MCPServer(
        "weixin-trio",
        instructions=(
            "WeChat through an iLink bot account. wait_for_message returns new inbound"
            " messages; answer with send_text(user, text). A user can be reached only"
            " within 24 hours of their last message (see send_window)."
        ),
    )

    @server.tool()
    async def send_text(user: str, text: str) -> dict[str, Any]:
        """Send ``text`` to ``user`` (a ``...@im.wechat`` id that wrote to the bot)."""
        with _told_to_the_agent():
            result = await client.send_text(user, text)
        return {"client_id": result.client_id, "message_id": result.message_id}

    @server.tool()
    async def wait_for_message(timeout: float = 30.0) -> list[dict[str, Any]]:  # noqa: ASYNC109 - the tool's stable argument
        """The next unread inbound message(s), waiting up to ``timeout`` s; [] if none."""
        with trio.move_on_after(timeout if timeout > 0 else 0):
            await inbox.wait_unread()
        return await inbox.take_unread()

    @server.tool()
    async def read_messages(
        user: str | None = None, since: int | None = None
    ) -> list[dict[str, Any]]:
        """Stored inbound messages (of ``user``; with ``seq`` greater than ``since``)."""
        return inbox.messages(user, since)

    @server.tool()
    async def list_conversations() -> list[dict[str, Any]]:
        """Users with stored messages: ``user``, ``count``, ``last_time``; newest first."""
        return inbox.conversations()

    @server.tool()
    async def send_file(user: str, path: str) -> dict[str, Any]:
        """Upload the local file at ``path`` and send it to ``user``."""
        file = await trio.Path(path).expanduser()
        if not await file.is_file():
            raise ToolError(f"no such file: {path}")
        with _told_to_the_agent():
            return _plain(await client.send_media(user, Path(file)))

    @server.tool()
    async def send_window(user: str) -> dict[str, Any]:
        """Whether ``user`` can be sent to now, and how many sends remain."""
        return _plain(client.send_window(user))

    @server.resource(
        "weixin://conversations/{user}",
        name="conversation",
        description=f"The last {RECENT} inbound messages of a user",
        mime_type="application/json",
    )
    async def conversation(user: str) -> str:
        return json.dumps(inbox.messages(user)[-RECENT:], ensure_ascii=False)

    return server


async def serve_stdio(server: MCPServer[Any]) -> None:
    """Serve ``server`` over stdin/stdout until stdin closes.

    Cancellation:
        Stops serving.
    """
    await server.run_stdio_async()
