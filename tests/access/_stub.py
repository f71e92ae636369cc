"""A stand-in message for access and state tests that need no server."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from weixin_trio._state.conversation import ConversationState


@attrs.define
class StubClient:
    account_id: str = "bot@im.bot"


@attrs.define
class StubMessage:
    """What access control and ``msg.state`` use of a message: sender, client, store, reply."""

    from_user_id: str
    store: Any = None
    text: str = ""
    client: StubClient = attrs.field(factory=StubClient)
    replies: list[str] = attrs.field(factory=list)
    fail_reply: BaseException | None = None
    hang_reply: bool = False

    @property
    def state(self) -> ConversationState:
        return ConversationState(self.store, self.client.account_id, self.from_user_id)

    async def reply(self, text: str) -> None:
        if self.hang_reply:
            await trio.sleep_forever()
        if self.fail_reply is not None:
            raise self.fail_reply
        self.replies.append(text)
