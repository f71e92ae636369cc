"""Pairing codes and the records access control keeps (sans-IO).

A pairing code is 6 characters from an alphabet without look-alikes (no ``0``/``O``,
``1``/``I``/``L``), drawn with `secrets`: 31**6, about 887 million codes. Codes are
matched case-insensitively, ignoring spaces and dashes (``ab-c 23k`` is ``ABC23K``).
"""

from __future__ import annotations

import secrets
from typing import Any, Final

import attrs

__all__ = [
    "ALLOW_NAMESPACE",
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "DENY_NAMESPACE",
    "PENDING_NAMESPACE",
    "Pending",
    "new_code",
    "normalize_code",
]

#: Characters of a pairing code: no 0/O, 1/I/L.
CODE_ALPHABET: Final = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
#: Characters per pairing code.
CODE_LENGTH: Final = 6

#: Key-value namespaces (per account): allowed users, pending codes, denied users.
ALLOW_NAMESPACE: Final = "access.allow"
PENDING_NAMESPACE: Final = "access.pending"
DENY_NAMESPACE: Final = "access.deny"


def new_code() -> str:
    """A fresh random pairing code."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """``text`` as a code to compare: upper case, without spaces and dashes."""
    return "".join(text.split()).replace("-", "").upper()


@attrs.frozen
class Pending:
    """A user waiting for the owner's approval.

    Attributes:
        user_id: Who asked.
        code: The code the user was sent.
        requested_at: Wall-clock time the code was issued.
        expires_at: Wall-clock time after which the code no longer counts (the user's
            next message gets a new one).
    """

    user_id: str
    code: str
    requested_at: float
    expires_at: float

    def expired(self, now: float) -> bool:
        """Whether the code has expired at ``now``."""
        return now >= self.expires_at

    def to_json(self) -> dict[str, Any]:
        """The stored form (the user id is the key)."""
        return {"code": self.code, "at": self.requested_at, "until": self.expires_at}

    @classmethod
    def from_json(cls, user_id: str, data: Any) -> Pending | None:
        """The record stored for ``user_id`` (``None`` when it is not one)."""
        if not isinstance(data, dict):
            return None
        code: Any = data.get("code")
        at: Any = data.get("at")
        until: Any = data.get("until")
        if not isinstance(code, str) or not _number(at) or not _number(until):
            return None
        return cls(user_id, code, float(at), float(until))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
