"""Messages for router tests, built without a client (routes that only record)."""

from __future__ import annotations

from typing import Any

import weixin_trio as wx

_ITEMS: dict[str, dict[str, Any]] = {
    "image": {"type": 2, "image_item": {"media": {"encrypt_query_param": "q"}}},
    "file": {
        "type": 4,
        "file_item": {"file_name": "a.txt", "media": {"encrypt_query_param": "q", "aes_key": "k"}},
    },
    "video": {"type": 5, "video_item": {"media": {"encrypt_query_param": "q", "aes_key": "k"}}},
}


def message(
    text: str = "",
    *,
    user: str = "alice@im.wechat",
    group: str | None = None,
    media: tuple[str, ...] = (),
    message_id: int = 1,
) -> wx.Message:
    """An inbound message with ``text`` and media items of the named kinds."""
    items: list[dict[str, Any]] = []
    if text:
        items.append({"type": 1, "text_item": {"text": text}})
    items.extend(_ITEMS[kind] for kind in media)
    raw: dict[str, Any] = {
        "message_id": message_id,
        "from_user_id": user,
        "message_type": 1,
        "item_list": items,
    }
    if group is not None:
        raw["group_id"] = group
    return wx.Message.from_json(raw, message_id=message_id)
