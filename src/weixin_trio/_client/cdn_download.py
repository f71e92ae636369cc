"""Streaming, decrypting CDN downloads in constant memory (PROTOCOL §6.5-§6.6).

The ciphertext is streamed, decrypted chunk by chunk and written to a temporary file
beside the target, moved into place only when complete and verified; a size cap is
enforced before (advertised size) and during the transfer. An existing file is never
replaced unless asked (a free ``name (1).ext`` is taken instead), and temporary files a
crash left behind are cleaned up by the next download there.

CDN URLs carry secret capabilities in their query: no error message here contains one,
and httpx's own exceptions (which may) are not chained into ours.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final, final

import trio

from .._errors import CdnError
from .._util import run_blocking
from ..cdn import DEFAULT_MAX_DOWNLOAD, check_cdn_host, choose_download_url
from .cdn_transfer import CHUNK, Progress

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .. import _wire as w
    from .endpoints import Endpoints

__all__ = ["DEFAULT_MAX_DOWNLOAD", "download_media", "resolve_target"]

log = logging.getLogger("weixin_trio.cdn")


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
    import httpx  # imported when media moves: a text-only bot never imports httpx

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
