"""JSON-RPC 2.0 over newline-delimited JSON, sans-IO: framing, parsing, encoding.

`LineDecoder` turns the bytes an agent writes into messages; anything that is not a
valid JSON-RPC message becomes a `Garbage` value (never an exception), so one bad line
never stops a connection. Lines longer than ``max_line`` bytes are dropped whole.
"""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import attrs

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "MAX_LINE",
    "METHOD_NOT_FOUND",
    "ErrorResponse",
    "Garbage",
    "LineDecoder",
    "Message",
    "Notification",
    "Request",
    "Response",
    "encode",
    "parse_line",
]

#: Longest line accepted from an agent (8 MiB); longer lines are skipped.
MAX_LINE = 8 * 1024 * 1024

METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

RequestId: TypeAlias = "int | str"


@attrs.frozen
class Request:
    """A call that expects a response."""

    id: RequestId
    method: str
    params: Any = None


@attrs.frozen
class Notification:
    """A call without a response."""

    method: str
    params: Any = None


@attrs.frozen
class Response:
    """A successful answer to a request."""

    id: RequestId
    result: Any = None


@attrs.frozen
class ErrorResponse:
    """An error answer to a request (``id`` is ``None`` when the request was unreadable)."""

    id: RequestId | None
    code: int
    message: str
    data: Any = None


@attrs.frozen
class Garbage:
    """A line that is not a JSON-RPC message, and why (the line is cut to 200 bytes)."""

    line: bytes
    reason: str


Message: TypeAlias = "Request | Notification | Response | ErrorResponse"


def _is_id(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


def parse_line(line: bytes) -> Message | Garbage:
    """One line of the stream as a message, or `Garbage`."""

    def bad(reason: str) -> Garbage:
        return Garbage(line[:200], reason)

    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return bad("not JSON")
    if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0":
        return bad("not a JSON-RPC 2.0 object")
    method = obj.get("method")
    if method is not None:
        if not isinstance(method, str):
            return bad("method is not a string")
        if "id" not in obj:
            return Notification(method, obj.get("params"))
        if not _is_id(obj["id"]):
            return bad("bad id")
        return Request(obj["id"], method, obj.get("params"))
    if "id" not in obj or not (_is_id(obj["id"]) or obj["id"] is None):
        return bad("response without a usable id")
    if "error" in obj:
        error = obj["error"]
        if not isinstance(error, dict):
            return bad("error is not an object")
        code = error.get("code")
        message = error.get("message")
        return ErrorResponse(
            obj["id"],
            code if isinstance(code, int) and not isinstance(code, bool) else INTERNAL_ERROR,
            message if isinstance(message, str) else "error",
            error.get("data"),
        )
    if "result" not in obj or obj["id"] is None:
        return bad("response without result")
    return Response(obj["id"], obj["result"])


def encode(message: Message) -> bytes:
    """``message`` as one line of compact JSON, ending in ``\\n``."""
    body: dict[str, Any] = {"jsonrpc": "2.0"}
    if isinstance(message, Request):
        body.update(id=message.id, method=message.method)
        if message.params is not None:
            body["params"] = message.params
    elif isinstance(message, Notification):
        body["method"] = message.method
        if message.params is not None:
            body["params"] = message.params
    elif isinstance(message, Response):
        body.update(id=message.id, result=message.result)
    else:
        error: dict[str, Any] = {"code": message.code, "message": message.message}
        if message.data is not None:
            error["data"] = message.data
        body.update(id=message.id, error=error)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


@attrs.define
class LineDecoder:
    """Split a byte stream into lines and parse each (any chunking gives the same result)."""

    max_line: int = MAX_LINE
    _buffer: bytearray = attrs.field(factory=bytearray, init=False)
    _skipping: bool = attrs.field(default=False, init=False)

    def feed(self, data: bytes) -> list[Message | Garbage]:
        """The complete lines of ``data`` (and what came before), parsed."""
        out: list[Message | Garbage] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            piece = data[start:end]
            start = end + 1
            if self._skipping:
                self._skipping = False
                self._buffer.clear()
                continue
            if len(self._buffer) + len(piece) > self.max_line:
                out.append(Garbage(b"", "line too long"))
                self._buffer.clear()
                continue
            self._buffer += piece
            line = bytes(self._buffer).strip()
            self._buffer.clear()
            if line:
                out.append(parse_line(line))
        rest = data[start:]
        if not self._skipping and rest:
            if len(self._buffer) + len(rest) > self.max_line:
                out.append(Garbage(b"", "line too long"))
                self._buffer.clear()
                self._skipping = True
            else:
                self._buffer += rest
        return out

    def close(self) -> list[Message | Garbage]:
        """At end of stream: the unterminated last line, if any."""
        line = bytes(self._buffer).strip()
        self._buffer.clear()
        skipping, self._skipping = self._skipping, False
        return [parse_line(line)] if line and not skipping else []
