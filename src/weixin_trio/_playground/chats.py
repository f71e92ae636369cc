"""`Chats`: simulated users and groups, what they send and what the bot answers.

What the browser sends is injected into the fake server as the live server would
deliver it (media encrypted with real AES into the fake CDN). What the bot does is
watched on the fake server: after each request it answered, the new sends, typing
events and faults become `EventHub` events. Each reply is placed in the chat its
``context_token`` came from (a group message's token leads back to the group), a
proactive send in the user's own chat.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

import attrs

from ..testing._fake_cdn import media_json
from .media_store import MediaStore

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..testing import FakeILinkServer
    from ..testing._fake_model import FakeRequest
    from .hub import EventHub

__all__ = ["WINDOW_HOURS", "WINDOW_QUOTA", "Chats"]

#: The live server's send window: 24 h after the user's last message ...
WINDOW_HOURS: Final = 24
#: ... and about ten sends per inbound message (per context token), PROTOCOL §7.1a.
WINDOW_QUOTA: Final = 10
_KINDS: Final = {1: "text", 2: "image", 3: "voice", 4: "file", 5: "video"}


@attrs.define
class _Window:
    last_inbound: float = 0.0
    token: str | None = None
    sent: dict[str, int] = attrs.field(factory=dict)


def user_chat(user: str) -> str:
    """The chat id of a one-to-one chat."""
    return f"u:{user}"


def group_chat(group: str) -> str:
    """The chat id of a group chat."""
    return f"g:{group}"


class Chats:
    """Users, groups and both directions of every conversation, as hub events.

    Args:
        fake: The playground's fake server (its default account is the bot).
        hub: Where events go.
    """

    def __init__(self, fake: FakeILinkServer, hub: EventHub) -> None:
        self.fake = fake
        self.hub = hub
        self.media = MediaStore()
        self.users: dict[str, str] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self._chat_of_token: dict[str, str] = {}
        self._windows: dict[str, _Window] = {}
        self._seen_sends = 0
        self._seen_typing = 0
        self._seen_faults = 0
        fake.observers.append(self.observe)

    # --- users and groups ---------------------------------------------------------------

    def add_user(self, name: str, user_id: str | None = None) -> str:
        """Add a simulated user; returns the id (``<name>@im.wechat`` by default)."""
        clean = "".join(c for c in name.strip().lower() if c.isalnum() or c in "-_.") or "user"
        user_id = user_id or f"{clean}@im.wechat"
        if user_id not in self.users:
            self.users[user_id] = name.strip() or clean
            self.hub.publish("user", user=user_id, name=self.users[user_id])
        return user_id

    def add_group(self, name: str, members: list[str]) -> str:
        """Add a group of known users; returns its id."""
        unknown = [m for m in members if m not in self.users]
        if unknown or not members:
            raise ValueError(f"a group needs known members, not {unknown or members}")
        group_id = f"g{len(self.groups) + 1}@chatroom"
        self.groups[group_id] = {"name": name.strip() or group_id, "members": list(members)}
        self.hub.publish("group", group=group_id, **self.groups[group_id])
        return group_id

    def _where(self, sender: str, group: str | None) -> tuple[str, dict[str, Any]]:
        if sender not in self.users:
            raise ValueError(f"unknown user {sender!r}")
        if group is None:
            return user_chat(sender), {}
        if sender not in self.groups.get(group, {}).get("members", ()):
            raise ValueError(f"{sender!r} is not in group {group!r}")
        return group_chat(group), {"group_id": group}

    # --- what the users send ------------------------------------------------------------

    def send_text(self, sender: str, text: str, *, group: str | None = None) -> int:
        """``sender`` writes ``text`` (in ``group``, if given); returns the message id."""
        chat, fields = self._where(sender, group)
        item = {"type": 1, "text_item": {"text": text}}
        message_id = self.fake.inject_message(sender, [item], **fields)
        self._inbound(chat, sender, message_id, kind="text", text=text)
        return message_id

    def send_media(
        self,
        sender: str,
        kind: str,
        data: bytes,
        name: str,
        *,
        group: str | None = None,
        transcript: str | None = None,
    ) -> int:
        """``sender`` sends an image, file or voice (real AES on the fake CDN)."""
        chat, fields = self._where(sender, group)
        obj = self.fake.cdn.store(data)
        full_url = None
        if self.fake.cdn_full_urls:
            full_url = f"{self.fake.cdn_base_url}/download?encrypted_query_param={obj.param}"
        item: dict[str, Any]
        if kind == "image":
            media = media_json(obj, key_form="a", full_url=full_url)
            payload = {"aeskey": obj.key.hex(), "media": media, "mid_size": len(obj.ciphertext)}
            item = {"type": 2, "image_item": payload}
        elif kind == "file":
            media = media_json(obj, key_form="b", full_url=full_url)
            payload = {"media": media, "file_name": name, "len": str(len(data))}
            item = {"type": 4, "file_item": payload}
        elif kind == "voice":
            media = media_json(obj, key_form="b", full_url=full_url)
            payload = {"media": media, "encode_type": 6, "playtime": 1000}
            if transcript:
                payload["text"] = transcript
            item = {"type": 3, "voice_item": payload}
        else:
            raise ValueError(f"kind must be image, file or voice, not {kind!r}")
        message_id = self.fake.inject_message(sender, [item], **fields)
        media_id = self.media.add(name, lambda: data)
        self._inbound(
            chat, sender, message_id, kind=kind, media=media_id, name=name, text=transcript
        )
        return message_id

    def _inbound(self, chat: str, sender: str, message_id: int, **data: Any) -> None:
        token = self.fake.default.context_tokens[sender]
        self._chat_of_token[token] = chat
        window = self._windows.setdefault(sender, _Window())
        window.last_inbound = time.time()
        window.token = token
        self.hub.publish(
            "message",
            chat=chat,
            sender=sender,
            message_id=message_id,
            at=time.time(),
            **data,
        )
        self._publish_window(sender)

    # --- what the bot does --------------------------------------------------------------

    def observe(self, request: FakeRequest) -> None:
        """A fake-server observer: turn what changed into events (never raises)."""
        del request
        try:
            self._new_sends()
            self._new_typing()
            self._new_faults()
        except Exception as exc:  # a bug here must not break the fake server
            self.hub.publish("error", detail=f"{type(exc).__name__}: {exc}")

    def _new_sends(self) -> None:
        sends = self.fake.send_log.sends
        token = self.fake.token
        while self._seen_sends < len(sends):
            send = sends[self._seen_sends]
            self._seen_sends += 1
            if send.account != token or not send.shown:
                continue
            user = send.to_user_id
            chat = self._chat_of_token.get(send.context_token or "", user_chat(user))
            window = self._windows.setdefault(user, _Window())
            if send.context_token:
                window.sent[send.context_token] = window.sent.get(send.context_token, 0) + 1
            for item in send.items:
                self._outbound_item(chat, user, send.run_id, item)
            self._publish_window(user)

    def _outbound_item(
        self, chat: str, user: str, run_id: str | None, item: Mapping[str, Any]
    ) -> None:
        kind = item.get("type")
        base: dict[str, Any] = {"chat": chat, "to": user, "run_id": run_id, "at": time.time()}
        if kind in (11, 12):
            payload = item.get("tool_call_start_item" if kind == 11 else "tool_call_result_item")
            payload = payload if isinstance(payload, dict) else {}
            status = "running" if kind == 11 else str(payload.get("status", "unknown"))
            self.hub.publish(
                "progress",
                **base,
                tool=str(payload.get("tool_name", "")),
                call_id=payload.get("tool_call_id"),
                status=status,
            )
            return
        name = _KINDS.get(kind) if isinstance(kind, int) else None
        if name is None:
            self.hub.publish("reply", **base, kind="other", text=f"(item type {kind})")
            return
        if name == "text":
            text = str((item.get("text_item") or {}).get("text", ""))
            self.hub.publish("reply", **base, kind="text", text=text)
            return
        payload = item.get(f"{name}_item") or {}
        media = payload.get("media")
        file_name = str(payload.get("file_name") or f"{name}.bin")
        media_id = None
        if isinstance(media, dict):
            media_id = self.media.add(file_name, _loader(self.fake, media))
        self.hub.publish("reply", **base, kind=name, media=media_id, name=file_name)

    def _new_typing(self) -> None:
        events = self.fake.default.typing_events
        fresh, self._seen_typing = events[self._seen_typing :], len(events)
        for user, status in fresh:
            self.hub.publish("typing", user=user, on=status == 1)

    def _new_faults(self) -> None:
        injected = self.fake.faults.injected
        fresh, self._seen_faults = injected[self._seen_faults :], len(injected)
        for endpoint, fault in fresh:
            self.hub.publish("fault_hit", endpoint=endpoint, kind=fault.kind, at=time.time())

    # --- send windows -------------------------------------------------------------------

    def window(self, user: str, now: float | None = None) -> dict[str, Any]:
        """The user's send window as the live server would judge a proactive send."""
        now = time.time() if now is None else now
        w = self._windows.get(user)
        if w is None or w.token is None:
            return {
                "user": user,
                "open": False,
                "remaining": 0,
                "expires_at": None,
                "reason": "no message yet",
            }
        expires = w.last_inbound + WINDOW_HOURS * 3600
        remaining = max(0, WINDOW_QUOTA - w.sent.get(w.token, 0))
        reason = "expired" if now >= expires else "quota" if remaining == 0 else None
        return {
            "user": user,
            "open": reason is None,
            "remaining": remaining,
            "expires_at": expires,
            "reason": reason,
        }

    def _publish_window(self, user: str) -> None:
        self.hub.publish("window", **self.window(user))


def _loader(fake: FakeILinkServer, media: dict[str, Any]) -> Any:
    def load() -> bytes:
        return fake.cdn.plaintext_of(media)

    return load
