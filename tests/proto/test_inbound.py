"""Tests of ``weixin_trio._proto.inbound``: body, quote and media extraction."""

from __future__ import annotations

import types
import typing
from typing import Any

import attrs
import pytest
from hypothesis import given, strategies as st

from tests._vectors import load_vectors, vector_id
from weixin_trio._proto.inbound import (
    MediaRef,
    Quote,
    extract_body,
    extract_media,
    extract_quote,
    extract_voice_text,
    is_downloadable,
    is_media_item,
    primary_media,
)
from weixin_trio._wire import (
    CDNMedia,
    FileItem,
    ImageItem,
    ItemType,
    MessageItem,
    RefMessage,
    TextItem,
    ToolCallResultItem,
    ToolCallStartItem,
    VideoItem,
    VoiceEncodeType,
    VoiceItem,
    WeixinMessage,
    structure,
)
from weixin_trio.media import MediaKind

VECTORS = load_vectors("inbound_body")
MSG_VECTORS = [v for v in VECTORS if "msg" in v["input"]]
IS_MEDIA_VECTORS = [v for v in VECTORS if "is_media_item" in v["input"]]
OPTS_VECTORS = [v for v in MSG_VECTORS if "media_opts" in v["input"]]

# Where we deliberately differ from the reference (see the _inbound module docstring):
OURS: dict[str, str] = {
    # reference_quirk: the reference lets an empty first TEXT item decide the body
    # (text != null), hiding the real text after it. An empty item does not shadow.
    "in-text-empty-string": "second",
}


def _msg(data: dict[str, Any]) -> WeixinMessage:
    return structure(data, WeixinMessage)


@pytest.mark.parametrize("vector", MSG_VECTORS, ids=vector_id)
def test_body_vector(vector: dict[str, Any]) -> None:
    # Only Body is ours to reproduce: the other ctx fields (From, To, AccountId,
    # MessageSid, Provider, MediaPath, ...) are the reference host's context object.
    expected = vector["expected"]
    assert expected["ctx"]["Body"] == expected["body"]
    msg = _msg(vector["input"]["msg"])
    assert extract_body(msg) == OURS.get(vector["id"], expected["body"])


def test_deliberate_differences_are_real() -> None:
    by_id = {v["id"]: v for v in VECTORS}
    for key, ours in OURS.items():
        assert by_id[key]["expected"]["body"] != ours


@pytest.mark.parametrize("vector", IS_MEDIA_VECTORS, ids=vector_id)
def test_is_media_item_vector(vector: dict[str, Any]) -> None:
    item = structure(vector["input"]["is_media_item"], MessageItem)
    assert is_media_item(item) is vector["expected"]["is_media"]


# The media_opts vectors feed already-downloaded paths into the reference's context
# builder: the MIME defaults they show (application/octet-stream, audio/wav) belong to
# the host and are not applicable. What carries over is the priority among kinds, so
# we rebuild a message holding one downloadable item of each kind present in media_opts
# (in reverse priority order, so item order cannot give the answer) and check that
# primary_media picks the kind whose path the reference put in MediaPath.
_OPT_KINDS = {
    "decryptedPicPath": (MediaKind.IMAGE, {"type": 2, "image_item": {}}),
    "decryptedVideoPath": (MediaKind.VIDEO, {"type": 5, "video_item": {}}),
    "decryptedFilePath": (MediaKind.FILE, {"type": 4, "file_item": {}}),
    "decryptedVoicePath": (MediaKind.VOICE, {"type": 3, "voice_item": {}}),
}


@pytest.mark.parametrize("vector", OPTS_VECTORS, ids=vector_id)
def test_media_priority_vector(vector: dict[str, Any]) -> None:
    opts = vector["input"]["media_opts"]
    items: list[dict[str, Any]] = []
    for key, (_, item) in reversed(_OPT_KINDS.items()):
        if key in opts:
            payload_key = next(k for k in item if k != "type")
            media = {"encrypt_query_param": f"eqp-{key}", "aes_key": "MDAx"}
            items.append({"type": item["type"], payload_key: {"media": media}})
    msg = _msg({"item_list": items})
    chosen = primary_media(extract_media(msg))
    assert chosen is not None
    expected_key = next(
        k for k in _OPT_KINDS if opts.get(k) == vector["expected"]["ctx"]["MediaPath"]
    )
    assert chosen.kind is _OPT_KINDS[expected_key][0]


# --- body ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([{"type": 1, "text_item": {"text": ""}}], ""),
        ([{"type": 1, "text_item": {"text": ""}, "ref_msg": {"title": "T"}}], "[引用: T]\n"),
        ([{"type": 1, "text_item": {"text": ""}}, {"type": 3, "voice_item": {"text": "v"}}], "v"),
        ([{"type": 1, "text_item": {}}, {"type": 1, "text_item": {"text": "b"}}], "b"),
        ([{"type": 1}, {"type": 5, "text_item": {"text": "wrong type"}}], ""),
        ([{"type": 3, "voice_item": {"text": ""}}, {"type": 1, "text_item": {"text": "t"}}], "t"),
        (
            [
                {
                    "type": 1,
                    "text_item": {"text": "re"},
                    "ref_msg": {"title": "t", "message_item": {"type": 2, "image_item": {}}},
                }
            ],
            "re",
        ),
        (
            [
                {
                    "type": 1,
                    "text_item": {"text": "re"},
                    "ref_msg": {"message_item": {"type": 1, "text_item": {"text": ""}}},
                }
            ],
            "re",
        ),
    ],
)
def test_extract_body(items: list[dict[str, Any]], expected: str) -> None:
    assert extract_body(_msg({"item_list": items})) == expected


def test_extract_body_without_items() -> None:
    assert extract_body(WeixinMessage()) == ""


def test_deep_quotes_are_cut_not_fatal() -> None:
    item = MessageItem(type=ItemType.TEXT, text_item=TextItem(text="0"))
    for level in range(1, 200):
        item = MessageItem(
            type=ItemType.TEXT,
            text_item=TextItem(text=str(level)),
            ref_msg=RefMessage(message_item=item),
        )
    body = extract_body(WeixinMessage(item_list=(item,)))
    assert body.endswith("]\n199")
    assert body.count("[引用: ") == 32
    assert extract_quote(WeixinMessage(item_list=(item,))) is not None


# --- media --------------------------------------------------------------------------------

IMAGE = {
    "type": 2,
    "image_item": {
        "aeskey": "00112233445566778899aabbccddeeff",
        "media": {
            "encrypt_query_param": "Zm9v",
            "aes_key": "ABEiM0RVZneImaq7zN3u/w==",
            "encrypt_type": 1,
        },
        "thumb_media": {"encrypt_query_param": "YmF6", "encrypt_type": 1},
        "mid_size": 48032,
        "thumb_size": 5120,
        "thumb_width": 120,
        "thumb_height": 90,
    },
}
VOICE = {
    "type": 3,
    "voice_item": {
        "media": {"encrypt_query_param": "cXdl", "aes_key": "MDAx"},
        "encode_type": 6,
        "sample_rate": 24000,
        "playtime": 3200,
        "text": "明天早上八点提醒我",
    },
}
FILE = {
    "type": 4,
    "file_item": {
        "media": {"full_url": "https://cdn.example/download?x=1", "aes_key": "MDAx"},
        "file_name": "report.pdf",
        "len": "183204",
    },
}
VIDEO = {
    "type": 5,
    "video_item": {
        "media": {"aes_key": "MDAx"},
        "video_size": 1000,
        "play_length": 12,
        "thumb_media": {"encrypt_query_param": "dGh1"},
        "thumb_size": 10,
        "thumb_width": 20,
        "thumb_height": 30,
    },
}


def test_extract_media_returns_every_item_in_order() -> None:
    msg = _msg({"item_list": [{"type": 1, "text_item": {"text": "hi"}}, IMAGE, VOICE, FILE, VIDEO]})
    image, voice, file, video = extract_media(msg)
    assert [r.item_index for r in (image, voice, file, video)] == [1, 2, 3, 4]
    assert image == MediaRef(
        kind=MediaKind.IMAGE,
        media=CDNMedia(
            encrypt_query_param="Zm9v", aes_key="ABEiM0RVZneImaq7zN3u/w==", encrypt_type=1
        ),
        item_index=1,
        downloadable=True,
        aes_key_hex="00112233445566778899aabbccddeeff",
        size=48032,
        thumb=CDNMedia(encrypt_query_param="YmF6", encrypt_type=1),
        thumb_size=5120,
        thumb_width=120,
        thumb_height=90,
        item=msg.item_list[1] if msg.item_list else None,
    )
    assert (voice.kind, voice.playtime_ms, voice.sample_rate) == (MediaKind.VOICE, 3200, 24000)
    assert voice.encode_type is VoiceEncodeType.SILK
    assert voice.transcript == "明天早上八点提醒我"
    assert (file.kind, file.file_name, file.size, file.downloadable) == (
        MediaKind.FILE,
        "report.pdf",
        183204,
        True,
    )
    assert (video.kind, video.size, video.thumb_size, video.downloadable) == (
        MediaKind.VIDEO,
        1000,
        10,
        False,
    )
    assert video.playtime_ms is None  # play_length's unit is unverified: not mapped
    assert "00112233" not in repr(image)


@pytest.mark.parametrize(
    "item",
    [
        {"type": 2, "image_item": {"thumb_media": {"encrypt_query_param": "x"}}},  # no media
        {"type": 2},  # no payload
        {"type": 2, "video_item": {"media": {"encrypt_query_param": "x"}}},  # wrong payload
        {"type": 42, "something_new_item": {"x": 1}},  # unknown type
        {"type": 11, "tool_call_start_item": {"tool_name": "bash"}},
        {"image_item": {"media": {"encrypt_query_param": "x"}}},  # no type
    ],
)
def test_items_without_usable_media_are_skipped(item: dict[str, Any]) -> None:
    assert extract_media(_msg({"item_list": [item]})) == ()


@pytest.mark.parametrize(
    ("raw", "size"), [("2048", 2048), (" 12 ", 12), ("abc", None), ("-1", None)]
)
def test_file_len_is_parsed_leniently(raw: str, size: int | None) -> None:
    item = {"type": 4, "file_item": {"media": {"encrypt_query_param": "x"}, "len": raw}}
    (ref,) = extract_media(_msg({"item_list": [item]}))
    assert ref.size == size


def test_is_downloadable() -> None:
    assert not is_downloadable(None)
    assert not is_downloadable(CDNMedia(aes_key="k"))
    assert not is_downloadable(CDNMedia(encrypt_query_param="", full_url="  "))
    assert is_downloadable(CDNMedia(encrypt_query_param="e"))
    assert is_downloadable(CDNMedia(full_url="https://x"))


def test_primary_media_priority() -> None:
    voice_no_text = {
        "type": 3,
        "voice_item": {"media": {"encrypt_query_param": "v", "aes_key": "MDAx"}},
    }
    msg = _msg({"item_list": [voice_no_text, FILE, VOICE, VIDEO, IMAGE]})
    refs = extract_media(msg)
    assert primary_media(refs) is refs[4]  # the image, although it comes last
    assert primary_media(refs[:4]) is refs[1]  # the video is not downloadable: the file
    assert primary_media((refs[0], refs[2])) is refs[0]  # voice without transcript
    assert primary_media((refs[2],)) is None  # voice with a transcript is text already
    assert primary_media((refs[3],)) is None  # not downloadable
    assert primary_media(()) is None


def test_primary_media_falls_back_to_the_quoted_media() -> None:
    quoting = {"type": 1, "text_item": {"text": "this"}, "ref_msg": {"message_item": IMAGE}}
    msg = _msg({"item_list": [quoting]})
    quote = extract_quote(msg)
    assert quote is not None
    assert quote.media is not None
    assert primary_media(extract_media(msg), quote) is quote.media
    assert quote.media.kind is MediaKind.IMAGE
    assert quote.media.item_index == 0
    own = extract_media(_msg({"item_list": [FILE]}))
    assert primary_media(own, quote) is own[0]


@pytest.mark.parametrize(
    ("item_type", "payload"), [(3, "voice_item"), (4, "file_item"), (5, "video_item")]
)
@pytest.mark.parametrize("key", [None, "", "  "])
def test_video_file_and_voice_without_a_key_are_not_downloadable(
    item_type: int, payload: str, key: str | None
) -> None:
    # The reference skips them: their bytes would come back still encrypted.
    media: dict[str, Any] = {"encrypt_query_param": "eqp", "full_url": "https://cdn/x?y=1"}
    if key is not None:
        media["aes_key"] = key
    item = {"type": item_type, payload: {"media": media}}
    msg = _msg({"item_list": [item]})
    (ref,) = extract_media(msg)
    assert not ref.downloadable
    assert primary_media((ref,)) is None
    quoting = {"type": 1, "text_item": {"text": "see"}, "ref_msg": {"message_item": item}}
    quoted = _msg({"item_list": [quoting]})
    assert primary_media(extract_media(quoted), extract_quote(quoted)) is None


def test_an_image_without_a_key_stays_downloadable() -> None:
    # Images without a key are stored in the clear: both references download them.
    item = {"type": 2, "image_item": {"media": {"encrypt_query_param": "eqp"}}}
    (ref,) = extract_media(_msg({"item_list": [item]}))
    assert ref.downloadable
    assert primary_media((ref,)) is ref


def test_a_quoted_voice_with_a_transcript_is_not_downloaded() -> None:
    quoting = {"type": 1, "text_item": {"text": "about this"}, "ref_msg": {"message_item": VOICE}}
    msg = _msg({"item_list": [quoting]})
    quote = extract_quote(msg)
    assert quote is not None
    assert quote.media is not None
    assert quote.media.downloadable  # it could be fetched, but its text is already there
    assert quote.text == "明天早上八点提醒我"
    assert primary_media(extract_media(msg), quote) is None
    silent = {"type": 3, "voice_item": {"media": {"encrypt_query_param": "q", "aes_key": "MDAx"}}}
    quoting["ref_msg"] = {"message_item": silent}
    msg = _msg({"item_list": [quoting]})
    quote = extract_quote(msg)
    assert quote is not None
    assert primary_media(extract_media(msg), quote) is quote.media


# --- quotes and voice ---------------------------------------------------------------------


def test_extract_quote() -> None:
    msg = _msg(
        {
            "item_list": [
                {"type": 1, "text_item": {"text": "no quote"}},
                {
                    "type": 1,
                    "text_item": {"text": "就按这个来"},
                    "ref_msg": {
                        "title": "",
                        "message_item": {
                            "type": 1,
                            "msg_id": "3001234560000",
                            "text_item": {"text": "原文"},
                        },
                    },
                },
            ]
        }
    )
    quote = extract_quote(msg)
    assert quote == Quote(
        title=None,
        text="原文",
        message_id="3001234560000",
        media=None,
        item=msg.item_list[1].ref_msg.message_item
        if msg.item_list and msg.item_list[1].ref_msg
        else None,
    )


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ({}, None),
        ({"title": ""}, None),
        ({"title": "T"}, Quote(title="T")),
        ({"message_item": {"type": 3, "voice_item": {"text": "said"}}}, "said"),
    ],
)
def test_extract_quote_edge_cases(ref: dict[str, Any], expected: Quote | str | None) -> None:
    msg = _msg({"item_list": [{"type": 1, "text_item": {"text": "x"}, "ref_msg": ref}]})
    quote = extract_quote(msg)
    if isinstance(expected, str):
        assert quote is not None
        assert quote.text == expected
        assert quote.media is None  # a voice item without media yields no MediaRef
    else:
        assert quote == expected


def test_extract_quote_ignores_non_text_items() -> None:
    item = {"type": 2, "image_item": {}, "ref_msg": {"title": "T"}}
    assert extract_quote(_msg({"item_list": [item]})) is None
    assert extract_quote(WeixinMessage()) is None


def test_extract_voice_text() -> None:
    assert extract_voice_text(_msg({"item_list": [IMAGE, VOICE]})) == "明天早上八点提醒我"
    assert (
        extract_voice_text(_msg({"item_list": [{"type": 3, "voice_item": {"text": ""}}]})) is None
    )
    assert (
        extract_voice_text(_msg({"item_list": [{"type": 1, "voice_item": {"text": "x"}}]})) is None
    )
    assert extract_voice_text(WeixinMessage()) is None


# --- never raise ----------------------------------------------------------------------------

_JSON = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
_ITEM_TYPES = st.one_of(st.sampled_from([0, 1, 2, 3, 4, 5, 11, 12, 99]), st.integers())
_PAYLOADS = {
    1: ("text_item", TextItem),
    2: ("image_item", ImageItem),
    3: ("voice_item", VoiceItem),
    4: ("file_item", FileItem),
    5: ("video_item", VideoItem),
    11: ("tool_call_start_item", ToolCallStartItem),
    12: ("tool_call_result_item", ToolCallResultItem),
}


def _union_args(tp: Any) -> list[Any]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def _value_for(tp: Any, depth: int, noise: bool, *, null: bool = True) -> st.SearchStrategy[Any]:
    """A well-typed JSON value for a wire field (with ``noise``: sometimes any JSON)."""
    args = _union_args(tp)
    nested = next((a for a in args if isinstance(a, type) and attrs.has(a)), None)
    good: st.SearchStrategy[Any]
    if nested is not None:
        good = _wire_dict(nested, depth + 1, noise) if depth < 4 else st.just({})
    elif typing.get_origin(args[0]) is tuple:
        element = _value_for(typing.get_args(args[0])[0], depth, noise, null=False)
        good = st.lists(element, max_size=4)
    elif any(isinstance(a, type) and issubclass(a, bool) for a in args):
        good = st.booleans()
    elif any(isinstance(a, type) and issubclass(a, int) for a in args):
        good = _ITEM_TYPES
    else:  # text: the lenient converter also takes numbers and booleans
        good = st.one_of(st.text(max_size=8), st.integers(), st.booleans())
    extra = [st.none()] if null else []
    return st.one_of(good, *extra, *([_JSON] if noise else []))


def _lazy_value(tp: Any, depth: int, noise: bool) -> st.SearchStrategy[Any]:
    return st.deferred(lambda: _value_for(tp, depth, noise))


def _wire_dict(cls: type, depth: int, noise: bool) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects for a wire class; items get a payload matching their type."""
    hints = typing.get_type_hints(cls)
    optional = {
        name: _lazy_value(hints[name], depth, noise)
        for name in attrs.fields_dict(cls)
        if name != "extra" and not (cls is MessageItem and name.endswith("_item"))
    }
    required = {k: optional.pop(k) for k in ("item_list", "media") if k in optional}
    objects = st.fixed_dictionaries(required, optional=optional)
    if cls is not MessageItem:
        return objects

    @st.composite
    def item(draw: st.DrawFn) -> dict[str, Any]:
        obj = draw(objects)
        item_type = draw(st.one_of(st.sampled_from(sorted(_PAYLOADS)), _ITEM_TYPES))
        obj["type"] = item_type
        if item_type == 1 and depth < 4 and draw(st.booleans()):
            obj["ref_msg"] = draw(_wire_dict(RefMessage, depth + 1, noise))
        key, payload_cls = _PAYLOADS.get(
            item_type, _PAYLOADS[draw(st.sampled_from(sorted(_PAYLOADS)))]
        )
        if draw(st.integers(0, 9)):
            obj[key] = draw(_wire_dict(payload_cls, depth + 1, noise))
        return obj

    return item()


@pytest.mark.parametrize("noise", [False, True])
@given(data=st.data())
def test_extraction_never_raises(noise: bool, data: st.DataObject) -> None:
    raw = data.draw(_wire_dict(WeixinMessage, 0, noise))
    try:
        msg = _msg(raw)
    except Exception:  # the converter rejected it: not our concern here
        return
    assert isinstance(extract_body(msg), str)
    refs = extract_media(msg)
    assert [r.item_index for r in refs] == sorted({r.item_index for r in refs})
    quote = extract_quote(msg)
    chosen = primary_media(refs, quote)
    assert chosen is None or chosen.downloadable
    voice = extract_voice_text(msg)
    assert voice is None or voice
    for item in msg.item_list or ():
        is_media_item(item)
