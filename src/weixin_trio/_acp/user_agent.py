"""One WeChat user's agent: its process (supervised), its ACP session, its prompts.

`UserAgent.supervise` runs in the bridge's nursery: it starts the agent in the user's
workspace, restarts it with capped backoff when it dies, and stops it once the user
was idle for ``idle_timeout``. `UserAgent.prompt` runs in the user's lane; `stop`
and `answer` run from the monitor's interrupt path (``control=``), so they reach a
prompt that is waiting.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._errors import AcpError, AgentExitedError, AgentUnavailableError
from .._util import unwrap_single_error
from ..store._kv import KeyValueStore
from .agent_process import AgentProcess, open_agent
from .connection import method_not_found
from .permissions import decide, outcome, parse_answer, question_text
from .turn import Turn
from .workspace import prompt_blocks, read_text_file, write_text_file

if TYPE_CHECKING:
    from pathlib import Path

    from .._client.message import Message

__all__ = ["SESSIONS", "AcpConfig", "UserAgent"]

log = logging.getLogger("weixin_trio.acp")

#: The store's key-value namespace of the users' session ids.
SESSIONS = "acp.sessions"
#: What a user reads when their agent cannot be started (the reason goes to the log).
UNAVAILABLE = "The agent is not available right now; please try again later."

#: Seconds an agent must have run for its death to reset the restart backoff.
HEALTHY_RUN = 60.0

_STOP_NOTES = {
    "cancelled": "(stopped)",
    "max_tokens": "(the agent reached its token limit)",
    "max_turn_requests": "(the agent reached its turn limit)",
    "refusal": "(the agent refused to continue)",
}


@attrs.frozen
class AcpConfig:
    """What every user's agent shares."""

    command: tuple[str, ...]
    store: KeyValueStore
    account_id: str
    approve: str = "ask"
    ask_timeout: float = 300.0
    idle_timeout: float = 1800.0
    start_timeout: float = 60.0
    cancel_grace: float = 10.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0


@attrs.define
class _Question:
    answered: trio.Event = attrs.field(factory=trio.Event)
    allow: bool | None = None


class UserAgent:
    """The agent process and session of one user."""

    def __init__(self, config: AcpConfig, user: str, workspace: Path) -> None:
        self.config = config
        self.user = user
        self.workspace = workspace
        self.agent: AgentProcess | None = None
        self.restarts = 0
        self._changed = trio.Event()
        self._idle = trio.CancelScope(deadline=math.inf)
        self._finished = False
        self._busy = 0
        self._session: str | None = None
        self._session_agent: AgentProcess | None = None
        self._loading = False
        self._turn: Turn | None = None
        self._question: _Question | None = None
        self._last_error = ""

    # --- supervision --------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Whether the supervisor ended or is ending (a new `UserAgent` is needed)."""
        return self._finished or self._idle.cancel_called

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _touch(self) -> None:
        self._idle.deadline = (
            math.inf if self._busy else trio.current_time() + self.config.idle_timeout
        )

    async def supervise(self) -> None:
        """Run the agent until the user is idle; restart it with backoff when it dies.

        Cancellation:
            Stops the agent (SIGTERM, then SIGKILL).
        """
        failures = 0
        self._touch()
        try:
            with self._idle:
                while True:
                    failures = await self._run_once(failures)
                    self.restarts += 1
                    delay = min(
                        self.config.backoff_cap, self.config.backoff_base * 2 ** (failures - 1)
                    )
                    log.info("restarting the agent of a user in %.1f s", delay)
                    await trio.sleep(delay)
        finally:
            self._finished = True
            self.agent = None
            self._notify()
            log.info("the agent of a user stopped (idle or shutdown)")

    async def _run_once(self, failures: int) -> int:
        """One life of the agent; the consecutive failures after it."""
        started = trio.current_time()
        try:
            async with open_agent(
                self.config.command,
                self.workspace,
                on_request=self._on_request,
                on_notification=self._on_notification,
            ) as agent:
                with trio.fail_after(self.config.start_timeout):
                    await agent.initialize()
                self.agent = agent
                self._notify()
                await agent.exited.wait()
                code = await agent.process.wait()
                log.warning("the agent of a user exited (code %s)", code)
        except Exception as exc:  # one user's agent never takes the bridge down
            self._last_error = f"{type(exc).__name__}: {exc}"
            log.warning("the agent failed: %s", self._last_error)
        finally:
            self.agent = None
            self._notify()
        # An agent that ran for a while before it died starts a fresh backoff streak.
        return 1 if trio.current_time() - started >= HEALTHY_RUN else failures + 1

    async def _ready(self) -> AgentProcess:
        with trio.move_on_after(self.config.start_timeout):
            while True:
                agent = self.agent
                if agent is not None and not agent.exited.is_set():
                    return agent
                if self._finished:
                    break
                await self._changed.wait()
        raise AgentUnavailableError(self._last_error or "the agent did not start in time")

    # --- sessions -----------------------------------------------------------------

    async def _stored_session(self) -> str | None:
        value = await self.config.store.kv_get(self.config.account_id, SESSIONS, self.user)
        return value if isinstance(value, str) else None

    async def _new_session(self, agent: AgentProcess) -> str:
        result = await agent.connection.request(
            "session/new", {"cwd": str(self.workspace), "mcpServers": []}
        )
        session = result.get("sessionId") if isinstance(result, dict) else None
        if not isinstance(session, str):
            raise AcpError("session/new answered no sessionId")
        await self.config.store.kv_put(self.config.account_id, SESSIONS, self.user, session)
        self._session, self._session_agent = session, agent
        return session

    async def _ensure_session(self, agent: AgentProcess, notices: list[str]) -> str:
        if self._session is not None and self._session_agent is agent:
            return self._session
        stored = await self._stored_session()
        if stored is None:
            return await self._new_session(agent)
        if not agent.load_session:
            notices.append("(the agent cannot resume the previous session: a new one started)")
            return await self._new_session(agent)
        self._loading = True
        try:
            await agent.connection.request(
                "session/load",
                {"sessionId": stored, "cwd": str(self.workspace), "mcpServers": []},
            )
        except AgentExitedError:
            raise
        except AcpError as exc:
            log.info("session/load failed (%s); starting a new session", exc)
            notices.append("(the previous session could not be resumed: a new one started)")
            return await self._new_session(agent)
        finally:
            self._loading = False
        self._session, self._session_agent = stored, agent
        return stored

    async def new_session(self) -> str:
        """``/new``: drop the stored session and start a fresh one.

        Cancellation:
            Safe; the old session id is gone either way.
        """
        self._busy += 1
        self._touch()
        try:
            await self.config.store.kv_delete(self.config.account_id, SESSIONS, self.user)
            self._session = self._session_agent = None
            return await self._new_session(await self._ready())
        finally:
            self._busy -= 1
            self._touch()

    # --- prompts ------------------------------------------------------------------

    async def prompt(self, msg: Message) -> None:
        """Send ``msg`` to the agent and its answer to the user (the lane handler).

        Cancellation:
            Stops waiting for the agent (which is then told ``session/cancel``).
        """
        self._busy += 1
        self._touch()
        try:
            async with msg.typing():
                await self._prompt(msg)
        finally:
            self._busy -= 1
            self._touch()

    async def _prompt(self, msg: Message) -> None:
        try:
            agent = await self._ready()
        except AgentUnavailableError as exc:
            log.warning("no agent for a user: %s", exc)
            await msg.reply(UNAVAILABLE)
            return
        notices: list[str] = []
        run = msg.run()
        turn = Turn(
            run, lambda: msg.client.send_window(msg.from_user_id, context_token=msg.context_token)
        )
        stop_reason: str | None = None
        try:
            session = await self._ensure_session(agent, notices)
            for notice in notices:
                await run.send_text(notice)
            blocks = await prompt_blocks(msg, self.workspace)
            self._turn = turn
            with unwrap_single_error():
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(turn.pump)
                    try:
                        stop_reason = await self._request_prompt(agent, session, blocks, turn)
                    finally:
                        turn.close()
        except AgentExitedError:
            self._turn = None
            await turn.finish("The agent stopped; restarting it. Please send your message again.")
            return
        finally:
            self._turn = None
            self._question = None
        await turn.finish(_STOP_NOTES.get(stop_reason or ""))

    async def _request_prompt(
        self, agent: AgentProcess, session: str, blocks: list[dict[str, Any]], turn: Turn
    ) -> str:
        with trio.CancelScope() as scope:
            turn.scope = scope
            answered = False
            try:
                result = await agent.connection.request(
                    "session/prompt", {"sessionId": session, "prompt": blocks}
                )
                answered = True
            finally:
                turn.scope = None
                if not answered and not agent.exited.is_set():
                    # Cancelled (the monitor stops, or the grace after /stop ran out):
                    # the agent should not go on working for nobody.
                    with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                        await self._cancel_quietly(agent, session)
            reason = result.get("stopReason") if isinstance(result, dict) else None
            return reason if isinstance(reason, str) else "end_turn"
        log.warning("the agent did not confirm a cancel within %.0f s", self.config.cancel_grace)
        return "cancelled"

    @staticmethod
    async def _cancel_quietly(agent: AgentProcess, session: str) -> None:
        with contextlib.suppress(AgentExitedError):
            await agent.connection.notify("session/cancel", {"sessionId": session})

    # --- the interrupt path -------------------------------------------------------

    def has_question(self) -> bool:
        """Whether a permission question waits for this user's answer."""
        return self._question is not None and not self._question.answered.is_set()

    def answer(self, text: str) -> bool:
        """Resolve the waiting question with the user's yes/no; whether one waited."""
        question, allow = self._question, parse_answer(text)
        if question is None or question.answered.is_set() or allow is None:
            return False
        question.allow = allow
        question.answered.set()
        return True

    async def stop(self) -> bool:
        """``/stop``: ``session/cancel`` the running prompt; whether one was running.

        Cancellation:
            Safe.
        """
        turn, agent, session = self._turn, self.agent, self._session
        if turn is None or agent is None or session is None:
            return False
        turn.stop_requested = True
        if self._question is not None and not self._question.answered.is_set():
            self._question.allow = None
            self._question.answered.set()
        await self._cancel_quietly(agent, session)
        if turn.scope is not None:
            turn.scope.deadline = min(
                turn.scope.deadline, trio.current_time() + self.config.cancel_grace
            )
        return True

    # --- the agent's requests and notifications -----------------------------------

    def _on_notification(self, method: str, params: Any) -> None:
        if method != "session/update" or self._loading or not isinstance(params, dict):
            return
        turn = self._turn
        if turn is None or params.get("sessionId") != self._session:
            return
        turn.push(params.get("update"))

    async def _on_request(self, method: str, params: Any) -> Any:
        if method == "session/request_permission":
            return await self._permission(params)
        if method == "fs/read_text_file":
            return await read_text_file(self.workspace, params)
        if method == "fs/write_text_file":
            return await write_text_file(self.workspace, params)
        raise method_not_found(method)

    async def _permission(self, params: Any) -> dict[str, Any]:
        turn = self._turn
        tool = params.get("toolCall") if isinstance(params, dict) else None
        call_id = str(tool.get("toolCallId")) if isinstance(tool, dict) else ""
        kind = tool.get("kind") if isinstance(tool, dict) else None
        if kind is None and turn is not None:
            kind = turn.tool_kinds.get(call_id)
        verdict = decide(self.config.approve, kind if isinstance(kind, str) else None)
        if verdict is not None:
            return outcome(params, verdict)
        if turn is None or turn.stop_requested:
            return outcome(params, None)
        question = self._question = _Question()
        title = turn.tool_titles.get(call_id)
        await turn.say(question_text(params, self.config.ask_timeout, title))
        with trio.move_on_after(self.config.ask_timeout):
            await question.answered.wait()
        if self._question is question:
            self._question = None
        if not question.answered.is_set():
            await turn.say("(no answer: rejected)")
            return outcome(params, False)
        return outcome(params, question.allow)
