"""How the fake server reads a request: leniently, like the live server, and loudly.

The live server accepts requests that differ from what the official client sends
(other SDKs send ``null`` fields, omit optional ones, add keys of their own, spell the
auth scheme in lower case, leave out headers). The fake accepts them too, so that bots
built on any SDK can be tested against it, and records each difference as a
`ProtocolIssue`. With ``strict=True`` the issues marked ``strict_rejects``
become rejections again, as they were before.

Sans-IO: nothing here touches trio or HTTP.
"""

from __future__ import annotations

import base64
import types
import typing
from typing import TYPE_CHECKING, Any, Final, TypeAlias, Union

import attrs

from .. import _wire as w

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["CATEGORIES", "ProtocolIssue", "parse_authorization", "read_body", "uin_problem"]

#: Every category of protocol issue, and whether strict mode rejects a request for it.
CATEGORIES: Final[Mapping[str, bool]] = {
    "null-field": True,  # a field sent as JSON null (the official client omits it)
    "missing-field": True,  # a field the official client always sends is absent
    "unknown-field": True,  # a key that is not part of the protocol
    "auth-scheme": True,  # "bearer" in lower case, or a token without a scheme
    "missing-authorization-type": True,  # no AuthorizationType: ilink_bot_token
    "bad-header": True,  # X-WECHAT-UIN that is not base64 of a decimal uint32, ...
    "content-type": True,  # a POST body not labelled application/json
    "foreign-cursor": True,  # a get_updates_buf this server never issued
    "missing-header": False,  # no X-WECHAT-UIN or iLink-App-* header (tolerated live)
    "missing-bot-agent": False,  # base_info without bot_agent (older clients)
    "multi-item": False,  # more than one item in one sendmessage
    "missing-context-token": False,  # a send without context_token
    "unknown-context-token": False,  # a send with a context_token never issued
}

_STRICT: Final = w.make_converter(strict=True)
#: Parts of the wire types that are not wire keys.
_NOT_WIRE: Final = frozenset({"extra", "malformed", "raw_msgs"})


@attrs.frozen
class ProtocolIssue:
    """One way a request differed from what the official client sends.

    Attributes:
        category: One of `CATEGORIES` (e.g. ``"null-field"``).
        endpoint: The endpoint's short name (``"getupdates"``, ``"sendmessage"``, ...).
        field: The JSON path (``"$.get_updates_buf"``) or header name concerned.
        detail: What was seen, for a person.
    """

    category: str
    endpoint: str
    field: str | None
    detail: str

    @property
    def strict_rejects(self) -> bool:
        """Whether a strict fake server rejects the request for this issue."""
        return CATEGORIES[self.category]

    def to_json(self) -> dict[str, Any]:
        """The ``GET /_fake/issues`` representation."""
        return {
            "category": self.category,
            "endpoint": self.endpoint,
            "field": self.field,
            "detail": self.detail,
        }


def _attrs_class(tp: Any) -> tuple[type | None, bool]:
    """``(attrs class, is_sequence)`` inside an annotation, or ``(None, False)``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            found = _attrs_class(arg)
            if found[0] is not None:
                return found
        return None, False
    if origin is tuple:
        inner, _ = _attrs_class(typing.get_args(tp)[0])
        return inner, True
    if isinstance(tp, type) and attrs.has(tp):
        return tp, False
    return None, False


Report: TypeAlias = "Callable[[str, str | None, str], None]"


def _normalise(obj: Mapping[str, Any], cls: type, path: str, report: Report) -> dict[str, Any]:
    """``obj`` without nulls and unknown keys (each reported), recursively."""
    hints = typing.get_type_hints(cls)
    known = {a.name for a in attrs.fields(cls) if a.name not in _NOT_WIRE}
    keep_unknown = cls is w.MessageItem  # unknown payload keys go to MessageItem.extra
    out: dict[str, Any] = {}
    for key, value in obj.items():
        where = f"{path}.{key}"
        if key not in known:
            if not keep_unknown:
                report("unknown-field", where, f"unknown key {key!r}")
                continue
        elif value is None:
            report("null-field", where, f"{key} is null")
            continue
        inner, is_sequence = _attrs_class(hints[key]) if key in known else (None, False)
        if inner is not None and is_sequence and isinstance(value, list):
            value = [
                _normalise(v, inner, f"{where}[{i}]", report) if isinstance(v, dict) else v
                for i, v in enumerate(value)
            ]
        elif inner is not None and isinstance(value, dict):
            value = _normalise(value, inner, where, report)
        out[key] = value
    return out


#: Fields the official client always sends that a lenient server can do without.
_DEFAULTS: Final[Mapping[str, Any]] = {"get_updates_buf": "", "base_info": {}}


def read_body(body: Any, cls: type, report: Report) -> Any:
    """Structure a request body leniently; every difference goes to ``report``.

    Raises:
        ValueError: The body cannot be read even leniently (not an object, a wrong type,
            a required field missing); the message names the field.
    """
    if not isinstance(body, dict):
        raise ValueError(f"body is a JSON {type(body).__name__}, not an object")
    clean = _normalise(body, cls, "$", report)
    for name, default in _DEFAULTS.items():
        if name in attrs.fields_dict(cls) and name not in clean:
            if name not in body:  # (a null one was reported as such)
                report("missing-field", f"$.{name}", f"{name} is missing")
            clean[name] = default
    try:
        return _STRICT.structure(clean, cls)
    except Exception as exc:
        text, _ = w.describe_error(exc)
        raise ValueError(text) from None


def parse_authorization(header: str | None) -> tuple[str, str | None]:
    """The token of an ``Authorization`` header, and why it is unusual (or ``None``).

    Auth schemes are case-insensitive (RFC 9110 §11.1), and some clients send the bare
    token; both still authenticate.
    """
    if not header:
        return "", None
    scheme, _, rest = header.strip().partition(" ")
    if rest and scheme.lower() == "bearer":
        note = None if scheme == "Bearer" else f"auth scheme spelled {scheme!r}"
        return rest.strip(), note
    return header.strip(), "a token without the Bearer scheme"


def uin_problem(value: str) -> str | None:
    """Why an ``X-WECHAT-UIN`` value is not base64 of a decimal uint32 (or ``None``)."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
        if not decoded.isdigit() or int(decoded) >= 2**32:
            raise ValueError(decoded)
    except ValueError:
        return "X-WECHAT-UIN is not base64 of a decimal uint32"
    return None
