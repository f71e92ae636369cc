"""Streaming, encrypted CDN transfers in constant memory (PROTOCOL §6.3-§6.6).

Upload: a first streaming pass over the source gives its size and MD5 (a stream that
cannot be re-read is spooled to a temporary file meanwhile); ``getuploadurl`` gets the
parameters; a second pass encrypts chunk by chunk (AES-128-ECB has no chaining) into the
POST body. At most 3 attempts on 5xx and network errors, with backoff; none on 4xx.

Download: the ciphertext is streamed, decrypted chunk by chunk and written to a
temporary file beside the target, moved into place only when complete and verified;
a size cap is enforced before (advertised size) and during the transfer. An existing
file is never replaced unless asked (a free ``name (1).ext`` is taken instead), and
temporary files a crash left behind are cleaned up by the next download there.

CDN URLs carry secret capabilities in their query: no error message here contains one,
and httpx's own exceptions (which may) are not chained into ours.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final, Literal, TypeAlias, final

import attrs
import httpx
import trio

from .. import _wire as w
from .._errors import CdnError
from .._proto.backoff import Backoff
from .._util import run_blocking
from ..cdn import check_cdn_host, choose_download_url, choose_upload_url

if TYPE_CHECKING:
    from .endpoints import Endpoints

__all__ = [
    "DEFAULT_MAX_DOWNLOAD",
    "MediaSource",
    "Progress",
    "UploadedMedia",
    "download_media",
    "resolve_target",
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


async def download_media(
    endpoints: Endpoints,
    media: w.CDNMedia,
    *,
    aes_key_hex: str | None = None,
    require_key: bool = False,
    advertised_size: int | None = None,
    expected_size: int | None = None,
    to: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    file_name: str = "file.bin",
    max_bytes: int = DEFAULT_MAX_DOWNLOAD,
    progress: Progress | None = None,
) -> Path | bytes:
    """Download and decrypt one CDN object.

    Args:
        media: The CDN reference.
        aes_key_hex: ``image_item.aeskey`` for images.
        require_key: Refuse to download without a key (VIDEO, FILE and VOICE items:
            the reference skips them, as their bytes would come back undecrypted).
        advertised_size: The size the message announced, checked against the cap
            before anything is fetched.
        expected_size: The exact plaintext size, when known (``file_item.len``),
            checked against the result.
        to: Where to save: see `resolve_target`; ``None`` returns the bytes.
        overwrite: Replace an existing file of the chosen name instead of picking a
            free name beside it.
        file_name: The (already sanitised) name used when ``to`` is a directory.
        max_bytes: Size cap; larger objects fail before or during the transfer.

    Returns:
        The path written (which may differ from ``to``, see `resolve_target`),
        or the bytes.

    Raises:
        CdnError: HTTP failure, an HTML answer, too large, size mismatch, a missing or
            malformed key, bad padding.
        OSError: The file cannot be written locally.

    Cancellation:
        Safe: the temporary file is removed; nothing appears under the final name.
    """
    from ..crypto import AesEcbDecryptor, CryptoError, image_key

    for announced in (advertised_size, expected_size):
        if announced is not None and announced > max_bytes:
            raise CdnError(f"media of {announced} bytes exceeds the {max_bytes}-byte cap")
    url = choose_download_url(
        endpoints.cdn_base_url,
        encrypt_query_param=media.encrypt_query_param,
        full_url=media.full_url,
    )
    check_cdn_host(url, endpoints.cdn_hosts)
    try:
        key = image_key(aes_key_hex, media.aes_key)  # hex aeskey first, then media.aes_key
    except CryptoError as exc:
        raise CdnError(f"cannot decrypt the media: {exc}") from None
    if key is None and require_key:
        raise CdnError("the media has no aes_key: not downloaded (it would stay encrypted)")
    decryptor = AesEcbDecryptor(key) if key is not None else None
    target = await resolve_target(to, file_name)
    sink = _Sink(target, overwrite=overwrite)
    try:
        async with endpoints.cdn_http.stream("GET", url) as response:
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


#: Temporary download files (``tempfile.mkstemp(prefix=".part-")``: 8 random characters).
_PART_RE = re.compile(r"\.part-[a-z0-9_]{8}")
#: A temporary file untouched for this long (seconds) is left over from a crash.
STALE_PART_AGE: Final = 60.0
_SEPARATORS = tuple(sep for sep in (os.sep, os.altsep, "/") if sep)


async def resolve_target(to: str | os.PathLike[str] | None, file_name: str) -> Path | None:
    """Where a download is written, before free-name selection at commit time.

    - ``None``: nowhere (the bytes are returned).
    - A path ending in a separator (``"inbox/"``) is a directory and is created if
      missing; an existing directory is used as such. Either way the file is
      ``file_name`` inside it.
    - Anything else is the file path itself (its directory must exist).

    In the chosen directory, temporary ``.part-*`` files of ours that nobody has
    written for `STALE_PART_AGE` seconds (left behind by a crash or a kill) are
    removed; younger ones may belong to a download in progress and are kept.

    Args:
        to: The caller's ``to=``.
        file_name: The safe name to use inside a directory.

    Returns:
        The target path, or ``None``.

    Raises:
        OSError: The directory cannot be created.

    Cancellation:
        Safe.
    """
    if to is None:
        await trio.lowlevel.checkpoint()
        return None
    text = os.fspath(to)
    path = Path(text)
    if text.endswith(_SEPARATORS):
        await run_blocking(partial(path.mkdir, parents=True, exist_ok=True))
        target = path / file_name
    elif await run_blocking(path.is_dir):
        target = path / file_name
    else:
        target = path
    await run_blocking(_remove_stale_parts, target.parent, time.time())
    return target


def _remove_stale_parts(directory: Path, now: float) -> int:
    """Delete our temporary files older than `STALE_PART_AGE`; returns how many."""
    removed = 0
    try:
        entries = os.scandir(directory)
    except OSError:
        return 0
    with entries:
        for entry in entries:
            if not _PART_RE.fullmatch(entry.name):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and now - info.st_mtime > STALE_PART_AGE:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:  # gone meanwhile, or not ours to delete
                continue
    if removed:
        log.info("removed %d stale temporary download file(s)", removed)
    return removed


def _free_names(target: Path) -> Iterator[Path]:
    """``name.ext``, then ``name (1).ext``, ``name (2).ext``, ... (at most 10,000)."""
    yield target
    for n in range(1, 10_000):
        yield target.with_name(f"{target.stem} ({n}){target.suffix}")


def _place(temp: Path, target: Path, *, overwrite: bool) -> Path:
    """Move the finished temp file to ``target``, or to a free name beside it.

    A free name is claimed atomically (a hard link, or an exclusive create where the
    file system has no hard links), so two downloads never take the same name and an
    existing file, directory or symlink is never replaced unless ``overwrite``.
    """
    if overwrite and not target.is_dir():
        os.replace(temp, target)
        return target
    for candidate in _free_names(target):
        try:
            os.link(temp, candidate)
        except FileExistsError:
            continue
        except OSError:  # no hard links here: reserve the name, then move onto it
            try:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                continue
            os.replace(temp, candidate)
            return candidate
        os.unlink(temp)
        return candidate
    raise FileExistsError(f"no free file name next to {target.name}")


@final
class _Sink:
    """Collects plaintext in memory, or in a temp file moved into place on commit."""

    def __init__(self, target: Path | None, *, overwrite: bool = False) -> None:
        self.target = target
        self.overwrite = overwrite
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
            await run_blocking(self._file.write, data)

    async def commit(self) -> Path | bytes:
        if self.target is None:
            return bytes(self._buffer)
        await self.write(b"")  # creates the file for empty media
        assert self._file is not None
        assert self._temp is not None
        self._file.close()
        self._file = None
        placed = _place(self._temp, self.target, overwrite=self.overwrite)
        self._temp = None
        return placed

    async def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None
        await trio.lowlevel.checkpoint_if_cancelled()
