"""What the command line tells a person about a QR login (``login`` and ``demo``).

The wire spells a scanned QR code ``scaned`` (PROTOCOL §2.8); people read "scanned".
Only the text shown changes: the wire values stay as they are everywhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..login import QrCode

__all__ = ["qr_text", "status_text"]

_STATUS_TEXT = {
    "wait": "waiting for a scan",
    "scaned": "scanned; confirm on the phone",
    "scaned_but_redirect": "scanned; continuing on another host",
    "need_verifycode": "scanned; type the digits shown on the phone",
    "verify_code_blocked": "too many wrong digits; a new QR code follows",
    "expired": "the QR code expired",
    "confirmed": "confirmed",
    "binded_redirect": "this bot is already connected here",
}


def status_text(status: str) -> str:
    """A login status as a person reads it (``confirmed`` stays ``confirmed``)."""
    return _STATUS_TEXT.get(status, status.replace("scaned", "scanned"))


def qr_text(qr: QrCode) -> str:
    """The line shown with a QR code: what to do, which code of how many, and its URL."""
    return (
        f"Scan this QR code with WeChat ({qr.refresh_number}/{qr.max_codes}),"
        f" or open the link on the phone: {qr.qrcode_img_content}"
    )
