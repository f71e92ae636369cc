"""The monitor's handler for ``weixin-trio acp``: one agent and one session per user.

Use it as ``open_monitor(client, bridge.handle, control=bridge.is_control)`` inside
``async with open_bridge(config, root) as bridge``. ``/stop`` and the yes/no answer to
a permission question are control messages: they bypass the user's lane, which is
busy with the very prompt they are meant for.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from .._errors import AgentUnavailableError, SendWindowClosedError
from .permissions import parse_answer
from .user_agent import UNAVAILABLE, AcpConfig, UserAgent
from .workspace import user_workspace

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from .._client.message import Message

__all__ = ["Bridge", "open_bridge"]

log = logging.getLogger("weixin_trio.acp")

STOP = "/stop"
NEW = "/new"


class Bridge:
    """Routes each user's messages to that user's agent (a `UserAgent`)."""

    def __init__(self, config: AcpConfig, root: Path, nursery: trio.Nursery) -> None:
        self.config = config
        self.root = root
        self._nursery = nursery
        self.users: dict[str, UserAgent] = {}

    def user(self, user: str) -> UserAgent:
        """The user's agent, started (in the background) if it is not running."""
        agent = self.users.get(user)
        if agent is None or agent.stopping:
            workspace = user_workspace(self.root, self.config.account_id, user)
            workspace.mkdir(parents=True, exist_ok=True)
            agent = self.users[user] = UserAgent(self.config, user, workspace)
            self._nursery.start_soon(self._supervise, agent)
        return agent

    async def _supervise(self, agent: UserAgent) -> None:
        try:
            await agent.supervise()
        finally:
            if self.users.get(agent.user) is agent:
                del self.users[agent.user]

    def is_control(self, msg: Message) -> bool:
        """``/stop``, or a yes/no while the user's agent waits for a permission answer."""
        text = msg.text.strip()
        if text == STOP:
            return True
        agent = self.users.get(msg.from_user_id)
        return agent is not None and agent.has_question() and parse_answer(text) is not None

    async def handle(self, msg: Message) -> None:
        """The monitor's handler (lane messages and control messages alike).

        Cancellation:
            Stops waiting for the agent; the user's next message continues the session.
        """
        try:
            await self._handle(msg)
        except SendWindowClosedError as exc:
            log.warning("the send window of a user closed during an answer: %s", exc)

    async def _handle(self, msg: Message) -> None:
        text = msg.text.strip()
        if text == STOP:
            agent = self.users.get(msg.from_user_id)
            if agent is None or not await agent.stop():
                await msg.reply("(nothing to stop)")
            return
        known = self.users.get(msg.from_user_id)
        if known is not None and parse_answer(text) is not None and known.answer(text):
            return
        agent = self.user(msg.from_user_id)
        if text == NEW:
            try:
                session = await agent.new_session()
            except AgentUnavailableError as exc:
                log.warning("no agent for a user: %s", exc)
                await msg.reply(UNAVAILABLE)
                return
            log.info("a user started a new session")
            await msg.reply(f"(a new session started: {session[:12]})")
            return
        await agent.prompt(msg)


@asynccontextmanager
async def open_bridge(config: AcpConfig, root: Path) -> AsyncIterator[Bridge]:
    """A bridge whose agents run while the block runs (all stopped when it ends).

    Cancellation:
        Stops every agent (SIGTERM, then SIGKILL after a short shielded deadline).
    """
    async with trio.open_nursery() as nursery:
        bridge = Bridge(config, root, nursery)
        try:
            yield bridge
        finally:
            nursery.cancel_scope.cancel()
