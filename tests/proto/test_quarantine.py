"""Sans-IO poison-message helpers: every JSON value is judged without an exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, strategies as st

from weixin_trio import _wire as w
from weixin_trio._proto.quarantine import (
    QUARANTINE_KEY,
    identity_problem,
    journalable,
    quarantine,
    quarantined_reason,
    sane_time_ms,
    synthetic_message_id,
    wire_message_id,
)
from weixin_trio._wire import loads_object, parse_updates

LONE = "\ud800"

#: Text that includes lone surrogates (hypothesis leaves them out by default).
texts = st.text(
    st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)),
    max_size=12,
)
numbers = st.one_of(
    st.integers(),
    st.just(10**400),
    st.just(-(10**400)),
    st.floats(allow_nan=True, allow_infinity=True),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=12,
)


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@given(json_values)
def test_synthetic_ids_are_stable_negative_and_never_raise(raw: Any) -> None:
    mid = synthetic_message_id(raw)
    assert mid < 0
    assert synthetic_message_id(raw) == mid


@pytest.mark.parametrize(
    "raw",
    [
        {"text": LONE},
        {"n": 10**400},
        deep(5000),
        {"x": float("nan")},
    ],
    ids=["lone-surrogate", "huge-int", "deep", "nan"],
)
def test_synthetic_ids_survive_hostile_json(raw: Any) -> None:
    assert synthetic_message_id(raw) < 0


def test_synthetic_id_is_unchanged_for_ordinary_unicode() -> None:
    # Ids kept in an existing dedupe window must stay valid across the upgrade.
    import hashlib

    raw = {"from_user_id": "用户", "b": 1}
    canonical = json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str)
    expected = -int(hashlib.sha256(canonical.encode()).hexdigest()[:15], 16) - 1
    assert synthetic_message_id(raw) == expected


@given(json_values, texts)
def test_quarantine_records_always_encode_and_name_their_reason(raw: Any, reason: str) -> None:
    record = quarantine(raw, reason)
    assert journalable(record)
    decoded = json.loads(json.dumps(record))
    assert quarantined_reason(decoded) is not None
    assert QUARANTINE_KEY in decoded


def test_quarantine_of_unencodable_json_keeps_a_summary() -> None:
    record = quarantine(deep(5000), "too deep")
    assert isinstance(record["raw"], str)
    assert record["raw"].startswith("{'a':")
    assert journalable(record)


def test_quarantine_keeps_encodable_json_as_it_is() -> None:
    raw = {"message_id": 5, "text": LONE}
    assert quarantine(raw, "r")["raw"] == raw


def test_quarantined_reason_of_a_normal_message_is_none() -> None:
    assert quarantined_reason({"message_id": 1}) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"from_user_id": f"u{LONE}"},
        {"to_user_id": LONE},
        {"context_token": f"t{LONE}"},
        {"group_id": LONE},
        {"session_id": LONE},
        {"message_id": 2**63},
        {"message_id": -(2**63) - 1},
    ],
)
def test_identity_problems(fields: dict[str, Any]) -> None:
    msg = w.WeixinMessage(**fields)
    problem = identity_problem(msg)
    assert problem is not None
    assert next(iter(fields)) in problem


def test_text_content_with_surrogates_is_no_identity_problem() -> None:
    item = w.MessageItem(type=w.ItemType.TEXT, text_item=w.TextItem(text=LONE))
    msg = w.WeixinMessage(message_id=1, from_user_id="用户", item_list=(item,))
    assert identity_problem(msg) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 7.0),
        (0, 7.0),
        (-5, 7.0),
        (10**10, 7.0),
        (10**400, 7.0),
        (1_700_000_000_000, 1_700_000_000.0),
    ],
)
def test_sane_time_ms(value: int | None, expected: float) -> None:
    assert sane_time_ms(value, fallback=7.0) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"message_id": 12}, 12),
        ({"message_id": True}, None),
        ({"message_id": "12"}, None),
        ({"message_id": 2**64}, None),
        ({"message_id": 1.0}, None),
        ([1, 2], None),
        ({}, None),
    ],
)
def test_wire_message_id(raw: Any, expected: int | None) -> None:
    assert wire_message_id(raw) == expected


def test_a_number_too_long_to_convert_sets_aside_one_message_not_the_batch() -> None:
    body = (
        b'{"ret":0,"msgs":[{"message_id":1,"create_time_ms":'
        + b"9" * 5000
        + b'},{"message_id":2,"message_type":1}],"get_updates_buf":"c"}'
    )
    response = parse_updates(loads_object(body, endpoint="ilink/bot/getupdates"))
    assert [m.message_id for m in response.msgs] == [2]
    [(raw, reason)] = response.malformed
    assert raw["message_id"] == 1
    assert "create_time_ms" in reason


def test_other_invalid_json_still_fails_the_body() -> None:
    from weixin_trio import ProtocolError

    with pytest.raises(ProtocolError):
        loads_object(b'{"msgs": [', endpoint="ilink/bot/getupdates")
