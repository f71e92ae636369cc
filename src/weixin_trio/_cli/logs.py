"""Logging of the command line: ``-v`` levels and ``--log-format text|json``.

Both formats run every string they print through `redact_line`: the log redaction of
`weixin_trio._proto.log_redaction` (URL queries, secret headers, ``name=value``
secrets, ``Bearer`` credentials) and the body redaction of `weixin_trio._proto.redact`
(``"key": value`` pairs of sensitive keys), on top of the filters the client installs
on the HTTP loggers: the message, the exception text and every extra field.

JSON: one object per line with ``time`` (UTC, ISO 8601), ``level``, ``logger`` and
``message``; ``event``, ``account_id``, ``message_id`` and ``duration`` when the record
carries them (``extra=``, as the handler's one line per message does), any other extra
field, and ``exception`` (the formatted traceback, one string) when there is one.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import re
import sys
from typing import TYPE_CHECKING, Any

from .._proto.log_redaction import redact_log_text
from .._proto.redact import REDACTED, SENSITIVE_KEYS, redact_body

if TYPE_CHECKING:
    import argparse

__all__ = [
    "LOG_FORMATS",
    "WIRE_LOGGERS",
    "JsonFormatter",
    "RedactingFormatter",
    "add_log_options",
    "configure_logging",
    "redact_line",
    "report_exit",
]

#: Loggers of the HTTP stack: their DEBUG output is a wire dump (``-vvv`` only).
WIRE_LOGGERS = ("httpx", "httpcore")
#: Values of ``--log-format``.
LOG_FORMATS = ("text", "json")
#: Attributes every `logging.LogRecord` has: anything else came with ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
#: Extra fields printed first, in this order, when a record has them.
_KNOWN_FIELDS = ("event", "account_id", "message_id", "duration")


def add_log_options(group: argparse.ArgumentParser) -> None:
    """Add ``-v/--verbose`` and ``--log-format`` to the shared ``log`` option group."""
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        help="more logging: -v our INFO (one line per handled message), -vv our DEBUG,"
        " -vvv also the CDN transfers' HTTP wire (httpx/httpcore); with -v a failure"
        " prints its traceback",
    )
    group.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="text (default) or json: one JSON object per line (time, level, logger,"
        " message, and account_id, message_id, event, duration when known)",
    )


def configure_logging(verbose: int, log_format: str = "text") -> None:
    """``-v``: INFO (one line per handled message); ``-vv``: DEBUG; ``-vvv``: the wire too.

    The HTTP stack (`WIRE_LOGGERS`) stays at WARNING below ``-vvv``: its DEBUG
    records are a dump of every request (headers redacted, but long).
    """
    level = (logging.WARNING, logging.INFO)[verbose] if verbose < 2 else logging.DEBUG
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    wire = logging.DEBUG if verbose >= 3 else logging.WARNING
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(wire)


def report_exit(text: str, log_format: str) -> None:
    """The last line of a failed or interrupted command, on stderr.

    ``weixin-trio: <text>`` in the text format; with ``--log-format json`` an ``ERROR``
    record of ``weixin_trio.cli`` (``event``: ``exit``), so that stderr stays one JSON
    object per line.
    """
    if log_format != "json":
        print(f"weixin-trio: {text}", file=sys.stderr)
        return
    record = logging.makeLogRecord(
        {"name": "weixin_trio.cli", "levelno": logging.ERROR, "levelname": "ERROR"}
    )
    record.msg = text
    record.event = "exit"
    print(JsonFormatter().format(record), file=sys.stderr, flush=True)


class RedactingFormatter(logging.Formatter):
    """The text format, with the formatted line (traceback included) redacted."""

    def format(self, record: logging.LogRecord) -> str:
        """The usual line, run through `redact_line`."""
        return redact_line(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring); secrets redacted."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        when = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        out: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_line(record.getMessage()),
        }
        extras = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
        for key in (*[k for k in _KNOWN_FIELDS if k in extras], *sorted(extras)):
            if key not in out and not key.startswith("_"):
                out[key] = _field(extras[key])
        if record.exc_info:
            out["exception"] = redact_line(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exception"] = redact_line(record.exc_text)
        if record.stack_info:
            out["stack"] = redact_line(self.formatStack(record.stack_info))
        return json.dumps(out, ensure_ascii=False)


def redact_line(text: str) -> str:
    """Hide the secrets of a log line (the text format's line, or one JSON field).

    First the values of sensitive keys in JSON (``"context_token": "..."``) and in a
    Python ``repr`` of a dict (``'aes_key': '...'``), then what `redact_log_text`
    hides (URL queries, secret headers, ``key=value`` pairs, ``Bearer`` credentials).
    """
    if '"' in text:
        text = redact_body(text, max_len=sys.maxsize)
    if "'" in text:
        text = _REPR_PAIR_RE.sub(lambda m: f"{m.group(1)}{REDACTED}'", text)
    return redact_log_text(text)


_KEYS = "|".join(re.escape(k) for k in sorted(SENSITIVE_KEYS))
#: ``'key': 'value'`` as a Python ``repr`` of a dict prints it.
_REPR_PAIR_RE = re.compile(rf"('(?:{_KEYS})'\s*:\s*')[^']*'")


def _field(value: object) -> object:
    """An extra field as JSON: numbers, booleans and ``None`` as they are, else redacted text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return redact_line(value if isinstance(value, str) else repr(value))
