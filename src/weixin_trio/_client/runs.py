"""Agent runs: progress items (tool calls, item types 11/12) and the answer under one ``run_id``.

Protocol 2.4.6 lets a bot tag every message of one logical agent run with a ``run_id``
and report tool calls as progress items (PROTOCOL §3.7, §5.5). The live server accepts
them but the WeChat client does not render progress items yet, and they get no
``message_id`` (an empty body): their `SendResult` is unconfirmed by design.
"""

from __future__ import annotations

import itertools
import secrets
import time
from typing import TYPE_CHECKING, Literal, final

from .. import _wire as w

if TYPE_CHECKING:
    from .._proto.client_ids import ClientIdSource, SendResult
    from .messenger import Messenger

__all__ = ["Run", "ToolStatus"]

ToolStatus = Literal["completed", "failed", "blocked", "unknown"]


@final
class Run:
    """One agent run addressed to one user.

    Obtain it from `weixin_trio.Message.run` (replies keep deterministic client
    ids) or [`weixin_trio.ILinkClient.run`][weixin_trio.ILinkClient.run] (proactive).

    Attributes:
        run_id: The run's id (32 random hex characters unless given).
        to: The peer user.
    """

    def __init__(
        self,
        messenger: Messenger,
        to: str,
        *,
        context_token: str | None,
        run_id: str | None = None,
        client_ids: ClientIdSource | None = None,
    ) -> None:
        self._messenger = messenger
        self.to = to
        self._context_token = context_token
        self.run_id = run_id or secrets.token_hex(16)
        self._client_ids = client_ids or (lambda: None)
        self._call_ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"<Run {self.run_id} to={self.to!r}>"

    async def tool_start(self, tool_name: str, *, tool_call_id: str | None = None) -> str:
        """Report that a tool call began (item type 11); returns its ``tool_call_id``.

        Cancellation:
            As `ILinkClient.send_message`.
        """
        call_id = tool_call_id or f"call-{next(self._call_ids)}"
        item = w.MessageItem(
            type=w.ItemType.TOOL_CALL_START,
            create_time_ms=int(time.time() * 1000),
            is_completed=False,
            tool_call_start_item=w.ToolCallStartItem(tool_name=tool_name, tool_call_id=call_id),
        )
        await self._send(item)
        return call_id

    async def tool_result(
        self, tool_name: str, *, tool_call_id: str | None = None, status: ToolStatus = "completed"
    ) -> SendResult:
        """Report a tool call's result (item type 12).

        Cancellation:
            As `ILinkClient.send_message`.
        """
        item = w.MessageItem(
            type=w.ItemType.TOOL_CALL_RESULT,
            create_time_ms=int(time.time() * 1000),
            is_completed=True,
            tool_call_result_item=w.ToolCallResultItem(
                tool_name=tool_name, tool_call_id=tool_call_id, status=status
            ),
        )
        return await self._send(item)

    async def send_text(self, text: str) -> SendResult:
        """Send (part of) the run's answer, tagged with the ``run_id``.

        Cancellation:
            As [`ILinkClient.send_text`][weixin_trio.ILinkClient.send_text].
        """
        return await self._messenger.send_text(
            self.to,
            text,
            context_token=self._context_token,
            client_ids=self._client_ids,
            run_id=self.run_id,
        )

    async def _send(self, item: w.MessageItem) -> SendResult:
        # Progress items are not shown in the chat (PROTOCOL §5.5), so they are not
        # counted against the user's send window (unverified on the live server).
        return await self._messenger.send_item(
            self.to,
            item,
            context_token=self._context_token,
            client_id=self._client_ids(),
            run_id=self.run_id,
            count_in_window=False,
        )
