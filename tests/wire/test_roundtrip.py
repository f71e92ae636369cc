"""The wire layer: round trips for every type, open enums, leniency, strictness."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import attrs
import pytest
from hypothesis import given, strategies as st

import weixin_trio as wx
from weixin_trio import _wire as w

WIRE_TYPES = [
    getattr(w, name)
    for name in w.__all__
    if isinstance(getattr(w, name), type) and attrs.has(getattr(w, name))
]

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


def no_nulls(obj: Any) -> bool:
    if obj is None:
        return False
    if isinstance(obj, dict):
        return all(no_nulls(v) for v in obj.values())
    if isinstance(obj, list):
        return all(no_nulls(v) for v in obj)
    return True


_OMITTED = ("extra", "malformed", "raw_msgs")
_ENUMS = {t for t in vars(w).values() if isinstance(t, type) and issubclass(t, w.WireIntEnum)}


def _for_type(tp: Any, depth: int) -> st.SearchStrategy[Any]:
    if tp in WIRE_TYPES:
        return strategy_for(tp, depth - 1) if depth > 0 else st.nothing()
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*[_for_type(a, depth) for a in args])
    if origin is tuple:
        return st.lists(_for_type(args[0], depth), max_size=2).map(tuple)
    if tp in _ENUMS:
        return st.sampled_from(list(tp))
    if tp is int:
        return st.integers(min_value=-(2**63), max_value=2**63)
    if tp is str:
        return st.text(max_size=10)
    if tp is bool:
        return st.booleans()
    if tp is type(None):
        return st.none()
    raise AssertionError(f"no strategy for {tp!r}")


def strategy_for(cls: type, depth: int = 2) -> st.SearchStrategy[Any]:
    """Instances of a wire type with plausible field values (enums include unknown ints).

    Nested wire types recurse to ``depth`` (quotes contain items contain quotes ...).
    """
    hints = typing.get_type_hints(cls)
    fields = {
        f.name: _for_type(hints[f.name], depth) for f in attrs.fields(cls) if f.name not in _OMITTED
    }
    return st.builds(cls, **fields)


@pytest.mark.parametrize("cls", WIRE_TYPES, ids=lambda c: c.__name__)
@given(data=st.data())
def test_round_trip(cls: type, data: st.DataObject) -> None:
    obj = data.draw(strategy_for(cls))
    raw = w.unstructure(obj)
    assert no_nulls(raw)
    json.dumps(raw)  # JSON-ready
    again: Any = w.structure(raw, cls)
    assert w.unstructure(again) == raw


def test_unknown_enum_values_and_keys_survive() -> None:
    raw = {
        "message_type": 99,
        "message_state": 7,
        "future_field": {"x": 1},
        "item_list": [{"type": 42, "something_new_item": {"x": 1}}, {"type": 1}],
    }
    msg = w.structure(raw, w.WeixinMessage)
    assert msg.message_type == 99
    assert not isinstance(msg.message_type, w.MessageType)
    assert msg.item_list is not None
    assert msg.item_list[0].type == 42
    assert msg.item_list[0].extra == {"something_new_item": {"x": 1}}
    assert msg.item_list[1].type is w.ItemType.TEXT
    out = w.unstructure(msg)
    assert out["item_list"][0] == {"type": 42, "something_new_item": {"x": 1}}
    assert "future_field" not in out


def test_file_len_is_text_and_leniency() -> None:
    item = w.structure({"len": 2048, "file_name": "a"}, w.FileItem)
    assert item.len == "2048"
    text = w.structure({"text": False}, w.TextItem)
    assert text.text == "false"
    assert w.structure({"message_id": "12"}, w.WeixinMessage).message_id == 12
    with pytest.raises(Exception):  # noqa: B017, PT011 - cattrs wraps the TypeError
        w.structure({"text": {"a": 1}}, w.TextItem)


def test_strict_converter_rejects_what_the_lenient_one_forgives() -> None:
    strict = w.make_converter(strict=True)
    with pytest.raises(Exception):  # noqa: B017, PT011
        strict.structure({"text": 5}, w.TextItem)
    with pytest.raises(Exception):  # noqa: B017, PT011
        strict.structure({"get_updates_buf": "", "base_info": {}, "typo": 1}, w.GetUpdatesReq)
    ok = strict.structure({"get_updates_buf": "", "base_info": {}}, w.GetUpdatesReq)
    assert ok.get_updates_buf == ""


def test_dumps_is_compact_raw_utf8_without_nulls() -> None:
    body = w.dumps(w.TextItem(text="你好"))
    assert body == '{"text":"你好"}'.encode()
    assert w.dumps(w.CDNMedia()) == b"{}"


def test_required_fields_are_always_sent() -> None:
    req = w.GetUpdatesReq(get_updates_buf="", base_info=w.BaseInfo())
    assert w.unstructure(req) == {"get_updates_buf": "", "base_info": {}}
    upload = w.GetUploadUrlReq(
        filekey="k",
        media_type=1,
        to_user_id="u",
        rawsize=0,
        rawfilemd5="m",
        filesize=16,
        aeskey="a",
        base_info=w.BaseInfo(),
    )
    assert w.unstructure(upload)["no_need_thumb"] is True


def test_secrets_are_not_in_reprs() -> None:
    msg = w.WeixinMessage(context_token="ctx-secret")
    media = w.CDNMedia(encrypt_query_param="eqp-secret", aes_key="key-secret", full_url="u-secret")
    for text in (repr(msg), repr(media)):
        assert "secret" not in text


@given(body=json_values)
def test_any_getupdates_body_parses_or_raises_protocol_error(body: Any) -> None:
    raw = json.dumps(body).encode()
    try:
        obj = w.loads_object(raw, endpoint="ilink/bot/getupdates")
        w.parse_updates(obj)
    except wx.ProtocolError:
        pass


@given(msgs=st.lists(json_values, max_size=5))
def test_bad_messages_never_spoil_the_batch(msgs: list[Any]) -> None:
    good = {
        "message_id": 1,
        "message_type": 1,
        "item_list": [{"type": 1, "text_item": {"text": "x"}}],
    }
    resp = w.parse_updates({"ret": 0, "msgs": [*msgs, good]})
    assert resp.msgs[-1].message_id == 1
    assert len(resp.msgs) + len(resp.malformed) == len(msgs) + 1
    assert len(resp.raw_msgs) == len(resp.msgs)


@pytest.mark.parametrize("body", [b"", b"[]", b"nul", b'"x"', b"{", b"1e999999"])
def test_loads_object_raises_protocol_error(body: bytes) -> None:
    with pytest.raises(wx.ProtocolError):
        w.loads_object(body, endpoint="e")
    assert w.loads_object(b" ", endpoint="e", allow_empty=True) == {}
