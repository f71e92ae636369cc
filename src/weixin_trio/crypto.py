"""AES-128-ECB with PKCS#7 padding, and the AES key encodings of the CDN (PROTOCOL §6.1–§6.5).

Every object on the WeChat CDN is AES-128-ECB ciphertext with PKCS#7 padding under a
fresh 16-byte key per file. ECB is mandated by the protocol (``encrypt_type: 1``); it
hides no block-level patterns, so do not treat it as strong confidentiality.

This module is sans-IO and is imported only when media is used: importing
``weixin_trio`` itself never imports `cryptography`.

Errors: a wrong key length, ciphertext that is empty or not a multiple of 16 bytes, bad
padding (which is also what a wrong key gives), and an unparsable key text all raise
[`CryptoError`][weixin_trio.crypto.CryptoError], a `ValueError`. No exception from `cryptography`
escapes, and no error message contains key material.

Key texts accepted by `parse_aes_key` (deliberate differences from the reference,
whose Node ``Buffer.from(text, "base64")`` is lenient in other ways):

* missing ``=`` padding, surplus trailing ``=``, the URL-safe alphabet (``-`` and
  ``_``) and ASCII whitespace anywhere are accepted, as Node accepts them;
* characters outside the base64 alphabets are **rejected** (Node skips them silently);
* the bare 32-character hex text (the form of ``ImageItem.aeskey``) is also accepted;
  the reference would decode it as base64 (24 bytes) and fail;
* error messages give the decoded length but never the key text (the reference puts
  the whole base64 text into its message).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import TYPE_CHECKING, Final

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._errors import CryptoError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import CipherContext

__all__ = [
    "AES_BLOCK_SIZE",
    "AES_KEY_SIZE",
    "AesEcbDecryptor",
    "AesEcbEncryptor",
    "CryptoError",
    "aes_ecb_padded_size",
    "aes_key_to_hex",
    "decrypt_aes_ecb",
    "encode_aes_key_for_media",
    "encrypt_aes_ecb",
    "image_key",
    "new_aes_key",
    "new_filekey",
    "parse_aes_key",
]

AES_BLOCK_SIZE: Final = 16
"""AES block size in bytes; PKCS#7 pads to a multiple of it."""
AES_KEY_SIZE: Final = 16
"""AES-128 key size in bytes."""

_HEX_KEY = re.compile(r"[0-9a-fA-F]{32}")
_HEX_KEY_BYTES = re.compile(rb"[0-9a-fA-F]{32}")
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/\-_]*")
_WHITESPACE = str.maketrans("", "", " \t\n\r\f\v")
_URLSAFE_TO_STD = str.maketrans("-_", "+/")

Data = bytes | bytearray | memoryview
"""Bytes-like input accepted by the cipher functions."""


def _cipher(key: bytes) -> Cipher[modes.ECB]:
    if not isinstance(key, bytes | bytearray | memoryview):
        raise CryptoError(f"AES key must be bytes, not {type(key).__name__}")
    if len(key) != AES_KEY_SIZE:
        raise CryptoError(f"AES-128 key must be {AES_KEY_SIZE} bytes, got {len(key)}")
    return Cipher(algorithms.AES(bytes(key)), modes.ECB())


def aes_ecb_padded_size(n: int) -> int:
    """Ciphertext size of ``n`` plaintext bytes after PKCS#7 padding (§6.2).

    PKCS#7 always adds 1–16 bytes, so a multiple of 16 grows by a full block.

    Args:
        n: Plaintext size in bytes.

    Returns:
        ``(n // 16 + 1) * 16``.

    Raises:
        ValueError: If ``n`` is negative.
    """
    if n < 0:
        raise ValueError(f"plaintext size must not be negative, got {n}")
    return (n // AES_BLOCK_SIZE + 1) * AES_BLOCK_SIZE


def encrypt_aes_ecb(data: Data, key: bytes) -> bytes:
    """Encrypt with AES-128-ECB and PKCS#7 padding in one call.

    Args:
        data: The plaintext (may be empty).
        key: The 16-byte key.

    Returns:
        The ciphertext, ``aes_ecb_padded_size(len(data))`` bytes long.

    Raises:
        CryptoError: If the key is not 16 bytes.
    """
    encryptor = AesEcbEncryptor(key)
    return encryptor.update(data) + encryptor.finalize()


def decrypt_aes_ecb(data: Data, key: bytes) -> bytes:
    """Decrypt AES-128-ECB ciphertext and strip its PKCS#7 padding in one call.

    Args:
        data: The ciphertext.
        key: The 16-byte key.

    Returns:
        The plaintext.

    Raises:
        CryptoError: If the key is not 16 bytes, the ciphertext is empty or not a
            multiple of 16 bytes, or the padding is invalid (for example a wrong key).
    """
    decryptor = AesEcbDecryptor(key)
    return decryptor.update(data) + decryptor.finalize()


class AesEcbEncryptor:
    """Incremental AES-128-ECB/PKCS#7 encryptor for streaming in constant memory.

    Feed plaintext in chunks of any size with `update`; `finalize` adds the
    padding and returns the last block(s). The concatenated output equals
    `encrypt_aes_ecb` of the concatenated input, whatever the chunking.

    Args:
        key: The 16-byte key.

    Raises:
        CryptoError: If the key is not 16 bytes.
    """

    __slots__ = ("_bytes_in", "_done", "_encryptor", "_padder")

    def __init__(self, key: bytes) -> None:
        self._encryptor: CipherContext = _cipher(key).encryptor()
        self._padder = padding.PKCS7(AES_BLOCK_SIZE * 8).padder()
        self._bytes_in = 0
        self._done = False

    @property
    def bytes_in(self) -> int:
        """Plaintext bytes fed so far."""
        return self._bytes_in

    def update(self, chunk: Data) -> bytes:
        """Encrypt the next chunk of plaintext.

        Args:
            chunk: Plaintext bytes (any length, may be empty).

        Returns:
            The ciphertext of every complete block now available (possibly empty).

        Raises:
            RuntimeError: If `finalize` was already called.
        """
        if self._done:
            raise RuntimeError("AesEcbEncryptor.update() after finalize()")
        self._bytes_in += chunk.nbytes if isinstance(chunk, memoryview) else len(chunk)
        return self._encryptor.update(self._padder.update(chunk))

    def finalize(self) -> bytes:
        """Pad and encrypt the rest.

        Returns:
            The buffered partial block plus its padding, encrypted: always exactly
            one 16-byte block.

        Raises:
            RuntimeError: If `finalize` was already called.
        """
        if self._done:
            raise RuntimeError("AesEcbEncryptor.finalize() called twice")
        self._done = True
        return self._encryptor.update(self._padder.finalize()) + self._encryptor.finalize()


class AesEcbDecryptor:
    """Incremental AES-128-ECB/PKCS#7 decryptor for streaming in constant memory.

    Feed ciphertext in chunks of any size with `update`. The last block is held
    back until `finalize`, which validates and strips the padding. The
    concatenated output equals `decrypt_aes_ecb` of the concatenated input,
    whatever the chunking.

    Plaintext returned by `update` is *unauthenticated* until `finalize`
    succeeds: a wrong key is only detected there (and only with probability about
    255/256, as in every PKCS#7 implementation).

    Args:
        key: The 16-byte key.

    Raises:
        CryptoError: If the key is not 16 bytes.
    """

    __slots__ = ("_bytes_in", "_decryptor", "_done", "_unpadder")

    def __init__(self, key: bytes) -> None:
        self._decryptor: CipherContext = _cipher(key).decryptor()
        self._unpadder = padding.PKCS7(AES_BLOCK_SIZE * 8).unpadder()
        self._bytes_in = 0
        self._done = False

    @property
    def bytes_in(self) -> int:
        """Ciphertext bytes fed so far."""
        return self._bytes_in

    def update(self, chunk: Data) -> bytes:
        """Decrypt the next chunk of ciphertext.

        Args:
            chunk: Ciphertext bytes (any length, may be empty).

        Returns:
            Plaintext of the complete blocks now available, except the last block
            seen, which is held back for `finalize` (possibly empty).

        Raises:
            RuntimeError: If `finalize` was already called.
        """
        if self._done:
            raise RuntimeError("AesEcbDecryptor.update() after finalize()")
        self._bytes_in += chunk.nbytes if isinstance(chunk, memoryview) else len(chunk)
        return self._unpadder.update(self._decryptor.update(chunk))

    def finalize(self) -> bytes:
        """Check the total length, validate and strip the padding.

        Returns:
            The plaintext of the last block without its padding (0–15 bytes).

        Raises:
            CryptoError: If the ciphertext was empty or not a multiple of 16 bytes, or
                the padding is invalid (for example a wrong key).
            RuntimeError: If `finalize` was already called.
        """
        if self._done:
            raise RuntimeError("AesEcbDecryptor.finalize() called twice")
        self._done = True
        if self._bytes_in == 0:
            raise CryptoError("ciphertext is empty")
        if self._bytes_in % AES_BLOCK_SIZE:
            raise CryptoError(
                f"ciphertext length {self._bytes_in} is not a multiple of {AES_BLOCK_SIZE}"
            )
        try:
            tail = self._unpadder.update(self._decryptor.finalize())
            return tail + self._unpadder.finalize()
        except ValueError:
            raise CryptoError("bad PKCS#7 padding (wrong key or corrupted data)") from None


def parse_aes_key(text: str) -> bytes:
    """Decode an AES key as it appears on the wire (§6.5) into its 16 raw bytes.

    Accepted forms:

    * form A: base64 of the 16 raw key bytes (``CDNMedia.aes_key`` of most images);
    * form B: base64 of the 32-character hex text of the key (``CDNMedia.aes_key`` of
      files, voice, video, and of everything we send); hex in any case;
    * the bare 32-character hex text (``ImageItem.aeskey``, getuploadurl ``aeskey``).

    Base64 may lack its ``=`` padding, use the URL-safe alphabet, and contain ASCII
    whitespace. Characters outside the alphabet are rejected (the reference skips them).

    Args:
        text: The key text.

    Returns:
        The 16-byte key.

    Raises:
        CryptoError: If the text is in none of the forms. The message never contains
            the text.
    """
    if not isinstance(text, str):
        raise CryptoError(f"AES key text must be str, not {type(text).__name__}")
    compact = text.translate(_WHITESPACE)
    if _HEX_KEY.fullmatch(compact):
        return bytes.fromhex(compact)
    body = compact.rstrip("=")
    if not _BASE64_CHARS.fullmatch(body):
        raise CryptoError("AES key is not valid base64: characters outside the alphabet")
    if len(body) % 4 == 1:
        raise CryptoError("AES key is not valid base64: impossible length")
    padded = body.translate(_URLSAFE_TO_STD) + "=" * (-len(body) % 4)
    try:
        decoded = base64.b64decode(padded, validate=True)
    except binascii.Error:  # pragma: no cover - excluded by the checks above
        raise CryptoError("AES key is not valid base64") from None
    if len(decoded) == AES_KEY_SIZE:
        return decoded
    if _HEX_KEY_BYTES.fullmatch(decoded):
        return bytes.fromhex(decoded.decode("ascii"))
    raise CryptoError(
        f"AES key must decode to 16 raw bytes or 32 hex characters, got {len(decoded)} bytes"
    )


def _parse_hex_key(text: str) -> bytes:
    compact = text.strip()
    if not _HEX_KEY.fullmatch(compact):
        raise CryptoError(f"hex AES key must be 32 hex characters, got {len(compact)} characters")
    return bytes.fromhex(compact)


def image_key(aeskey_hex: str | None, media_aes_key: str | None) -> bytes | None:
    """The key of an inbound image, by the precedence of §6.5.

    ``ImageItem.aeskey`` (hex) wins when present and non-empty; otherwise
    ``ImageItem.media.aes_key`` is parsed with `parse_aes_key`. Empty strings
    count as absent, as in the reference.

    Args:
        aeskey_hex: ``image_item.aeskey``: 32 hex characters, or ``None``.
        media_aes_key: ``image_item.media.aes_key``, or ``None``.

    Returns:
        The 16-byte key, or ``None`` when neither is given (the image is then stored
        on the CDN unencrypted: download it without decryption).

    Raises:
        CryptoError: If the chosen value is malformed. A malformed ``aeskey`` is an
            error, not a reason to fall back to ``media.aes_key``.
    """
    if aeskey_hex and aeskey_hex.strip():
        return _parse_hex_key(aeskey_hex)
    if media_aes_key and media_aes_key.strip():
        return parse_aes_key(media_aes_key)
    return None


def aes_key_to_hex(key: bytes) -> str:
    """The 32 lowercase hex characters of a key (getuploadurl ``aeskey``).

    Args:
        key: The 16-byte key.

    Returns:
        The hex text.

    Raises:
        CryptoError: If the key is not 16 bytes.
    """
    if len(key) != AES_KEY_SIZE:
        raise CryptoError(f"AES-128 key must be {AES_KEY_SIZE} bytes, got {len(key)}")
    return bytes(key).hex()


def encode_aes_key_for_media(key: bytes) -> str:
    """Encode a key for an outbound ``CDNMedia.aes_key``: form B (§6.5).

    Form B is base64 of the ASCII hex text, which is what every reference sends.

    Args:
        key: The 16-byte key.

    Returns:
        44 base64 characters, e.g. ``MDAxMTIy…ZmY=`` for ``00 11 22 … ff``.

    Raises:
        CryptoError: If the key is not 16 bytes.
    """
    return base64.b64encode(aes_key_to_hex(key).encode("ascii")).decode("ascii")


def new_aes_key() -> bytes:
    """A fresh random AES-128 key (one per uploaded file).

    Returns:
        16 bytes from `os.urandom`.
    """
    return os.urandom(AES_KEY_SIZE)


def new_filekey() -> str:
    """A fresh getuploadurl ``filekey``.

    Returns:
        32 lowercase hex characters from 16 random bytes.
    """
    return os.urandom(16).hex()
