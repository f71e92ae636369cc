"""The sans-IO JSON-RPC layer: framing in any chunking, garbage never raises."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from weixin_trio._acp.jsonrpc import (
    ErrorResponse,
    Garbage,
    LineDecoder,
    Message,
    Notification,
    Request,
    Response,
    encode,
    parse_line,
)

MESSAGES: list[Message] = [
    Request(1, "initialize", {"protocolVersion": 1}),
    Request("a", "session/prompt", {"prompt": [{"type": "text", "text": "你好\n\nworld"}]}),
    Notification("session/cancel", {"sessionId": "s"}),
    Notification("ping"),
    Response(1, {"stopReason": "end_turn"}),
    Response(2, None),
    ErrorResponse(3, -32601, "no method"),
    ErrorResponse(None, -32700, "parse error", {"at": 1}),
]


def test_encode_then_parse_round_trips() -> None:
    for message in MESSAGES:
        line = encode(message)
        assert line.endswith(b"\n")
        assert line.count(b"\n") == 1
        assert parse_line(line.strip()) == message


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


@given(
    picks=st.lists(st.sampled_from(range(len(MESSAGES) + 3)), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
@settings(max_examples=300, deadline=None)
def test_any_chunking_parses_the_same(picks: list[int], cuts: list[int]) -> None:
    extras = [b"not json\n", b"[1,2]\n", b"x" * 300 + b"\n"]
    stream = b"".join(
        encode(MESSAGES[i]) if i < len(MESSAGES) else extras[i - len(MESSAGES)] for i in picks
    )
    whole = LineDecoder(max_line=200)
    expected = whole.feed(stream) + whole.close()
    chunked = LineDecoder(max_line=200)
    got = []
    for piece in _split(stream, cuts):
        got += chunked.feed(piece)
    got += chunked.close()
    assert got == expected
    assert [m for m in got if not isinstance(m, Garbage)] == [
        MESSAGES[i] for i in picks if i < len(MESSAGES) and len(encode(MESSAGES[i])) <= 201
    ]


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_garbage_never_raises(data: bytes) -> None:
    decoder = LineDecoder(max_line=100)
    for item in decoder.feed(data) + decoder.close():
        assert isinstance(item, Garbage | Request | Notification | Response | ErrorResponse)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
@settings(max_examples=300, deadline=None)
def test_any_json_value_parses_without_raising(value: object) -> None:
    parse_line(json.dumps(value).encode())
    parse_line(json.dumps({"jsonrpc": "2.0", "id": value, "method": value}).encode())
    parse_line(json.dumps({"jsonrpc": "2.0", "id": 1, "error": value}).encode())


def test_an_overlong_line_is_skipped_and_the_next_one_parses() -> None:
    decoder = LineDecoder(max_line=50)
    got = (
        decoder.feed(b"y" * 40)
        + decoder.feed(b"y" * 40)
        + decoder.feed(b"y\n" + encode(MESSAGES[3]))
    )
    assert got == [Garbage(b"", "line too long"), MESSAGES[3]]


def test_typed_garbage_reasons() -> None:
    assert parse_line(b"{").reason == "not JSON"  # type: ignore[union-attr]
    assert parse_line(b'{"jsonrpc":"1.0","id":1,"result":1}').reason == "not a JSON-RPC 2.0 object"  # type: ignore[union-attr]
    assert isinstance(parse_line(b'{"jsonrpc":"2.0","id":true,"method":"x"}'), Garbage)
    assert isinstance(parse_line(b'{"jsonrpc":"2.0","id":1}'), Garbage)
