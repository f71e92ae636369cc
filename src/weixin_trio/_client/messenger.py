"""``Messenger``: text and item sends of one account, between the client and the wire.

It turns a text into messages (markdown filter, chunking), picks the context token,
checks and spends the user's send window, builds the outbound message and hands it to
the `Sender` (when ``open_client`` runs one) or straight to
the endpoint layer. `ILinkClient`, `Run`, replies and media sends all send through it;
it knows nothing of them.

It also holds the client's send hooks (``before_send``/``after_send``, run once per
logical send by `send_text` and the media sends) and its remote media policy.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, final

import attrs

from .. import _wire as w
from .._errors import NoContextTokenError, SendWindowClosedError
from .._proto.address_policy import RemoteMediaPolicy
from .._proto.client_ids import ReplyId, new_client_id
from .._proto.outgoing import Outgoing
from .._proto.send_windows import SendWindow
from ..markdown import filter_markdown
from ..text import split_text
from .send_hooks import SendHooks

if TYPE_CHECKING:
    from .._proto.client_ids import ClientIdSource, SendResult
    from .endpoints import Endpoints
    from .sender import Sender
    from .state import LiveState

__all__ = ["Messenger"]


@final
class Messenger:
    """Sends of one account: text preparation, context tokens, send windows, hand-off.

    Attributes:
        endpoints: The endpoint layer (sends go there when no `Sender` runs).
        state: The account's `LiveState`.
        sender: The running send queue, set by ``open_client`` while it runs.
        markdown: Filter outbound text through the markdown filter.
        text_limit: Longest text message; longer texts are split.
        hooks: The client's ``before_send``/``after_send`` hooks.
        remote_media: How media sends fetch ``http(s)`` URLs.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        state: LiveState,
        *,
        markdown: bool,
        text_limit: int,
        hooks: SendHooks | None = None,
        remote_media: RemoteMediaPolicy | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.state = state
        self.sender: Sender | None = None
        self.markdown = markdown
        self.text_limit = text_limit
        self.hooks = hooks if hooks is not None else SendHooks()
        self.remote_media = remote_media if remote_media is not None else RemoteMediaPolicy()

    async def transmit(self, msg: w.WeixinMessage) -> SendResult:
        """Send one built message through the sender tasks (or directly without them)."""
        if self.sender is not None:
            return await self.sender.submit(msg)
        return await self.endpoints.send_message(msg)

    def prepare_text(self, text: str) -> list[str]:
        """The messages a text becomes: markdown filtered (if enabled), then split.

        Raises:
            ValueError: Nothing is left to send (empty text, or only removed markdown).
        """
        if self.markdown:
            text = filter_markdown(text)
        chunks = [c for c in split_text(text, self.text_limit) if c.strip()]
        if not chunks:
            raise ValueError("refusing to send an empty text message")
        return chunks

    def resolve_context_token(self, to: str, context_token: str | None) -> str:
        """The context token for a send to ``to``: the given one, else the stored one.

        Raises:
            NoContextTokenError: None is known for ``to``.
        """
        token = context_token or self.state.context_tokens.get(to)
        if not token:
            raise NoContextTokenError(to)
        return token

    def send_window(self, to: str, *, context_token: str | None = None) -> SendWindow:
        """Whether and how much can be sent to ``to`` now (see `ILinkClient.send_window`)."""
        windows = self.state.send_windows
        if windows is None:
            return SendWindow(to, is_open=True, known=False)
        token = context_token or self.state.context_tokens.get(to)
        return windows.check(to, time.time(), token=token)

    def check_send_window(self, to: str, context_token: str | None = None) -> None:
        """Raise `SendWindowClosedError` if a send to ``to`` would be refused."""
        window = self.send_window(to, context_token=context_token)
        if not window.is_open:
            self.state.send_metrics.windows_closed += 1
            raise SendWindowClosedError(to, window.reason or "closed")

    def build_message(
        self,
        to: str,
        items: tuple[w.MessageItem, ...],
        *,
        context_token: str | None,
        client_id: str | ReplyId | None = None,
        run_id: str | None = None,
    ) -> w.WeixinMessage:
        """An outbound message exactly as the references build it (PROTOCOL §5.1).

        A `ReplyId` becomes the reply's id for exactly these items.
        """
        if isinstance(client_id, ReplyId):
            client_id = client_id.for_items(items)
        return w.WeixinMessage(
            from_user_id="",
            to_user_id=to,
            client_id=client_id or new_client_id(),
            message_type=w.MessageType.BOT,
            message_state=w.MessageState.FINISH,
            item_list=items,
            context_token=context_token,
            run_id=run_id,
        )

    async def send_item(
        self,
        to: str,
        item: w.MessageItem,
        *,
        context_token: str | None = None,
        client_id: str | ReplyId | None = None,
        run_id: str | None = None,
        count_in_window: bool = True,
    ) -> SendResult:
        """Send one message with one item to ``to``, through the send window check.

        The send spends the budget of the context token it carries (PROTOCOL §7.1a).
        ``count_in_window=False`` sends without checking or using the user's window
        quota (for progress items, which the chat does not show).

        Raises:
            NoContextTokenError: No context token known for ``to``.
            SendWindowClosedError: The user's send window is closed.

        Cancellation:
            As `ILinkClient.send_message`.
        """
        token = self.resolve_context_token(to, context_token)
        if count_in_window:
            self.check_send_window(to, token)
        msg = self.build_message(
            to, (item,), context_token=token, client_id=client_id, run_id=run_id
        )
        result = await self.transmit(msg)
        windows = self.state.send_windows
        if windows is not None and count_in_window:
            windows.record_send(to, token)
        return result

    async def send_text(
        self,
        to: str,
        text: str,
        *,
        context_token: str | None,
        client_ids: ClientIdSource,
        run_id: str | None = None,
        reply_to: int | None = None,
    ) -> SendResult:
        """Send a text (one logical send: the hooks run once, whatever the parts).

        Cancellation:
            As `ILinkClient.send_text`.
        """
        if not self.hooks:
            return await self.deliver_text(
                to, text, context_token=context_token, client_ids=client_ids, run_id=run_id
            )
        outgoing = Outgoing(
            to=to,
            kind="text",
            text=text,
            context_token=context_token,
            run_id=run_id,
            reply_to=reply_to,
        )

        async def perform(out: Outgoing) -> SendResult:
            return await self.deliver_text(
                out.to,
                out.text or "",
                context_token=out.context_token,
                client_ids=client_ids,
                run_id=out.run_id,
            )

        return await self.hooks.run(outgoing, perform)

    async def deliver_text(
        self,
        to: str,
        text: str,
        *,
        context_token: str | None,
        client_ids: ClientIdSource,
        run_id: str | None = None,
    ) -> SendResult:
        """Send a text as one message per part, each with the next id of ``client_ids``.

        No hooks run here (a media send's caption is part of the media send).

        Cancellation:
            As `ILinkClient.send_text`.
        """
        chunks = self.prepare_text(text)
        token = self.resolve_context_token(to, context_token)
        results: list[SendResult] = []
        for chunk in chunks:
            item = w.MessageItem(type=w.ItemType.TEXT, text_item=w.TextItem(text=chunk))
            results.append(
                await self.send_item(
                    to, item, context_token=token, client_id=client_ids(), run_id=run_id
                )
            )
        if len(results) == 1:
            return results[0]
        return attrs.evolve(results[-1], parts=tuple(results))
