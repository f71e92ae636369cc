"""Sans-IO parsing of response bodies into wire objects, with typed errors.

Nothing here raises ``KeyError``, ``TypeError`` or ``json.JSONDecodeError`` to the
caller: every failure becomes [`ProtocolError`][weixin_trio.ProtocolError] naming the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import cattrs

from .._errors import ProtocolError
from ._converter import structure
from ._types import GetUpdatesResp, WeixinMessage

__all__ = ["describe_error", "loads_object", "parse_updates", "structure_or_raise"]

T = TypeVar("T")


def describe_error(exc: Exception, path: str = "$") -> tuple[str, str | None]:
    """Human text and the first offending field path for a structuring failure."""
    if isinstance(exc, cattrs.BaseValidationError):
        lines = cattrs.transform_error(exc, path=path)
        first = lines[0] if lines else str(exc)
        field = first.rpartition(" @ ")[2] if " @ " in first else None
        return "; ".join(lines[:3]), field
    return f"{type(exc).__name__}: {exc}", None


def _huge_int(digits: str) -> int | float:
    try:
        return int(digits)
    except ValueError:  # more digits than int() may convert: no field takes such a number
        return -math.inf if digits.startswith("-") else math.inf


def _loads(body: bytes) -> Any:
    """``json.loads``; a number too long to convert becomes +/-inf instead of failing
    the whole body (the one message that carries it is then set aside as malformed).
    """
    try:
        return json.loads(body)
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
        return json.loads(body, parse_int=_huge_int)


def loads_object(body: bytes, *, endpoint: str, allow_empty: bool = False) -> dict[str, Any]:
    """Parse a response body that must be a JSON object.

    Args:
        body: The raw body.
        endpoint: Named in errors.
        allow_empty: An empty or whitespace body means ``{}`` (sendmessage success).

    Raises:
        ProtocolError: The body is not valid JSON, or not an object.
    """
    if not body.strip():
        if allow_empty:
            return {}
        raise ProtocolError(f"{endpoint}: empty response body", endpoint=endpoint)
    try:
        obj = _loads(body)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(
            f"{endpoint}: response is not valid JSON ({type(exc).__name__})", endpoint=endpoint
        ) from None
    if not isinstance(obj, dict):
        raise ProtocolError(
            f"{endpoint}: response is a JSON {type(obj).__name__}, not an object",
            endpoint=endpoint,
            field="$",
        )
    return obj


def structure_or_raise(obj: Any, cls: type[T], *, endpoint: str, path: str = "$") -> T:
    """Structure ``obj`` as ``cls`` or raise `ProtocolError` naming the field."""
    try:
        return structure(obj, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, AttributeError) as exc:
        text, field = describe_error(exc, path)
        raise ProtocolError(f"{endpoint}: {text}", endpoint=endpoint, field=field) from None


def parse_updates(
    obj: Mapping[str, Any], *, endpoint: str = "ilink/bot/getupdates"
) -> GetUpdatesResp:
    """Parse a getupdates body, keeping good messages and setting bad ones aside.

    The envelope (``ret``, cursor, ...) must be well formed; each entry of ``msgs`` is
    structured on its own, and one that does not fit lands in ``malformed`` with its raw
    JSON instead of failing the batch.

    Raises:
        ProtocolError: The envelope itself is malformed (e.g. ``msgs`` is not a list).
    """
    raw_msgs = obj.get("msgs")
    if raw_msgs is None:
        raw_msgs = []
    if not isinstance(raw_msgs, list):
        raise ProtocolError(
            f"{endpoint}: msgs is a {type(raw_msgs).__name__}, not an array",
            endpoint=endpoint,
            field="$.msgs",
        )
    envelope = {k: v for k, v in obj.items() if k != "msgs"}
    resp = structure_or_raise(envelope, GetUpdatesResp, endpoint=endpoint)
    good: list[WeixinMessage] = []
    good_raw: list[Mapping[str, Any]] = []
    bad: list[tuple[Mapping[str, Any], str]] = []
    for index, raw in enumerate(raw_msgs):
        try:
            good.append(
                structure_or_raise(raw, WeixinMessage, endpoint=endpoint, path=f"$.msgs[{index}]")
            )
            good_raw.append(raw)
        except ProtocolError as exc:
            bad.append((raw if isinstance(raw, Mapping) else {"value": raw}, str(exc)))
    return attrs.evolve(resp, msgs=tuple(good), malformed=tuple(bad), raw_msgs=tuple(good_raw))
