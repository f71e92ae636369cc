"""The inbound ``Message`` view survives hostile and odd input."""

from __future__ import annotations

from typing import Any

import pytest

import weixin_trio as wx
from weixin_trio import _wire as w


def view(raw: dict[str, Any]) -> wx.Message:
    return wx.Message.from_json(raw, message_id=1)


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"item_list": []},
        {"item_list": [{}]},
        {"item_list": [{"type": 1}]},
        {"item_list": [{"type": 1, "text_item": {}}]},
        {"item_list": [{"type": 1, "text_item": {"text": ""}}]},
        {"item_list": [{"type": 77, "weird_item": [1, 2]}]},
        {"item_list": [{"type": 2, "image_item": {}}]},
        {"item_list": [{"type": 4, "file_item": {"len": "not a number"}}]},
        {"item_list": [{"type": 1, "ref_msg": {"message_item": {"type": 2}}}]},
        {"create_time_ms": 10**30},
        {"create_time_ms": -5},
    ],
)
def test_odd_messages_never_crash(raw: dict[str, Any]) -> None:
    msg = view(raw)
    assert isinstance(msg.text, str)
    assert isinstance(msg.media, tuple)


def test_huge_text_and_lone_surrogates() -> None:
    huge = "长" * 1_000_000
    msg = view({"item_list": [{"type": 1, "text_item": {"text": huge}}]})
    assert msg.text == huge
    lone = "a\ud800b"
    msg = view({"item_list": [{"type": 1, "text_item": {"text": lone}}]})
    assert msg.text == lone


def test_fields_and_group_fields() -> None:
    msg = view(
        {
            "from_user_id": "u@im.wechat",
            "to_user_id": "b@im.bot",
            "create_time_ms": 1767225600000,
            "session_id": "s",
            "group_id": "g",
            "context_token": "ctx",
            "item_list": [
                {
                    "type": 3,
                    "voice_item": {"text": "spoken", "media": {"encrypt_query_param": "q"}},
                },
                {"type": 1, "text_item": {"text": "typed"}},
            ],
        }
    )
    assert (msg.from_user_id, msg.to_user_id, msg.session_id, msg.group_id) == (
        "u@im.wechat",
        "b@im.bot",
        "s",
        "g",
    )
    assert msg.create_time is not None
    assert msg.create_time.year == 2026
    assert msg.voice_text == "spoken"
    assert msg.text == "spoken"  # the first item with text decides (reference rule)
    assert [m.kind.name for m in msg.media] == ["VOICE"]
    assert isinstance(msg.raw, w.WeixinMessage)
    assert "ctx" not in repr(msg)
