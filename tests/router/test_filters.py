"""``weixin_trio.filters``: each filter, and the algebra of ``&``, ``|``, ``~`` (hypothesis)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given, strategies as st

from weixin_trio import filters
from weixin_trio.filters import Filter
from weixin_trio.media import MediaKind

from ._messages import message

if TYPE_CHECKING:
    import weixin_trio as wx

USERS = ["alice@im.wechat", "bob@im.wechat", "carol@im.wechat"]
GROUPS = [None, "g1@chatroom", "g2@chatroom"]
TEXTS = ["", "hello", "/ping x", "/PONG", "@bot /ping", "price 12", "/usr/bin"]
KINDS = [(), ("image",), ("file",), ("video", "image")]

messages = st.builds(
    message,
    st.sampled_from(TEXTS),
    user=st.sampled_from(USERS),
    group=st.sampled_from(GROUPS),
    media=st.sampled_from(KINDS),
)
primitives = st.sampled_from(
    [
        filters.from_user(USERS[0]),
        filters.from_user(*USERS[1:]),
        filters.in_group("g1@chatroom"),
        filters.in_group(),
        filters.is_group,
        filters.is_private,
        filters.text_matches(r"\d+"),
        filters.has_media(),
        filters.has_media("image"),
        filters.is_command(),
        filters.is_command("ping"),
        Filter(lambda m: len(m.text) > 5),
    ]
)
composed = st.recursive(
    primitives,
    lambda inner: st.one_of(
        st.builds(lambda a, b: a & b, inner, inner),
        st.builds(lambda a, b: a | b, inner, inner),
        st.builds(lambda a: ~a, inner),
    ),
    max_leaves=8,
)


@given(composed, composed, messages)
def test_and_or_not_are_boolean_operators(a: Filter, b: Filter, msg: wx.Message) -> None:
    assert (a & b)(msg) == (a(msg) and b(msg))
    assert (a | b)(msg) == (a(msg) or b(msg))
    assert (~a)(msg) == (not a(msg))
    assert (~(a & b))(msg) == ((~a) | (~b))(msg)  # De Morgan
    assert (~~a)(msg) == a(msg)


@given(composed, messages)
def test_plain_predicates_combine_too(a: Filter, msg: wx.Message) -> None:
    assert (a & (lambda m: True))(msg) == a(msg)
    assert (a | (lambda m: 1))(msg) is True


def test_each_filter() -> None:
    alice = message("/Ping now", user=USERS[0])
    group_img = message("price 12", user=USERS[1], group="g1@chatroom", media=("image",))
    assert filters.from_user(USERS[0])(alice)
    assert not filters.from_user(USERS[0])(group_img)
    assert filters.in_group("g1@chatroom")(group_img)
    assert not filters.in_group("g2@chatroom")(group_img)
    assert filters.in_group()(group_img)
    assert not filters.in_group()(alice)
    assert filters.is_group(group_img)
    assert filters.is_private(alice)
    assert filters.text_matches(r"\d+")(group_img)
    assert not filters.text_matches(r"\d")(alice)
    assert filters.has_media(MediaKind.IMAGE)(group_img)
    assert filters.has_media("Image")(group_img)
    assert not filters.has_media("file")(group_img)
    assert filters.is_command("PING")(alice)
    assert filters.is_command("/ping", "x")(alice)
    assert not filters.is_command("pong")(alice)
    assert not filters.is_command()(group_img)


def test_repr_names_the_expression() -> None:
    combined = filters.from_user("a") & ~filters.is_group | filters.has_media("video")
    assert repr(combined) == "((from_user('a',) & ~is_group) | has_media(VIDEO))"


def test_bad_arguments_raise_at_once() -> None:
    with pytest.raises(ValueError, match="unknown media kind"):
        filters.has_media("gif")
    with pytest.raises(TypeError, match="needs a callable"):
        Filter("not callable")  # type: ignore[arg-type]
