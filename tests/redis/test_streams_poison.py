"""Fan-out: a lone surrogate in a message neither fails its publish nor its handling."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import weixin_trio as wx
from weixin_trio._client.message import ReplyContext
from weixin_trio.redis import StreamPublisher, partition_of
from weixin_trio.redis._scripts import partition_keys

from .test_streams import clients, fake, raw_text

if TYPE_CHECKING:
    from weixin_trio.redis import RedisStore
    from weixin_trio.testing import FakeILinkServer

__all__ = ["clients", "fake"]  # fixtures shared with test_streams


async def test_a_lone_surrogate_is_published_escaped_and_read_back_as_it_was(
    redis_store: RedisStore, fake: FakeILinkServer, clients: dict[str, wx.ILinkClient]
) -> None:
    acct = fake.default
    publisher = StreamPublisher(redis_store, partitions=2)
    mid, raw = raw_text(acct, "alice@im.wechat", "bad \ud800 text")
    msg = wx.Message.from_json(raw, message_id=mid, ctx=ReplyContext(clients[acct.bot_id]))

    await publisher(msg)  # before: UnicodeEncodeError from the Redis client

    stream = partition_keys(redis_store.prefix, partition_of(acct.bot_id, "alice@im.wechat", 2))[0]
    (entry,) = await redis_store.client.xrange(stream)
    body = entry.field_values["m"]
    assert "\\ud800" in body
    assert json.loads(body)["item_list"][0]["text_item"]["text"] == "bad \ud800 text"
