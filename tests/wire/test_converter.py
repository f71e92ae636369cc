"""Property tests of the wire layer: converters, ``parse_updates``, ``loads_object``, ``dumps``.

Strategies are derived from the attrs classes themselves, so every wire type in
``weixin_trio._wire`` is covered, and a type added later is covered automatically.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given, settings, strategies as st

from weixin_trio import ProtocolError, _wire as w

# --- strategies ----------------------------------------------------------------------

WIRE_TYPES: list[type[Any]] = sorted(
    (obj for obj in vars(w).values() if isinstance(obj, type) and attrs.has(obj)),
    key=lambda cls: cls.__name__,
)
STRICT = w.make_converter(strict=True)
LENIENT = w.make_converter()

INT64ISH = st.integers(min_value=-(2**63), max_value=2**64 - 1)
# Fields that the converters never read or write (set by ``parse_updates`` only).
_DERIVED_FIELDS = frozenset({"malformed", "raw_msgs"})
_MESSAGE_ITEM_KEYS = frozenset(a.name for a in attrs.fields(w.MessageItem))

JSON_SCALARS: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | INT64ISH
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
# JSON values without null anywhere (what ``MessageItem.extra`` may hold and write back).
JSON_NO_NULL: st.SearchStrategy[Any] = st.recursive(
    st.booleans() | INT64ISH | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
#: Per-type properties run for each of the 26 types; fewer examples each keeps the
#: suite quick while every type still gets dozens of cases.
per_type = settings(max_examples=40)

EXTRA_KEYS = st.text(min_size=1, max_size=12).filter(lambda k: k not in _MESSAGE_ITEM_KEYS)

_cache: dict[type[Any], st.SearchStrategy[Any]] = {}


def _enum_in(tp: Any) -> type[w.WireIntEnum] | None:
    """The WireIntEnum of a ``SomeEnum | int [| None]`` annotation."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    for arg in typing.get_args(tp):
        if isinstance(arg, type) and issubclass(arg, w.WireIntEnum):
            return arg
    return None


def _for_type(tp: Any, *, allow_none: bool) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        has_none = len(args) != len(typing.get_args(tp))
        enum_cls = _enum_in(tp)
        if enum_cls is not None:
            inner: st.SearchStrategy[Any] = st.sampled_from(list(enum_cls)) | INT64ISH
        else:
            assert len(args) == 1, tp
            inner = _for_type(args[0], allow_none=False)
        return st.none() | inner if has_none and allow_none else inner
    if origin is tuple:
        item_type, ellipsis = typing.get_args(tp)
        assert ellipsis is ...
        return st.lists(_for_type(item_type, allow_none=False), max_size=3).map(tuple)
    if tp is str:
        return st.text(max_size=30)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return INT64ISH
    if isinstance(tp, type) and attrs.has(tp):
        return wire(tp)
    raise AssertionError(f"no strategy for {tp!r}")


def _build(cls: type[Any]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for field in attrs.fields(cls):
        if field.name in _DERIVED_FIELDS:
            continue
        if field.name == "extra":
            kwargs["extra"] = st.dictionaries(EXTRA_KEYS, JSON_NO_NULL, max_size=3)
            continue
        # A field whose default is not None reads back as that default when absent, so
        # None is not a value it can carry over the wire.
        kwargs[field.name] = _for_type(hints[field.name], allow_none=field.default is None)
    return st.builds(cls, **kwargs)


def wire(cls: type[Any]) -> st.SearchStrategy[Any]:
    """A strategy for instances of the wire type ``cls`` (recursive types allowed)."""
    if cls not in _cache:
        _cache[cls] = st.deferred(lambda: _build(cls))
    return _cache[cls]


def _contains_none(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, Mapping):
        return any(_contains_none(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_contains_none(v) for v in value)
    return False


def _enum_fields() -> list[tuple[type[Any], str, type[w.WireIntEnum]]]:
    found = []
    for cls in WIRE_TYPES:
        hints = typing.get_type_hints(cls)
        for field in attrs.fields(cls):
            enum_cls = _enum_in(hints[field.name])
            if enum_cls is not None:
                found.append((cls, field.name, enum_cls))
    return found


ENUM_FIELDS = _enum_fields()


def test_every_wire_type_is_covered() -> None:
    names = {cls.__name__ for cls in WIRE_TYPES}
    # A sample of what must be there; the derivation above picks up new types itself.
    assert {"WeixinMessage", "MessageItem", "GetUpdatesResp", "QrcodeStatusResp"} <= names
    assert len(WIRE_TYPES) == 26
    assert {(cls.__name__, name) for cls, name, _ in ENUM_FIELDS} >= {
        ("MessageItem", "type"),
        ("WeixinMessage", "message_type"),
        ("WeixinMessage", "message_state"),
        ("VoiceItem", "encode_type"),
        ("GetUploadUrlReq", "media_type"),
        ("SendTypingReq", "status"),
    }


# --- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", WIRE_TYPES, ids=lambda c: c.__name__)
@per_type
@given(data=st.data())
def test_round_trip(cls: type[Any], data: st.DataObject) -> None:
    obj = data.draw(wire(cls))
    out = w.unstructure(obj)
    assert w.structure(out, cls) == obj
    assert STRICT.structure(out, cls) == obj
    # Through real JSON text as well (tuples become arrays, big ints stay exact).
    assert w.structure(json.loads(w.dumps(obj)), cls) == obj


@pytest.mark.parametrize("cls", WIRE_TYPES, ids=lambda c: c.__name__)
@per_type
@given(data=st.data())
def test_unstructure_never_emits_none(cls: type[Any], data: st.DataObject) -> None:
    obj = data.draw(wire(cls))
    out = w.unstructure(obj)
    assert isinstance(out, dict)
    assert not _contains_none(out), out
    assert not _contains_none(json.loads(w.dumps(obj)))


@pytest.mark.parametrize("cls", WIRE_TYPES, ids=lambda c: c.__name__)
def test_all_none_object_writes_no_null(cls: type[Any]) -> None:
    """Every optional field set to None explicitly, even those with another default."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.name in _DERIVED_FIELDS or field.name == "extra":
            continue
        tp = hints[field.name]
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in (
            typing.get_args(tp)
        ):
            kwargs[field.name] = None
        else:
            kwargs[field.name] = _example(tp)
    out = w.unstructure(cls(**kwargs))
    assert not _contains_none(out), out
    assert b"null" not in w.dumps(cls(**kwargs))


def _example(tp: Any) -> Any:
    enum_cls = _enum_in(tp)
    if enum_cls is not None:
        return next(iter(enum_cls))
    if typing.get_origin(tp) is tuple:
        return ()
    if tp is str:
        return "x"
    if tp is int:
        return 1
    if tp is bool:
        return True
    assert attrs.has(tp), tp
    return tp()


def test_no_need_thumb_written_by_default() -> None:
    req = w.GetUploadUrlReq(
        filekey="k",
        media_type=w.UploadMediaType.IMAGE,
        to_user_id="u",
        rawsize=1,
        rawfilemd5="m",
        filesize=16,
        aeskey="a",
        base_info=w.BaseInfo(),
    )
    assert w.unstructure(req)["no_need_thumb"] is True
    assert w.unstructure(attrs.evolve(req, no_need_thumb=False))["no_need_thumb"] is False


@pytest.mark.parametrize(
    ("cls", "field", "enum_cls"),
    ENUM_FIELDS,
    ids=[f"{c.__name__}.{f}" for c, f, _ in ENUM_FIELDS],
)
@per_type
@given(data=st.data(), value=INT64ISH)
def test_enum_values_known_and_unknown(
    cls: type[Any], field: str, enum_cls: type[w.WireIntEnum], data: st.DataObject, value: int
) -> None:
    obj = attrs.evolve(data.draw(wire(cls)), **{field: value})
    out = w.unstructure(obj)
    assert out[field] == value
    assert type(out[field]) is int
    back = getattr(w.structure(json.loads(w.dumps(obj)), cls), field)
    assert back == value
    if value in {m.value for m in enum_cls}:
        assert type(back) is enum_cls
    else:
        assert type(back) is int


def test_unknown_item_type_survives() -> None:
    item = w.structure({"type": 99, "text_item": {"text": "x"}}, w.MessageItem)
    assert item.type == 99
    assert type(item.type) is int
    assert w.unstructure(item) == {"type": 99, "text_item": {"text": "x"}}
    known = w.structure({"type": 11}, w.MessageItem)
    assert known.type is w.ItemType.TOOL_CALL_START


# --- unknown keys --------------------------------------------------------------------

NOT_MESSAGE_ITEM = [cls for cls in WIRE_TYPES if cls is not w.MessageItem]


@pytest.mark.parametrize("cls", NOT_MESSAGE_ITEM, ids=lambda c: c.__name__)
@per_type
@given(
    data=st.data(),
    extra=st.dictionaries(st.text(max_size=8).map("zz_".__add__), JSON_VALUES, max_size=3),
)
def test_unknown_top_level_keys_ignored(
    cls: type[Any], data: st.DataObject, extra: dict[str, Any]
) -> None:
    obj = data.draw(wire(cls))
    out = w.unstructure(obj)
    assert w.structure({**out, **extra}, cls) == obj


@pytest.mark.parametrize("cls", NOT_MESSAGE_ITEM, ids=lambda c: c.__name__)
@per_type
@given(data=st.data())
def test_strict_rejects_unknown_keys(cls: type[Any], data: st.DataObject) -> None:
    out = w.unstructure(data.draw(wire(cls)))
    with pytest.raises((cattrs.BaseValidationError, cattrs.ForbiddenExtraKeysError)):
        STRICT.structure({**out, "zz_unknown": 1}, cls)


def test_nested_unknown_keys_ignored() -> None:
    raw = {
        "message_id": 1,
        "future_field": {"a": 1},
        "item_list": [{"type": 2, "image_item": {"media": {"full_url": "u", "new": 1}, "x": 2}}],
    }
    msg = w.structure(raw, w.WeixinMessage)
    assert msg.item_list is not None
    image = msg.item_list[0].image_item
    assert image == w.ImageItem(media=w.CDNMedia(full_url="u"))
    with pytest.raises(cattrs.BaseValidationError):
        STRICT.structure(raw, w.WeixinMessage)


@given(item=wire(w.MessageItem), extra=st.dictionaries(EXTRA_KEYS, JSON_NO_NULL, min_size=1))
def test_message_item_keeps_unknown_payload_keys(
    item: w.MessageItem, extra: dict[str, Any]
) -> None:
    out = {**w.unstructure(item), **extra}
    parsed = w.structure(out, w.MessageItem)
    assert parsed.extra == {**item.extra, **extra}
    # ... and writes them back unchanged.
    assert w.unstructure(parsed) == out
    # The strict converter keeps them too (a client may echo a future payload).
    assert STRICT.structure(out, w.MessageItem) == parsed


def test_message_item_extra_concrete() -> None:
    raw = {"type": 13, "foo_item": {"bar": [1, "two"]}, "text_item": {"text": "hi"}}
    item = w.structure(raw, w.MessageItem)
    assert item.extra == {"foo_item": {"bar": [1, "two"]}}
    assert item.text_item == w.TextItem(text="hi")
    assert w.unstructure(item) == raw
    assert json.loads(w.dumps(item)) == raw


# --- scalars: FileItem.len, leniency and strictness ---------------------------------


@given(length=st.text(max_size=20))
def test_file_item_len_stays_a_string(length: str) -> None:
    item = w.structure({"len": length}, w.FileItem)
    assert item.len == length
    assert type(item.len) is str
    assert w.unstructure(item) == {"len": length}


def test_file_item_len_number_becomes_string() -> None:
    assert w.structure({"len": 1024}, w.FileItem).len == "1024"
    assert w.structure({"len": "007"}, w.FileItem).len == "007"
    with pytest.raises(cattrs.BaseValidationError):
        STRICT.structure({"len": 1024}, w.FileItem)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (123, "123"),
        (-7, "-7"),
        (False, "false"),
        (True, "true"),
        (1.5, "1.5"),
        (2.0, "2"),
        (0, "0"),
        ("already", "already"),
    ],
)
def test_lenient_stringifies_scalars(value: object, expected: str) -> None:
    assert w.structure({"text": value}, w.TextItem).text == expected
    msg = w.structure({"from_user_id": value, "client_id": value}, w.WeixinMessage)
    assert msg.from_user_id == expected
    assert msg.client_id == expected


@pytest.mark.parametrize("value", [123, False, True, 1.5])
def test_strict_rejects_non_string_scalars(value: object) -> None:
    with pytest.raises(cattrs.BaseValidationError):
        STRICT.structure({"text": value}, w.TextItem)


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], ["x"]])
def test_lenient_rejects_containers_for_strings(value: object) -> None:
    with pytest.raises(cattrs.BaseValidationError):
        w.structure({"text": value}, w.TextItem)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("123", 123), ("-5", -5), (" 42 ", 42), (3.0, 3), (9007199254740993, 9007199254740993)],
)
def test_lenient_accepts_decimal_strings_for_ints(value: object, expected: int) -> None:
    msg = w.structure({"message_id": value, "seq": value}, w.WeixinMessage)
    assert msg.message_id == expected
    assert msg.seq == expected
    assert type(msg.message_id) is int


@given(number=INT64ISH)
def test_lenient_decimal_string_property(number: int) -> None:
    assert w.structure({"message_id": str(number)}, w.WeixinMessage).message_id == number


@pytest.mark.parametrize("value", ["abc", "1.5", "", "--5", "²", 1.5, True, {"x": 1}, [1]])
def test_lenient_rejects_non_integers(value: object) -> None:
    with pytest.raises(cattrs.BaseValidationError):
        w.structure({"message_id": value}, w.WeixinMessage)


@pytest.mark.parametrize("value", ["123", 3.0, True, "-5"])
def test_strict_rejects_non_int_values(value: object) -> None:
    with pytest.raises(cattrs.BaseValidationError):
        STRICT.structure({"message_id": value}, w.WeixinMessage)
    with pytest.raises(cattrs.BaseValidationError):
        STRICT.structure({"type": value}, w.MessageItem)


def test_bool_fields() -> None:
    assert w.structure({"is_completed": 1}, w.MessageItem).is_completed is True
    assert w.structure({"is_completed": 0}, w.MessageItem).is_completed is False
    with pytest.raises(cattrs.BaseValidationError):
        STRICT.structure({"is_completed": 1}, w.MessageItem)
    with pytest.raises(cattrs.BaseValidationError):
        w.structure({"is_completed": "yes"}, w.MessageItem)


@pytest.mark.parametrize(
    ("cls", "field"),
    [
        (w.MessageItem, "type"),
        (w.WeixinMessage, "message_type"),
        (w.WeixinMessage, "message_state"),
        (w.VoiceItem, "encode_type"),
    ],
)
@pytest.mark.parametrize("value", ["1", " 2 ", "42", ""])
def test_enum_codes_sent_as_strings_are_not_read_as_numbers(
    cls: type[Any], field: str, value: str
) -> None:
    # The reference compares codes with ===: "1" is no known type there. Reading it as
    # 1 would act on something the reference ignores; the message is malformed instead.
    with pytest.raises(cattrs.BaseValidationError):
        w.structure({field: value}, cls)
    with pytest.raises(cattrs.BaseValidationError):
        STRICT.structure({field: value}, cls)
    assert getattr(w.structure({field: 1.0}, cls), field) == 1  # JSON 1.0 is the number 1


def test_a_string_item_type_sets_the_message_aside_with_its_reason() -> None:
    good = {"message_id": 1, "item_list": [{"type": 1, "text_item": {"text": "hi"}}]}
    bad = {"message_id": 2, "item_list": [{"type": "1", "text_item": {"text": "hi"}}]}
    resp = w.parse_updates({"msgs": [good, bad]})
    assert [m.message_id for m in resp.msgs] == [1]
    [(raw, reason)] = resp.malformed
    assert raw == bad
    assert "item_list.type" in reason


def test_non_object_and_non_array_rejected() -> None:
    with pytest.raises(cattrs.BaseValidationError):
        w.structure({"item_list": {"type": 1}}, w.WeixinMessage)
    with pytest.raises(cattrs.BaseValidationError):
        w.structure({"text_item": "hi"}, w.MessageItem)


# --- parse_updates / structure_or_raise ------------------------------------------------


def test_parse_updates_keeps_good_sets_aside_malformed() -> None:
    good1 = {"message_id": 1, "from_user_id": "a", "item_list": [{"type": 1}]}
    bad1 = {"message_id": "not a number", "from_user_id": "b"}
    bad2 = "just a string"
    bad3 = {"item_list": {"type": 1}}
    good2 = {"message_id": 2, "future": True, "item_list": [{"type": 42, "x_item": {}}]}
    body = {
        "ret": 0,
        "msgs": [good1, bad1, bad2, good2, bad3],
        "get_updates_buf": "CUR",
        "longpolling_timeout_ms": 30000,
    }
    resp = w.parse_updates(body)
    assert [m.message_id for m in resp.msgs] == [1, 2]
    assert resp.raw_msgs == (good1, good2)
    raws = [raw for raw, _ in resp.malformed]
    assert raws == [bad1, {"value": bad2}, bad3]
    reasons = [reason for _, reason in resp.malformed]
    assert "message_id" in reasons[0]
    assert all("getupdates" in r for r in reasons)
    # The raw JSON of a malformed message is kept verbatim and serialisable.
    assert json.loads(json.dumps(raws[0])) == bad1
    assert resp.get_updates_buf == "CUR"
    assert resp.next_cursor == "CUR"
    assert resp.longpolling_timeout_ms == 30000
    assert resp.msgs[1].item_list is not None
    assert resp.msgs[1].item_list[0].type == 42


def test_parse_updates_never_takes_the_legacy_sync_buf_as_the_cursor() -> None:
    # TS-ref ignores sync_buf; resuming from an older value could replay or skip.
    resp = w.parse_updates({"sync_buf": "OLD"})
    assert resp.msgs == ()
    assert resp.malformed == ()
    assert resp.sync_buf == "OLD"  # still readable, just never the cursor
    assert resp.next_cursor is None
    assert w.parse_updates({"get_updates_buf": "", "sync_buf": "OLD"}).next_cursor is None
    assert w.parse_updates({"get_updates_buf": "NEW", "sync_buf": "OLD"}).next_cursor == "NEW"
    assert w.parse_updates({"get_updates_buf": ""}).next_cursor is None


@pytest.mark.parametrize(
    "body",
    [
        {"msgs": {"a": 1}},
        {"msgs": "x"},
        {"msgs": 3},
        {"ret": {"a": 1}},
        {"get_updates_buf": ["x"]},
        {"longpolling_timeout_ms": "soon"},
    ],
)
def test_parse_updates_bad_envelope_is_protocol_error(body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        w.parse_updates(body)
    assert info.value.endpoint == "ilink/bot/getupdates"


def test_structure_or_raise_names_the_field() -> None:
    with pytest.raises(ProtocolError) as info:
        w.structure_or_raise(
            {"item_list": [{"type": 1, "text_item": {"text": {"x": 1}}}]},
            w.WeixinMessage,
            endpoint="ep",
        )
    assert info.value.endpoint == "ep"
    assert info.value.field is not None
    assert "text" in info.value.field
    assert str(info.value).startswith("ep:")
    assert w.structure_or_raise({"seq": 1}, w.WeixinMessage, endpoint="ep").seq == 1


# --- loads_object ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"ret":0,"msgs":[{"message_id":',
        b"[1, 2]",
        b"1",
        b'"text"',
        b"null",
        b"true",
        b"\xff\xfe\x00",
        b"{}{}",
        b"[" * 100_000,
        b"",
        b"   \n\t",
    ],
)
def test_loads_object_raises_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        w.loads_object(body, endpoint="ilink/bot/getupdates")
    assert info.value.endpoint == "ilink/bot/getupdates"
    assert not isinstance(info.value, json.JSONDecodeError | KeyError | TypeError)
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, ProtocolError)


def test_loads_object_allow_empty() -> None:
    assert w.loads_object(b"", endpoint="e", allow_empty=True) == {}
    assert w.loads_object(b"  \r\n", endpoint="e", allow_empty=True) == {}
    assert w.loads_object(b'{"a":1}', endpoint="e", allow_empty=True) == {"a": 1}
    with pytest.raises(ProtocolError):
        w.loads_object(b"[]", endpoint="e", allow_empty=True)


def test_loads_object_non_object_names_root() -> None:
    with pytest.raises(ProtocolError) as info:
        w.loads_object(b"[]", endpoint="e")
    assert info.value.field == "$"


@given(body=st.binary(max_size=200))
def test_loads_object_arbitrary_bytes(body: bytes) -> None:
    try:
        result = w.loads_object(body, endpoint="e")
    except ProtocolError:
        return
    assert isinstance(result, dict)


_ENVELOPE_KEYS = [a.name for a in attrs.fields(w.GetUpdatesResp)]
_MESSAGE_KEYS = [a.name for a in attrs.fields(w.WeixinMessage)]
_ITEM_KEYS = [a.name for a in attrs.fields(w.MessageItem)]
_PAYLOAD_KEYS = sorted(
    {
        a.name
        for cls in (w.TextItem, w.ImageItem, w.VoiceItem, w.FileItem, w.VideoItem)
        for a in attrs.fields(cls)
    }
    | {a.name for a in attrs.fields(w.CDNMedia)}
)


def _shaped(keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), values, max_size=6)


# Objects that look like getupdates bodies, so the fuzzing reaches the message parser.
_PAYLOADS = _shaped(_PAYLOAD_KEYS, JSON_VALUES | _shaped(_PAYLOAD_KEYS, JSON_VALUES))
_ITEMS = _shaped(_ITEM_KEYS, JSON_VALUES | _PAYLOADS)
_MESSAGES = _shaped(_MESSAGE_KEYS, JSON_VALUES | st.lists(_ITEMS | JSON_VALUES, max_size=3))
GETUPDATES_LIKE = _shaped(
    _ENVELOPE_KEYS, JSON_VALUES | st.lists(_MESSAGES | JSON_VALUES, max_size=4)
)


@given(value=JSON_VALUES | GETUPDATES_LIKE)
def test_arbitrary_json_getupdates_body_only_protocol_error(value: Any) -> None:
    body = json.dumps(value, ensure_ascii=False).encode()
    try:
        obj = w.loads_object(body, endpoint="ilink/bot/getupdates")
        resp = w.parse_updates(obj)
    except ProtocolError:
        return
    assert isinstance(resp, w.GetUpdatesResp)
    msgs = obj.get("msgs") or []
    assert len(resp.msgs) + len(resp.malformed) == len(msgs)
    assert len(resp.raw_msgs) == len(resp.msgs)
    # Whatever parsed can be written back without null.
    assert not _contains_none(w.unstructure(resp))


# --- dumps ----------------------------------------------------------------------------


def test_dumps_is_compact_raw_utf8() -> None:
    msg = w.WeixinMessage(
        seq=1,
        to_user_id="用户@im.wechat",
        item_list=(w.MessageItem(type=w.ItemType.TEXT, text_item=w.TextItem(text="你好 😀")),),
    )
    data = w.dumps(msg)
    assert isinstance(data, bytes)
    expected = (
        '{"seq":1,"to_user_id":"用户@im.wechat",'
        '"item_list":[{"type":1,"text_item":{"text":"你好 😀"}}]}'
    )
    assert data == expected.encode()
    assert b"\\u" not in data
    assert b", " not in data
    assert b": " not in data


@given(text=st.text(max_size=40))
def test_dumps_never_escapes_non_ascii(text: str) -> None:
    data = w.dumps(w.TextItem(text=text))
    assert data == json.dumps({"text": text}, ensure_ascii=False, separators=(",", ":")).encode()
    assert json.loads(data) == {"text": text}


# --- dumps: lone surrogates ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("a\ud800b", b'"a\\ud800b"'),
        ("\udfff", b'"\\udfff"'),
        ("x\ud83d", b'"x\\ud83d"'),
        # Two surrogates in a Python string are two escapes; JSON readers join them.
        ("\ud83d\ude00", b'"\\ud83d\\ude00"'),
    ],
)
def test_dumps_escapes_lone_surrogates_like_json_stringify(text: str, wire: bytes) -> None:
    body = w.dumps(w.TextItem(text=text))
    assert body == b'{"text":' + wire + b"}"
    assert json.loads(body) == {"text": _joined(text)}


def test_dumps_keeps_valid_text_raw_utf8() -> None:
    assert w.dumps(w.TextItem(text="中\U0001f600\\u")) == '{"text":"中\U0001f600\\\\u"}'.encode()


@given(st.text())
def test_dumps_never_fails_and_round_trips_text(text: str) -> None:
    body = w.dumps(w.TextItem(text=text))
    assert body.decode("utf-8")
    assert json.loads(body)["text"] == _joined(text)


def _joined(text: str) -> str:
    """What a JSON reader makes of the escapes: adjacent high+low surrogates join."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
