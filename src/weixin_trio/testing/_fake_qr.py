"""QR login sessions of the fake server (PROTOCOL §2.8)."""

from __future__ import annotations

import secrets
from typing import Any

import attrs
import trio

__all__ = ["QrRegistry", "QrSession"]

#: A QR session expires this long after it was issued (PROTOCOL §8.4: 5 min).
QR_TTL = 300.0
#: Wrong verify codes accepted before ``verify_code_blocked``.
MAX_WRONG_CODES = 3


@attrs.define(eq=False)
class QrSession:
    """One QR code and where its login stands.

    ``status`` follows the wire spelling: ``wait``, ``scaned``, ``scaned_but_redirect``,
    ``need_verifycode``, ``verify_code_blocked``, ``expired``, ``binded_redirect``,
    ``confirmed``.
    """

    qrcode: str
    img_content: str
    local_tokens: tuple[str, ...]
    issued_at: float
    status: str = "wait"
    verify_code: str | None = None
    wrong_codes: int = 0
    redirect_host: str | None = None
    redirect_reported: bool = False
    result: dict[str, Any] | None = None
    polls: int = 0
    changed: trio.Event = attrs.field(factory=trio.Event)

    def set_status(self, status: str) -> None:
        """Move to ``status`` and wake parked status polls."""
        self.status = status
        self.changed.set()
        self.changed = trio.Event()


@attrs.define(eq=False)
class QrRegistry:
    """Every QR session the fake issued, by ``qrcode``."""

    base_url: str
    sessions: dict[str, QrSession] = attrs.field(factory=dict)
    auto_confirm: bool = False
    hold: float = 5.0
    ttl: float = QR_TTL

    def issue(self, local_tokens: tuple[str, ...]) -> QrSession:
        """Create a session for a ``get_bot_qrcode`` request."""
        qrcode = secrets.token_hex(16)
        session = QrSession(
            qrcode=qrcode,
            img_content=f"{self.base_url.rstrip('/')}/_fake/qr?code={qrcode}",
            local_tokens=local_tokens,
            issued_at=trio.current_time(),
        )
        self.sessions[qrcode] = session
        return session

    def latest(self, qrcode: str | None) -> QrSession:
        """The session named ``qrcode``, or the newest one."""
        if qrcode is not None:
            return self.sessions[qrcode]
        if not self.sessions:
            raise LookupError("no QR code was requested yet")
        return next(reversed(self.sessions.values()))

    def check_expiry(self, session: QrSession) -> None:
        """Expire a session whose TTL passed before it was confirmed."""
        if session.status in ("wait", "scaned", "scaned_but_redirect", "need_verifycode") and (
            trio.current_time() - session.issued_at >= self.ttl
        ):
            session.set_status("expired")

    async def wait_for_change(self, session: QrSession) -> None:
        """Hold a status poll until the session changes or the hold passes."""
        with trio.move_on_after(min(self.hold, max(0.0, self._time_left(session)))):
            await session.changed.wait()
        self.check_expiry(session)

    def _time_left(self, session: QrSession) -> float:
        return session.issued_at + self.ttl - trio.current_time()

    def submit_code(self, session: QrSession, code: str) -> None:
        """Handle a ``verify_code`` sent with a status poll."""
        if session.status != "need_verifycode" or session.verify_code is None:
            return
        if code == session.verify_code:
            session.verify_code = None
            session.set_status("scaned")
            return
        session.wrong_codes += 1
        if session.wrong_codes >= MAX_WRONG_CODES:
            session.set_status("verify_code_blocked")
