"""Tests of ``weixin_trio._proto.headers`` (URL joining, headers, ``bot_agent``)."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from hypothesis import given, strategies as st

from tests._vectors import load_vectors, vector_id
from weixin_trio._proto.headers import (
    BOT_AGENT_MAX_BYTES,
    client_version_header,
    client_version_number,
    common_headers,
    get_headers,
    join_url,
    post_headers,
    quote_component,
    sanitize_bot_agent,
    x_wechat_uin,
)

# --- reference vectors -------------------------------------------------------------------


def _package_version(vector: dict[str, Any]) -> str:
    inp = vector["input"]
    if "package_version" in inp:
        return str(inp["package_version"])
    # A package.json without "version": the reference encodes "0.0.0" (and reports
    # channel_version "unknown"; base_info is built by the client, not tested here).
    return str(inp["package_json"].get("version", "0.0.0"))


@pytest.mark.parametrize("vector", load_vectors("client_version"), ids=vector_id)
def test_client_version_vector(vector: dict[str, Any]) -> None:
    expected = vector["expected"]
    version = _package_version(vector)
    assert client_version_header(version) == expected["iLink-App-ClientVersion"]
    assert client_version_number(version) == int(expected["iLink-App-ClientVersion"])
    if "get_headers" in expected:
        # The whole header set of a GET. For clientver-noappid (reference_quirk) the
        # reference read an empty app id from its package.json; our client always
        # passes "bot", so here we only check that the given app id is sent as is.
        app_id = vector["input"]["package_json"].get("ilink_appid", "")
        common = common_headers(app_id=app_id, client_version=version, route_tag=None)
        assert get_headers(common) == expected["get_headers"]


@pytest.mark.parametrize("vector", load_vectors("x_wechat_uin"), ids=vector_id)
def test_x_wechat_uin_vector(vector: dict[str, Any]) -> None:
    inp, expected = vector["input"], vector["expected"]
    value = int.from_bytes(bytes.fromhex(inp["random_bytes_hex"]), "big")
    assert value == inp["uint32_be"]
    header = x_wechat_uin(value)
    assert header == expected["X-WECHAT-UIN"]
    assert base64.b64decode(header).decode("ascii") == expected["decoded"]


@pytest.mark.parametrize("vector", load_vectors("bot_agent"), ids=vector_id)
def test_bot_agent_vector(vector: dict[str, Any]) -> None:
    raw = vector["input"]["bot_agent"]  # null: not configured
    assert sanitize_bot_agent(raw) == vector["expected"]["sanitized"]


# --- client version ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.4.6", "132102"),
        ("2.4.3", "132099"),
        ("0.1.0", "256"),
        ("1.0.11", "65547"),
        ("", "0"),
        ("1", "65536"),
        (" 2.+4.6x", "132102"),  # parseInt skips leading space, takes a sign, stops early
        ("-1.0.0", str(0xFF << 16)),  # -1 & 0xFF == 255
        ("256.257.258", str(0x000102)),
        ("1e3.0x10.0", "65536"),
        ("9" * 400 + ".1.1", "257"),  # parseInt gives Infinity; ToInt32(Infinity) == 0
    ],
)
def test_client_version(version: str, expected: str) -> None:
    assert client_version_header(version) == expected


# --- X-WECHAT-UIN --------------------------------------------------------------------------


def test_x_wechat_uin_worked_values() -> None:
    assert x_wechat_uin(3000000000) == "MzAwMDAwMDAwMA=="
    assert x_wechat_uin(12345) == "MTIzNDU="
    assert x_wechat_uin(0) == "MA=="


@pytest.mark.parametrize("value", [-1, 2**32])
def test_x_wechat_uin_rejects_non_uint32(value: int) -> None:
    with pytest.raises(ValueError, match="uint32"):
        x_wechat_uin(value)


@given(st.data())
def test_fresh_x_wechat_uin_is_a_decimal_uint32(data: st.DataObject) -> None:
    value = data.draw(st.one_of(st.none(), st.integers(min_value=0, max_value=2**32 - 1)))
    decoded = base64.b64decode(x_wechat_uin(value), validate=True).decode("ascii")
    assert decoded.isdigit()
    assert 0 <= int(decoded) < 2**32
    assert decoded == str(int(decoded))  # no leading zeros, no sign
    if value is not None:
        assert int(decoded) == value


# --- bot_agent ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "OpenClaw"),
        ("   ", "OpenClaw"),
        ("MyBot/1.2.0 (region=cn;env=prod)", "MyBot/1.2.0 (region=cn;env=prod)"),
        ("My Bot ValidApp/1.0", "ValidApp/1.0"),
        ("中文/1.0", "OpenClaw"),
        ("MyBot/1.0 (中文)", "MyBot/1.0"),
        ("A/1 (multi word comment) B/2", "A/1 (multi word comment) B/2"),
        ("(orphan) A/1", "A/1"),
        ("A/1 ()", "A/1"),
        ("A/1\u3000B/2\u00a0C/3", "A/1 B/2 C/3"),  # JavaScript's \s includes these
        ("A/1\x1cB/2", "OpenClaw"),  # ... but not the separators Python's split() uses
        ("a" * 32 + "/" + "v" * 32, "a" * 32 + "/" + "v" * 32),
        ("a" * 33 + "/1", "OpenClaw"),
        ("A/1.0+build_2-x", "A/1.0+build_2-x"),
        ("A+B/1", "OpenClaw"),
    ],
)
def test_sanitize_bot_agent(raw: str | None, expected: str) -> None:
    assert sanitize_bot_agent(raw) == expected


def test_sanitize_bot_agent_custom_default() -> None:
    assert sanitize_bot_agent("", default="weixin-trio/0.1") == "weixin-trio/0.1"
    assert sanitize_bot_agent("ok/1", default="weixin-trio/0.1") == "ok/1"


def test_sanitize_bot_agent_drops_trailing_products_whole() -> None:
    product = "P" * 32 + "/" + "1" * 32  # 65 bytes
    raw = " ".join([product] * 5)  # 329 bytes
    result = sanitize_bot_agent(raw)
    assert result == " ".join([product] * 3)  # 197 bytes; a 4th would make 263
    long_comment = f"A/1 ({'c' * 64})"
    result = sanitize_bot_agent(" ".join([long_comment] * 5))
    assert result == " ".join([long_comment] * 3)


_AGENT_PIECES = st.one_of(
    st.from_regex(r"[A-Za-z0-9_.\-]{1,40}/[A-Za-z0-9_.+\-]{1,40}", fullmatch=True),
    st.from_regex(r"\([\x20-\x7e]{0,70}\)", fullmatch=True),
    st.text(max_size=12),
)


@given(st.one_of(st.text(), st.lists(_AGENT_PIECES, max_size=12).map(" ".join)))
def test_sanitized_bot_agent_is_short_printable_ascii(raw: str) -> None:
    result = sanitize_bot_agent(raw)
    assert len(result.encode("utf-8")) <= BOT_AGENT_MAX_BYTES
    assert result.isascii()
    assert result.isprintable()
    assert result == result.strip()
    assert sanitize_bot_agent(result) == result  # idempotent


# --- URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "endpoint", "expected"),
    [
        ("https://host", "ilink/bot/getupdates", "https://host/ilink/bot/getupdates"),
        ("https://host/", "ilink/bot/getupdates", "https://host/ilink/bot/getupdates"),
        ("https://host/p", "ilink/bot/getupdates", "https://host/p/ilink/bot/getupdates"),
        ("https://host/p/", "/ilink/bot/x", "https://host/p/ilink/bot/x"),
    ],
)
def test_join_url(base: str, endpoint: str, expected: str) -> None:
    assert join_url(base, endpoint) == expected


@pytest.mark.parametrize(
    ("base", "params", "expected"),
    [
        # The endpoint goes into the path, never into the base's query (PROTOCOL §1.2).
        ("https://proxy/p?x=1", None, "https://proxy/p/ilink/bot/getupdates?x=1"),
        ("https://proxy/p/?x=1", None, "https://proxy/p/ilink/bot/getupdates?x=1"),
        ("https://proxy?x=1", None, "https://proxy/ilink/bot/getupdates?x=1"),
        ("https://proxy/p?x=1#frag", None, "https://proxy/p/ilink/bot/getupdates?x=1"),
        ("https://proxy/p?", None, "https://proxy/p/ilink/bot/getupdates"),
        # Parameters follow the base's own query, encoded like encodeURIComponent.
        ("https://h/p?x=1", {"a": "b/c="}, "https://h/p/ilink/bot/getupdates?x=1&a=b%2Fc%3D"),
        ("https://h", {"a": "1", "b": "2"}, "https://h/ilink/bot/getupdates?a=1&b=2"),
    ],
)
def test_join_url_with_a_query(base: str, params: dict[str, str] | None, expected: str) -> None:
    assert join_url(base, "ilink/bot/getupdates", params) == expected


def test_join_url_keeps_an_endpoint_query_before_the_params() -> None:
    url = join_url("https://h/p?x=1", "/ilink/bot/s?y=2", {"z": "3"})
    assert url == "https://h/p/ilink/bot/s?x=1&y=2&z=3"


def test_quote_component_is_encode_uri_component() -> None:
    assert quote_component("a+b/c=") == "a%2Bb%2Fc%3D"
    assert quote_component("a b&c?d#e") == "a%20b%26c%3Fd%23e"
    assert quote_component("-_.!~*'()") == "-_.!~*'()"
    assert quote_component("中") == "%E4%B8%AD"


# --- header sets ------------------------------------------------------------------------


def test_common_headers() -> None:
    assert common_headers(app_id="bot", client_version="2.4.6", route_tag=None) == {
        "iLink-App-Id": "bot",
        "iLink-App-ClientVersion": "132102",
    }
    assert "SKRouteTag" not in common_headers(app_id="bot", client_version="1", route_tag="")
    with_tag = common_headers(app_id="bot", client_version="2.4.6", route_tag="42")
    assert with_tag["SKRouteTag"] == "42"


@pytest.mark.parametrize(
    ("tag", "sent"),
    [(" 42 ", "42"), ("\t7\u3000", "7"), ("a b", "a b"), ("  ", None), ("\u00a0", None)],
)
def test_route_tag_is_trimmed_and_left_out_when_blank(tag: str, sent: str | None) -> None:
    # h11 refuses a header value with surrounding whitespace, so every request failed.
    headers = common_headers(app_id="bot", client_version="2.4.6", route_tag=tag)
    assert headers.get("SKRouteTag") == sent


def test_post_headers_with_token() -> None:
    common = common_headers(app_id="bot", client_version="2.4.6", route_tag="7")
    headers = post_headers(token="  tok-1 \n", common=common, uin="MTIzNDU=")
    assert list(headers.items()) == [
        ("Content-Type", "application/json"),
        ("AuthorizationType", "ilink_bot_token"),
        ("X-WECHAT-UIN", "MTIzNDU="),
        ("iLink-App-Id", "bot"),
        ("iLink-App-ClientVersion", "132102"),
        ("SKRouteTag", "7"),
        ("Authorization", "Bearer tok-1"),
    ]


@pytest.mark.parametrize("token", [None, "", "  \t"])
def test_post_headers_without_token(token: str | None) -> None:
    common = common_headers(app_id="bot", client_version="2.4.6", route_tag=None)
    headers = post_headers(token=token, common=common)
    assert "Authorization" not in headers
    assert headers["AuthorizationType"] == "ilink_bot_token"


def test_post_headers_draw_a_fresh_uin_each_time() -> None:
    common = common_headers(app_id="bot", client_version="2.4.6", route_tag=None)
    uins = {post_headers(token="t", common=common)["X-WECHAT-UIN"] for _ in range(20)}
    assert len(uins) > 1


def test_get_headers_are_the_common_headers_only() -> None:
    common = common_headers(app_id="bot", client_version="2.4.6", route_tag="r")
    headers = get_headers(common)
    assert headers == common
    assert headers is not common


def test_header_values_reject_control_characters() -> None:
    common = common_headers(app_id="bot", client_version="2.4.6", route_tag=None)
    with pytest.raises(ValueError, match="Authorization"):
        post_headers(token="tok\r\nX-Evil: 1", common=common)
    with pytest.raises(ValueError, match="SKRouteTag"):
        common_headers(app_id="bot", client_version="2.4.6", route_tag="a\nb")


# --- X-WECHAT-UIN draws ------------------------------------------------------------------


def _uin_value(header: str) -> int:
    return int(base64.b64decode(header).decode("ascii"))


def test_x_wechat_uin_draws_without_a_system_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # The header is not a secret: no urandom read per request (secrets did one each).
    import random

    def no_urandom(n: int) -> bytes:
        raise AssertionError(f"os.urandom({n}) per X-WECHAT-UIN")

    monkeypatch.setattr(random, "_urandom", no_urandom)
    values = {_uin_value(x_wechat_uin()) for _ in range(50)}
    assert len(values) > 45  # fresh per request
    assert all(0 <= v <= 0xFFFFFFFF for v in values)
    headers = post_headers(token="t", common={})
    assert 0 <= _uin_value(headers["X-WECHAT-UIN"]) <= 0xFFFFFFFF


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_x_wechat_uin_sequence_differs_in_a_forked_child() -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write_end, ",".join(x_wechat_uin() for _ in range(4)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        child = os.read(read_end, 1000).decode().split(",")
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    parent = [x_wechat_uin() for _ in range(4)]
    assert child != parent
