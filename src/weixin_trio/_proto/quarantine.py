"""Sans-IO handling of poison messages: what cannot be handled is set aside, not fatal.

One message from the server must never take an account down (on every restart, since
the cursor would never move past it). Each inbound message is judged on its own:

- it does not fit the schema (`parse_updates` sets it aside);
- its identity fields (user ids, context token, ...) are not valid Unicode text (a
  lone surrogate: the id could be neither stored as UTF-8 nor sent back to the server);
- its JSON cannot be journaled as it is (nesting too deep to encode again, a number
  too large to print).

Such a message is journaled *in quarantine*: its journal entry carries a small record,
``{"weixin_trio_malformed": reason, "raw": ...}``, that always encodes, in the same
atomic write as the rest of its batch and the new cursor. The monitor then
dead-letters it with the reason (counted as ``malformed`` and ``dead_lettered``), and a
restart that finds it pending does the same again. So it is recorded once, its id
joins the dedupe window, and the loop goes on.
"""

from __future__ import annotations

import hashlib
import json
import reprlib
from typing import TYPE_CHECKING, Any, Final

from .._errors import UnencodableError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .. import _wire as w

__all__ = [
    "QUARANTINE_KEY",
    "encode_json",
    "identity_problem",
    "journalable",
    "quarantine",
    "quarantined_reason",
    "sane_time_ms",
    "synthetic_message_id",
    "usable_id",
    "wire_message_id",
]

#: The key that marks a quarantined journal entry.
QUARANTINE_KEY: Final = "weixin_trio_malformed"
#: Plausible millisecond timestamps: from 2017 (before iLink existed) to ~2255.
_MIN_TIME_MS: Final = 1_500_000_000_000
_MAX_TIME_MS: Final = 9_000_000_000_000
#: ``message_id`` is an int64 on the wire (PROTOCOL §3.1).
_INT64: Final = 2**63

_summary = reprlib.Repr()
_summary.maxlevel = 4
_summary.maxstring = 200
_summary.maxother = 200
_summary.maxlong = 60
_summary.maxdict = 20
_summary.maxlist = 20


def encode_json(value: Any, *, indent: int | None = None) -> bytes:
    """``value`` as one ASCII JSON document ending in a newline (surrogate-safe).

    ``ensure_ascii`` escapes every non-ASCII character, lone surrogates included, so the
    bytes always encode and ``json.loads`` gives back the same strings. Ints of any
    size that Python can print round-trip exactly.

    Raises:
        UnencodableError: ``value`` holds something JSON cannot express (an int beyond
            ``sys.get_int_max_str_digits()``, a non-JSON type, nesting too deep).
    """
    separators = (",", ": ") if indent is not None else (",", ":")
    try:
        text = json.dumps(value, ensure_ascii=True, separators=separators, indent=indent)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise UnencodableError(f"not encodable as JSON: {type(exc).__name__}: {exc}") from None
    return text.encode("ascii") + b"\n"


def journalable(raw: Any) -> bool:
    """Whether ``raw`` survives the stores' JSON encoding (`encode_json`)."""
    try:
        encode_json(raw)
    except UnencodableError:
        return False
    return True


def _summarise(raw: Any) -> str:
    """A short, always encodable picture of ``raw`` (depth- and size-limited)."""
    try:
        text = _summary.repr(raw)
    except (RecursionError, ValueError):  # pragma: no cover - reprlib limits depth
        text = f"<{type(raw).__name__}>"
    return text.encode("ascii", "backslashreplace").decode("ascii")


def quarantine(raw: Any, reason: str) -> dict[str, Any]:
    """The journal form of a message that cannot be handled.

    The original JSON is kept when it encodes; otherwise a depth-limited summary.
    """
    kept: Any = raw if journalable(raw) else _summarise(raw)
    return {QUARANTINE_KEY: _clean(reason), "raw": kept}


def quarantined_reason(raw: Mapping[str, Any]) -> str | None:
    """The reason a journal entry was quarantined, or ``None`` for a normal message."""
    if QUARANTINE_KEY not in raw:
        return None
    return str(raw[QUARANTINE_KEY])


def _clean(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _bad_text(value: str | None) -> bool:
    if value is None or value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def identity_problem(msg: w.WeixinMessage) -> str | None:
    """Why a parsed message cannot be handled, or ``None`` when it can.

    Identity fields are used as store keys and sent back to the server, so they must be
    valid Unicode; ``message_id`` must be an int64 (PROTOCOL §3.1). Text content may
    hold anything: it is escaped in the journal and handled.
    """
    for name in ("from_user_id", "to_user_id", "context_token", "group_id", "session_id"):
        if _bad_text(getattr(msg, name)):
            return f"{name} is not valid Unicode text (a lone surrogate)"
    if msg.message_id is not None and usable_id(msg.message_id) is None:
        return "message_id does not fit in 64 bits"
    return None


def sane_time_ms(value: int | None, *, fallback: float) -> float:
    """``value`` (milliseconds) as seconds, or ``fallback`` when it is not a sane time."""
    if value is None or not _MIN_TIME_MS < value < _MAX_TIME_MS:
        return fallback
    return value / 1000


def usable_id(value: object) -> int | None:
    """``value`` if it can be a ``message_id`` (an int64, not a bool), else ``None``."""
    if type(value) is int and -_INT64 <= value < _INT64:
        return value
    return None


def wire_message_id(raw: Any) -> int | None:
    """The raw ``message_id`` of a message that did not parse, if it is a usable int."""
    return usable_id(raw.get("message_id")) if isinstance(raw, dict) else None


def synthetic_message_id(raw: Any) -> int:
    """A stable negative id for a message that arrived without a usable ``message_id``.

    Identical JSON gives the same id, so duplicates of such a message are still dropped.
    Any JSON value works, including lone surrogates, huge numbers and deep nesting.
    """
    try:
        canonical = json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        canonical = _summarise(raw)
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return -int(digest[:15], 16) - 1
