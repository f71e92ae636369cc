"""Streaming, encrypted CDN transfers in constant memory (PROTOCOL §6.3-§6.6).

Upload: a first streaming pass over the source gives its size and MD5 (a stream that
cannot be re-read is spooled to a temporary file meanwhile); ``getuploadurl`` gets the
parameters; a second pass encrypts chunk by chunk (AES-128-ECB has no chaining) into the
POST body. At most 3 attempts on 5xx and network errors, with backoff; none on 4xx.

Download: the ciphertext is streamed, decrypted chunk by chunk and written to a
temporary file beside the target, renamed into place only when complete and verified;
a size cap is enforced before (advertised size) and during the transfer.

CDN URLs carry secret capabilities in their query: no error message here contains one,
and httpx's own exceptions (which may) are not chained into ours.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final, TypeAlias, final

import attrs
import httpx
import trio

from . import _wire as w
from ._backoff import Backoff
from ._errors import CdnError
from .cdn import check_cdn_host, choose_download_url, choose_upload_url

if TYPE_CHECKING:
    from ._api import ILinkClient

__all__ = [
    "DEFAULT_MAX_DOWNLOAD",
    "MediaSource",
    "Progress",
    "UploadedMedia",
    "download_media",
    "upload_media",
]

log = logging.getLogger("weixin_trio.cdn")

CHUNK: Final = 256 * 1024
UPLOAD_ATTEMPTS: Final = 3
DEFAULT_MAX_DOWNLOAD: Final = 100 * 1024 * 1024

#: A path, bytes, or an async iterable of byte chunks.
MediaSource: TypeAlias = (
    "str | os.PathLike[str] | bytes | bytearray | memoryview | AsyncIterable[bytes]"
)
#: ``progress(done_bytes, total_bytes)``, called as a transfer advances.
Progress: TypeAlias = Callable[[int, int], None]


@attrs.frozen
class UploadedMedia:
    """A finished upload: what a media item needs.

    Attributes:
        media: The ``CDNMedia`` to put in the item (download parameter, form-B key).
        rawsize: Plaintext size.
        filesize: Ciphertext size.
        md5: Plaintext MD5 (hex).
        file_name: Base name of the source, when it had one.
    """

    media: w.CDNMedia
    rawsize: int
    filesize: int
    md5: str
    file_name: str | None


@final
class _Source:
    """A re-readable view of an upload source with known size and MD5."""

    def __init__(self, path: Path | None, data: bytes | None, name: str | None) -> None:
        self.path = path
        self.data = data
        self.name = name
        self.size = 0
        self.md5 = ""
        self._temp: Path | None = None

    @classmethod
    async def open(cls, source: MediaSource, file_name: str | None) -> _Source:
        if isinstance(source, bytes | bytearray | memoryview):
            src = cls(None, bytes(source), file_name)
            src.size = len(src.data or b"")
            src.md5 = hashlib.md5(src.data or b"", usedforsecurity=False).hexdigest()
            return src
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            src = cls(path, None, file_name or path.name)
            digest = hashlib.md5(usedforsecurity=False)
            async for chunk in src.chunks():
                digest.update(chunk)
                src.size += len(chunk)
            src.md5 = digest.hexdigest()
            return src
        return await cls._spool(source, file_name)

    @classmethod
    async def _spool(cls, stream: AsyncIterable[bytes], file_name: str | None) -> _Source:
        fd, name = tempfile.mkstemp(prefix="weixin-trio-upload-")
        os.close(fd)
        src = cls(Path(name), None, file_name)
        src._temp = src.path
        digest = hashlib.md5(usedforsecurity=False)
        try:
            async with await trio.open_file(name, "wb") as f:
                async for chunk in stream:
                    digest.update(chunk)
                    src.size += len(chunk)
                    await f.write(chunk)
        except BaseException:
            src.close()
            raise
        src.md5 = digest.hexdigest()
        return src

    async def chunks(self, *, exact: bool = False) -> AsyncIterator[bytes]:
        """The content in chunks; with ``exact``, exactly ``size`` bytes or a CdnError."""
        if self.data is not None:
            for start in range(0, len(self.data), CHUNK):
                yield self.data[start : start + CHUNK]
            await trio.lowlevel.checkpoint()
            return
        assert self.path is not None
        left = self.size
        async with await trio.open_file(self.path, "rb") as f:
            while not exact or left > 0:
                chunk = await f.read(min(CHUNK, left) if exact else CHUNK)
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
            if exact and (left != 0 or await f.read(1)):
                raise CdnError("the file changed size during the upload")

    def close(self) -> None:
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None


async def _encrypted_body(
    source: _Source, key: bytes, progress: Progress | None, total: int
) -> AsyncIterator[bytes]:
    from .crypto import AesEcbEncryptor

    encryptor = AesEcbEncryptor(key)
    sent = 0
    async for chunk in source.chunks(exact=True):
        out = encryptor.update(chunk)
        sent += len(out)
        if progress is not None:
            progress(sent, total)
        yield out
    if encryptor.bytes_in != source.size:
        raise CdnError("the file changed size during the upload")
    tail = encryptor.finalize()
    sent += len(tail)
    if progress is not None:
        progress(sent, total)
    yield tail


async def upload_media(
    client: ILinkClient,
    to: str,
    source: MediaSource,
    *,
    media_type: w.UploadMediaType,
    file_name: str | None = None,
    progress: Progress | None = None,
) -> UploadedMedia:
    """Encrypt and upload ``source`` to the CDN for a message to ``to``.

    Raises:
        CdnError: The CDN refused or failed the upload (after retries for 5xx/network).
        ApiError: ``getuploadurl`` failed.

    Cancellation:
        Safe: an interrupted upload leaves an orphan object on the CDN at most.
    """
    from .crypto import (
        aes_ecb_padded_size,
        aes_key_to_hex,
        encode_aes_key_for_media,
        new_aes_key,
        new_filekey,
    )

    src = await _Source.open(source, file_name)
    try:
        key, filekey = new_aes_key(), new_filekey()
        filesize = aes_ecb_padded_size(src.size)
        resp = await client.get_upload_url(
            w.GetUploadUrlReq(
                filekey=filekey,
                media_type=media_type,
                to_user_id=to,
                rawsize=src.size,
                rawfilemd5=src.md5,
                filesize=filesize,
                aeskey=aes_key_to_hex(key),
                base_info=client.base_info,
                no_need_thumb=True,
            )
        )
        url = choose_upload_url(
            client.cdn_base_url,
            upload_full_url=resp.upload_full_url,
            upload_param=resp.upload_param,
            filekey=filekey,
        )
        check_cdn_host(url, client.cdn_hosts)
        param = await _post_with_retries(client, url, src, key, filesize, progress)
    finally:
        src.close()
    media = w.CDNMedia(
        encrypt_query_param=param, aes_key=encode_aes_key_for_media(key), encrypt_type=1
    )
    return UploadedMedia(media, src.size, filesize, src.md5, src.name)


async def _post_with_retries(
    client: ILinkClient,
    url: str,
    src: _Source,
    key: bytes,
    filesize: int,
    progress: Progress | None,
) -> str:
    backoff = Backoff(retry_delay=1.0, backoff_delay=2.0, max_failures=UPLOAD_ATTEMPTS)
    last: CdnError | None = None
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(filesize)}
        try:
            response = await client.cdn_http.post(
                url, content=_encrypted_body(src, key, progress, filesize), headers=headers
            )
        except httpx.HTTPError as exc:
            last = CdnError(f"CDN upload failed: {type(exc).__name__}")
        else:
            if 400 <= response.status_code < 500:
                reason = response.headers.get("x-error-message") or response.reason_phrase
                raise CdnError(
                    f"CDN upload refused: HTTP {response.status_code} {reason}",
                    status_code=response.status_code,
                )
            if response.status_code == 200:
                param = response.headers.get("x-encrypted-param")
                if param:
                    return str(param)
                raise CdnError("CDN upload answered 200 without x-encrypted-param", status_code=200)
            last = CdnError(
                f"CDN upload failed: HTTP {response.status_code}", status_code=response.status_code
            )
        log.warning("CDN upload attempt %d/%d failed: %s", attempt, UPLOAD_ATTEMPTS, last)
        if attempt < UPLOAD_ATTEMPTS:
            await trio.sleep(backoff.next_delay())
    assert last is not None
    raise last


async def download_media(
    client: ILinkClient,
    media: w.CDNMedia,
    *,
    aes_key_hex: str | None = None,
    advertised_size: int | None = None,
    expected_size: int | None = None,
    to: str | os.PathLike[str] | None = None,
    file_name: str = "file.bin",
    max_bytes: int = DEFAULT_MAX_DOWNLOAD,
    progress: Progress | None = None,
) -> Path | bytes:
    """Download and decrypt one CDN object.

    Args:
        media: The CDN reference.
        aes_key_hex: ``image_item.aeskey`` for images.
        advertised_size: The size the message announced, checked against the cap
            before anything is fetched.
        expected_size: The exact plaintext size, when known (``file_item.len``),
            checked against the result.
        to: A directory (the safe ``file_name`` is used inside it), a file path, or
            ``None`` to return the bytes.
        file_name: The (already sanitised) name used when ``to`` is a directory.
        max_bytes: Size cap; larger objects fail before or during the transfer.

    Raises:
        CdnError: HTTP failure, an HTML answer, too large, size mismatch, bad padding.

    Cancellation:
        Safe: the temporary file is removed; nothing appears under the final name.
    """
    from .crypto import AesEcbDecryptor, CryptoError, image_key

    for announced in (advertised_size, expected_size):
        if announced is not None and announced > max_bytes:
            raise CdnError(f"media of {announced} bytes exceeds the {max_bytes}-byte cap")
    url = choose_download_url(
        client.cdn_base_url,
        encrypt_query_param=media.encrypt_query_param,
        full_url=media.full_url,
    )
    check_cdn_host(url, client.cdn_hosts)
    key = image_key(aes_key_hex, media.aes_key)  # hex aeskey first, then media.aes_key
    decryptor = AesEcbDecryptor(key) if key is not None else None
    target = _target_path(to, file_name)
    sink = _Sink(target)
    try:
        async with client.cdn_http.stream("GET", url) as response:
            if response.status_code != 200:
                raise CdnError(
                    f"CDN download failed: HTTP {response.status_code}",
                    status_code=response.status_code,
                )
            if "text/html" in response.headers.get("content-type", ""):
                raise CdnError("CDN answered HTML instead of the media", status_code=200)
            header = response.headers.get("content-length", "")
            length = int(header) if header.isascii() and header.isdigit() else 0
            if length > max_bytes + 16:
                raise CdnError(f"media of {length} bytes exceeds the {max_bytes}-byte cap")
            received = 0
            async for chunk in response.aiter_raw(CHUNK):
                received += len(chunk)
                if received > max_bytes + 16:
                    raise CdnError(f"media exceeds the {max_bytes}-byte cap")
                await sink.write(decryptor.update(chunk) if decryptor else chunk)
                if progress is not None:
                    progress(received, length)
            if decryptor is not None:
                await sink.write(decryptor.finalize())
        if expected_size is not None and sink.size != expected_size:
            raise CdnError(f"downloaded {sink.size} bytes, the message said {expected_size}")
        return await sink.commit()
    except CryptoError as exc:
        await sink.discard()
        raise CdnError(f"cannot decrypt the media: {exc}") from None
    except httpx.HTTPError as exc:
        await sink.discard()
        raise CdnError(f"CDN download failed: {type(exc).__name__}") from None
    except BaseException:
        await sink.discard()
        raise


def _target_path(to: str | os.PathLike[str] | None, file_name: str) -> Path | None:
    if to is None:
        return None
    path = Path(to)
    return path / file_name if path.is_dir() else path


@final
class _Sink:
    """Collects plaintext in memory, or in a temp file renamed into place on commit."""

    def __init__(self, target: Path | None) -> None:
        self.target = target
        self.size = 0
        self._buffer = bytearray()
        self._file: BinaryIO | None = None
        self._temp: Path | None = None

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.target is None:
            self._buffer += data
            return
        if self._file is None:
            fd, name = tempfile.mkstemp(prefix=".part-", dir=self.target.parent)
            self._temp = Path(name)
            self._file = os.fdopen(fd, "wb")
        if data:
            await trio.to_thread.run_sync(self._file.write, data)

    async def commit(self) -> Path | bytes:
        if self.target is None:
            return bytes(self._buffer)
        await self.write(b"")  # creates the file for empty media
        assert self._file is not None
        assert self._temp is not None
        self._file.close()
        self._file = None
        os.replace(self._temp, self.target)
        self._temp = None
        return self.target

    async def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None
        await trio.lowlevel.checkpoint_if_cancelled()
