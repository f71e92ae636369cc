"""The fake server's CDN: real AES-128-ECB, checked uploads, served downloads.

``getuploadurl`` registers an expected upload (sizes, MD5, key); ``POST /c2c/upload``
decrypts the body with that key and checks the ciphertext size, the plaintext size and
the MD5, as the live CDN would have to; ``GET /c2c/download`` serves the stored
ciphertext. Objects for inbound media are made by `FakeCdn.store`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

import attrs

from ..crypto import (
    aes_ecb_padded_size,
    decrypt_aes_ecb,
    encode_aes_key_for_media,
    encrypt_aes_ecb,
    new_aes_key,
    parse_aes_key,
)
from ._fake_model import FakeRequest, FakeResponse

if TYPE_CHECKING:
    from .. import _wire as w

__all__ = ["CdnObject", "FakeCdn", "PendingUpload", "media_json"]


@attrs.frozen
class PendingUpload:
    """What a ``getuploadurl`` announced."""

    filekey: str
    rawsize: int
    rawfilemd5: str
    filesize: int
    aeskey_hex: str
    to_user_id: str
    media_type: int


@attrs.frozen
class CdnObject:
    """One stored object: its ciphertext and (for checks) its plaintext and key."""

    param: str
    ciphertext: bytes = attrs.field(repr=False)
    plaintext: bytes = attrs.field(repr=False)
    key: bytes = attrs.field(repr=False)


def _error(status: int, message: str) -> FakeResponse:
    return FakeResponse(status=status, body=message.encode(), headers={"x-error-message": message})


@attrs.define
class FakeCdn:
    """Objects and pending uploads of the fake CDN."""

    pending: dict[str, PendingUpload] = attrs.field(factory=dict)
    objects: dict[str, CdnObject] = attrs.field(factory=dict)
    uploads: int = 0

    def expect_upload(self, req: w.GetUploadUrlReq) -> str:
        """Register a ``getuploadurl`` request; returns its ``upload_param``."""
        param = base64.urlsafe_b64encode(secrets.token_bytes(18)).decode()
        self.pending[param] = PendingUpload(
            filekey=req.filekey,
            rawsize=req.rawsize,
            rawfilemd5=req.rawfilemd5,
            filesize=req.filesize,
            aeskey_hex=req.aeskey,
            to_user_id=req.to_user_id,
            media_type=int(req.media_type),
        )
        return param

    def store(self, plaintext: bytes, key: bytes | None = None) -> CdnObject:
        """Encrypt and keep ``plaintext`` (for inbound media); returns the object."""
        key = key or new_aes_key()
        param = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode()
        obj = CdnObject(param, encrypt_aes_ecb(plaintext, key), plaintext, key)
        self.objects[param] = obj
        return obj

    def upload(self, request: FakeRequest) -> FakeResponse:
        """Handle ``POST {cdn}/upload``."""
        if request.method != "POST":
            return _error(405, "upload must be POST")
        expected = self.pending.get(request.query.get("encrypted_query_param", ""))
        if expected is None or request.query.get("filekey") != expected.filekey:
            return _error(400, "unknown upload parameters")
        body = request.body
        if len(body) != expected.filesize or expected.filesize != aes_ecb_padded_size(
            expected.rawsize
        ):
            return _error(400, f"ciphertext is {len(body)} bytes, expected {expected.filesize}")
        key = bytes.fromhex(expected.aeskey_hex)
        try:
            plaintext = decrypt_aes_ecb(body, key)
        except ValueError:
            return _error(400, "ciphertext does not decrypt with the announced key")
        if len(plaintext) != expected.rawsize:
            return _error(400, "plaintext size differs from rawsize")
        if hashlib.md5(plaintext, usedforsecurity=False).hexdigest() != expected.rawfilemd5:
            return _error(400, "plaintext MD5 differs from rawfilemd5")
        del self.pending[request.query["encrypted_query_param"]]
        self.uploads += 1
        param = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode()
        self.objects[param] = CdnObject(param, body, plaintext, key)
        return FakeResponse(status=200, headers={"x-encrypted-param": param})

    def download(self, request: FakeRequest) -> FakeResponse:
        """Handle ``GET {cdn}/download``."""
        obj = self.objects.get(request.query.get("encrypted_query_param", ""))
        if obj is None:
            return _error(404, "no such object")
        return FakeResponse(
            status=200,
            body=obj.ciphertext,
            headers={"content-type": "application/octet-stream"},
        )

    def plaintext_of(self, media: dict[str, Any]) -> bytes:
        """Decrypt the object a sent ``CDNMedia`` points to, with the key it carries."""
        obj = self.objects[str(media["encrypt_query_param"])]
        key = parse_aes_key(str(media["aes_key"]))
        return decrypt_aes_ecb(obj.ciphertext, key)


def media_json(obj: CdnObject, *, key_form: str, full_url: str | None = None) -> dict[str, Any]:
    """The inbound ``CDNMedia`` JSON for a stored object (key form ``"a"`` or ``"b"``)."""
    aes_key = (
        base64.b64encode(obj.key).decode() if key_form == "a" else encode_aes_key_for_media(obj.key)
    )
    media: dict[str, Any] = {
        "encrypt_query_param": obj.param,
        "aes_key": aes_key,
        "encrypt_type": 1,
    }
    if full_url:
        media["full_url"] = full_url
    return media
