"""Redaction of log records: URL queries, secret headers and tokens never reach a log.

The filters use the sans-IO redaction of `redact` (sensitive keys, URLs) on log records
of httpx, httpcore and weixin_trio; `install_httpx_log_redaction` installs them.
"""

from __future__ import annotations

import logging
import re

from .redact import REDACTED, SENSITIVE_KEYS, redact_url

__all__ = [
    "TextRedactingFilter",
    "UrlRedactingFilter",
    "install_httpx_log_redaction",
    "redact_log_text",
]


class UrlRedactingFilter(logging.Filter):
    """A logging filter that hides URL query strings in a record's arguments.

    httpx logs every request as ``HTTP Request: GET <url> ...`` at INFO level; CDN URLs
    carry secret capabilities in their query. weixin_trio installs this filter on the
    ``httpx`` logger (see `install_httpx_log_redaction`).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite URL-like arguments; never drops a record."""
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        return True


def _redact_arg(arg: object) -> object:
    text = str(arg) if type(arg).__name__ == "URL" else arg
    if isinstance(text, str) and "?" in text and text.startswith(("http://", "https://")):
        return redact_url(text)
    return arg


#: httpcore's loggers (a filter on a parent logger does not see a child's records).
_HTTPCORE_LOGGERS = (
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-encrypted-param"}
)
_QUERY_KEYS = SENSITIVE_KEYS | {"encrypted_query_param", "filekey"}
_URL_IN_TEXT_RE = re.compile(r"(?:https?|wss?)://[^\s'\"<>]+", re.IGNORECASE)
# A header as httpcore prints it: (b'name', b'value'), either quote, escapes inside.
_HEADER_PAIR_RE = re.compile(
    r"""\(b?(['"])([A-Za-z0-9!#$%&*+.^_`|~-]+)\1,\s*b?(['"])((?:\\.|(?!\3).)*)\3\)"""
)
_QUERY_PAIR_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)=([^&\s'\"<>]*)")
_BEARER_RE = re.compile(r"(Bearer\s+)[^\s'\",)]+", re.IGNORECASE)


def redact_log_text(text: str) -> str:
    """Hide the secrets an HTTP library may print in free text (httpcore's debug lines).

    Masks the query of every URL, the value of sensitive headers printed as
    ``(b'name', b'value')`` pairs (``x-encrypted-param``, ``Authorization``, cookies),
    ``name=value`` pairs whose name is a sensitive key or a CDN query parameter
    (``encrypted_query_param``, ``filekey``, ...), and ``Bearer`` credentials.

    Args:
        text: A formatted log message.

    Returns:
        The text with those values replaced by ``<redacted>``; unchanged otherwise.
    """
    text = _URL_IN_TEXT_RE.sub(
        lambda m: redact_url(m.group()) if "?" in m.group() else m.group(), text
    )

    def header(m: re.Match[str]) -> str:
        if m.group(2).lower() not in _SENSITIVE_HEADERS:
            return m.group()
        return f"{m.group()[: m.start(4) - m.start()]}{REDACTED}{m.group(3)})"

    text = _HEADER_PAIR_RE.sub(header, text)
    text = _QUERY_PAIR_RE.sub(
        lambda m: f"{m.group(1)}={REDACTED}" if m.group(1) in _QUERY_KEYS else m.group(), text
    )
    return _BEARER_RE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


class TextRedactingFilter(logging.Filter):
    """A logging filter that redacts a record's whole message (`redact_log_text`).

    httpcore logs preformatted debug lines (``receive_response_headers.complete
    return_value=(b'HTTP/1.1', 200, b'OK', [(b'x-encrypted-param', b'...')])``), so
    the message itself is rewritten; weixin_trio installs this filter on every
    ``httpcore`` logger (see `install_httpx_log_redaction`).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the message when it holds a secret; never drops a record."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: the handler reports it later
            return True
        redacted = redact_log_text(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


def install_httpx_log_redaction() -> None:
    """Install the redacting filters on the ``httpx`` and ``httpcore`` loggers (once).

    `UrlRedactingFilter` goes on ``httpx``; `TextRedactingFilter` on
    ``httpcore`` and each of its child loggers (``httpcore.http11``, ...), since a
    logger's filters do not apply to records of its children.
    """
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, UrlRedactingFilter) for f in logger.filters):
        logger.addFilter(UrlRedactingFilter())
    existing = [n for n in logging.root.manager.loggerDict if n.startswith("httpcore.")]
    for name in {*_HTTPCORE_LOGGERS, *existing}:
        core = logging.getLogger(name)
        if not any(isinstance(f, TextRedactingFilter) for f in core.filters):
            core.addFilter(TextRedactingFilter())
