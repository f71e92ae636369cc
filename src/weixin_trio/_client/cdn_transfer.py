"""Streaming, encrypted CDN uploads in constant memory (PROTOCOL §6.3-§6.4).

Upload: a first streaming pass over the source gives its size and MD5 (a stream that
cannot be re-read is spooled to a temporary file meanwhile); ``getuploadurl`` gets the
parameters; a second pass encrypts chunk by chunk (AES-128-ECB has no chaining) into the
POST body. At most 3 attempts on 5xx and network errors, with backoff; none on 4xx.

Downloads are in ``cdn_download``.

CDN URLs carry secret capabilities in their query: no error message here contains one,
and httpx's own exceptions (which may) are not chained into ours.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, TypeAlias, final

import attrs
import trio

from .. import _wire as w
from .._errors import CdnError
from .._proto.backoff import Backoff
from .._util import run_blocking
from ..cdn import check_cdn_host, choose_upload_url

if TYPE_CHECKING:
    from .endpoints import Endpoints

__all__ = [
    "MediaSource",
    "Progress",
    "UploadedMedia",
    "upload_media",
]

log = logging.getLogger("weixin_trio.cdn")

CHUNK: Final = 256 * 1024
UPLOAD_ATTEMPTS: Final = 3

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


def _open_unbuffered(path: str | os.PathLike[str], mode: Literal["rb", "wb"]) -> io.FileIO:
    return io.FileIO(path, mode.replace("b", ""))


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
            f = await run_blocking(_open_unbuffered, name, "wb")
            with f:
                async for chunk in stream:
                    digest.update(chunk)
                    src.size += len(chunk)
                    await run_blocking(f.write, chunk)
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
        f = await run_blocking(_open_unbuffered, self.path, "rb")
        with f:
            while not exact or left > 0:
                chunk = await run_blocking(f.read, min(CHUNK, left) if exact else CHUNK)
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
            if exact:
                grew: bytes | None = await run_blocking(f.read, 1)
                if left != 0 or grew:
                    raise CdnError("the file changed size during the upload")

    def close(self) -> None:
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None


async def _encrypted_body(
    source: _Source, key: bytes, progress: Progress | None, total: int
) -> AsyncIterator[bytes]:
    from ..crypto import AesEcbEncryptor

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
    endpoints: Endpoints,
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
    from ..crypto import (
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
        resp = await endpoints.get_upload_url(
            w.GetUploadUrlReq(
                filekey=filekey,
                media_type=media_type,
                to_user_id=to,
                rawsize=src.size,
                rawfilemd5=src.md5,
                filesize=filesize,
                aeskey=aes_key_to_hex(key),
                base_info=endpoints.base_info,
                no_need_thumb=True,
            )
        )
        url = choose_upload_url(
            endpoints.cdn_base_url,
            upload_full_url=resp.upload_full_url,
            upload_param=resp.upload_param,
            filekey=filekey,
        )
        check_cdn_host(url, endpoints.cdn_hosts)
        param = await _post_with_retries(endpoints, url, src, key, filesize, progress)
    finally:
        src.close()
    media = w.CDNMedia(
        encrypt_query_param=param, aes_key=encode_aes_key_for_media(key), encrypt_type=1
    )
    return UploadedMedia(media, src.size, filesize, src.md5, src.name)


async def _post_with_retries(
    endpoints: Endpoints,
    url: str,
    src: _Source,
    key: bytes,
    filesize: int,
    progress: Progress | None,
) -> str:
    import httpx  # imported when media moves: a text-only bot never imports httpx

    backoff = Backoff(retry_delay=1.0, backoff_delay=2.0, max_failures=UPLOAD_ATTEMPTS)
    last: CdnError | None = None
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(filesize)}
        try:
            response = await endpoints.cdn_http.post(
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
