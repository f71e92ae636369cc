"""`Flow`: a small finite-state helper for multi-step conversations, kept in ``msg.state``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeVar, final

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._client.message import Message

    Step = Callable[[Message, dict[str, Any]], Awaitable[str | None]]
    StepT = TypeVar("StepT", bound=Step)

__all__ = ["FLOW_KEY", "Flow"]

#: The key of ``msg.state`` where the current flow is kept.
FLOW_KEY: Final = "_flow"


@final
class Flow:
    """Named steps of a conversation (ask a name, then a date), one user at a time.

    Register steps with `step`, in order; `start` puts a user at the first step (ask
    its question yourself). `handle` runs the user's current step with their next
    message: the step gets the message and the flow's data (a dict it may change)
    and returns the name of the next step, or ``None`` when the flow is over. The
    step and the data are kept in ``msg.state`` (key ``_flow``) after each step, so a
    flow survives a restart. A step that raises changes nothing: the monitor delivers
    the message again and the same step runs again.

    ```python
    signup = wx.Flow("signup")

    @signup.step("name")
    async def got_name(msg, data):
        data["name"] = msg.text
        await msg.reply("When? (YYYY-MM-DD)")
        return "date"

    @signup.step("date")
    async def got_date(msg, data):
        await msg.reply(f"See you on {msg.text}, {data['name']}!")
        return None  # done
    ```

    Args:
        name: The flow's name (a user is in at most one flow at a time).
    """

    def __init__(self, name: str) -> None:
        if not name:
            raise ValueError("a flow needs a name")
        self.name = name
        self._steps: dict[str, Step] = {}

    def __repr__(self) -> str:
        return f"<Flow {self.name!r} steps={list(self._steps)}>"

    @property
    def steps(self) -> tuple[str, ...]:
        """The step names, in the order they were registered."""
        return tuple(self._steps)

    def step(self, name: str) -> Callable[[StepT], StepT]:
        """Register ``async def fn(msg, data) -> next step | None`` as step ``name``."""
        if name in self._steps:
            raise ValueError(f"flow {self.name!r} has a step {name!r} already")

        def register(fn: StepT) -> StepT:
            self._steps[name] = fn
            return fn

        return register

    async def start(self, message: Message, **data: Any) -> str:
        """Put the sender at the first step with ``data`` (replacing any other flow).

        Returns:
            The first step's name.

        Raises:
            NoStoreError: The message has no store.

        Cancellation:
            Propagates.
        """
        if not self._steps:
            raise ValueError(f"flow {self.name!r} has no steps")
        first = next(iter(self._steps))
        await self._save(message, first, data)
        return first

    async def current(self, message: Message) -> str | None:
        """The sender's step in this flow, or ``None`` when not in it.

        Cancellation:
            Propagates.
        """
        found = await self._load(message)
        return None if found is None else found[0]

    async def data(self, message: Message) -> dict[str, Any]:
        """The flow's data of the sender (``{}`` when not in it).

        Cancellation:
            Propagates.
        """
        found = await self._load(message)
        return {} if found is None else found[1]

    async def handle(self, message: Message) -> bool:
        """Run the sender's current step with ``message``; whether the sender was in it.

        Raises:
            ValueError: The step returned a name the flow does not have (nothing saved).
            Exception: What the step raised (nothing saved).

        Cancellation:
            Propagates; the flow moves on only after its step returned.
        """
        found = await self._load(message)
        if found is None:
            return False
        step, data = found
        following = await self._steps[step](message, data)
        if following is None:
            await self.cancel(message)
        elif following not in self._steps:
            raise ValueError(f"flow {self.name!r} has no step {following!r}")
        else:
            await self._save(message, following, data)
        return True

    async def cancel(self, message: Message) -> bool:
        """Take the sender out of this flow; whether they were in it.

        Cancellation:
            Propagates.
        """
        state = await message.state.get()
        if not self._mine(state.get(FLOW_KEY)):
            return False
        del state[FLOW_KEY]
        await message.state.set(state)
        return True

    def _mine(self, flow: Any) -> bool:
        return (
            isinstance(flow, dict)
            and flow.get("name") == self.name
            and flow.get("step") in self._steps
            and isinstance(flow.get("data"), dict)
        )

    async def _load(self, message: Message) -> tuple[str, dict[str, Any]] | None:
        flow: Any = (await message.state.get()).get(FLOW_KEY)
        if not self._mine(flow):
            return None
        return flow["step"], flow["data"]

    async def _save(self, message: Message, step: str, data: dict[str, Any]) -> None:
        await message.state.update(**{FLOW_KEY: {"name": self.name, "step": step, "data": data}})
