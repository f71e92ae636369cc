"""A user's workspace: its directory, the agent's file access, the prompt's content blocks.

The agent reads and writes text files only inside the workspace (``fs/read_text_file``,
``fs/write_text_file``); any other path is a JSON-RPC error. Media of a message are
downloaded into ``<workspace>/inbox/`` and given to the agent as ``resource_link``
blocks; images also go inline as ``image`` blocks.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import AcpError
from .._proto.media_kind import MediaKind
from .._proto.media_sniff import sniff_mime
from .._util import run_blocking
from ..media import mime_from_filename
from .jsonrpc import INVALID_PARAMS

if TYPE_CHECKING:
    from .._client.message import Message

__all__ = ["confine", "prompt_blocks", "read_text_file", "user_workspace", "write_text_file"]

#: Largest text file the agent may read through the bridge.
MAX_READ = 16 * 1024 * 1024


def user_workspace(root: Path, account: str, user: str) -> Path:
    """``<root>/<account>/<hash of user>``: a stable name that reveals no user id."""
    digest = hashlib.sha256(user.encode()).hexdigest()[:16]
    safe_account = "".join(c if c.isalnum() or c in "-_." else "_" for c in account)
    return root / safe_account / digest


def confine(workspace: Path, path: object) -> Path:
    """``path`` if it is absolute and inside ``workspace`` (symlinks resolved).

    Raises:
        AcpError: It is not (code -32602).
    """
    if not isinstance(path, str) or not Path(path).is_absolute():
        raise AcpError("the path must be absolute", code=INVALID_PARAMS)
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(workspace.resolve()):
        raise AcpError("the path is outside the workspace", code=INVALID_PARAMS)
    return resolved


def _params(params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise AcpError("params must be an object", code=INVALID_PARAMS)
    return params


async def read_text_file(workspace: Path, params: Any) -> dict[str, Any]:
    """``fs/read_text_file``: ``{"content"}``, from ``line`` (1-based) for ``limit`` lines.

    Cancellation:
        Safe (the read runs in a worker thread).
    """
    params = _params(params)
    path = confine(workspace, params.get("path"))
    line = params.get("line")
    limit = params.get("limit")

    def read() -> str:
        if path.stat().st_size > MAX_READ:
            raise AcpError("the file is too large", code=INVALID_PARAMS)
        text = path.read_text(encoding="utf-8", errors="replace")
        if line is None and limit is None:
            return text
        lines = text.splitlines(keepends=True)
        start = max(int(line or 1) - 1, 0)
        end = None if limit is None else start + int(limit)
        return "".join(lines[start:end])

    try:
        return {"content": await run_blocking(read)}
    except OSError as exc:
        raise AcpError(f"cannot read the file: {exc.strerror}", code=INVALID_PARAMS) from None


async def write_text_file(workspace: Path, params: Any) -> dict[str, Any]:
    """``fs/write_text_file``: write ``content`` (parent directories are created).

    Cancellation:
        The write may or may not have happened.
    """
    params = _params(params)
    path = confine(workspace, params.get("path"))
    content = params.get("content")
    if not isinstance(content, str):
        raise AcpError("content must be a string", code=INVALID_PARAMS)

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")

    try:
        await run_blocking(write)
    except OSError as exc:
        raise AcpError(f"cannot write the file: {exc.strerror}", code=INVALID_PARAMS) from None
    return {}


async def prompt_blocks(msg: Message, workspace: Path) -> list[dict[str, Any]]:
    """The ``session/prompt`` content of ``msg``: text, images inline, files as links.

    Raises:
        CdnError: A download failed.

    Cancellation:
        Safe: no partial file is left under its final name.
    """
    blocks: list[dict[str, Any]] = []
    text = msg.text or msg.voice_text or ""
    if text:
        blocks.append({"type": "text", "text": text})
    inbox = workspace / "inbox"
    for media in msg.media:
        if not media.downloadable:
            continue
        if media.kind is MediaKind.IMAGE:
            data = await msg.download(media)
            assert isinstance(data, bytes)
            mime = sniff_mime(data[:64]) or "image/jpeg"
            blocks.append(
                {"type": "image", "data": base64.b64encode(data).decode(), "mimeType": mime}
            )
            continue
        await run_blocking(lambda: inbox.mkdir(parents=True, exist_ok=True))
        path = await msg.download(media, to=inbox)
        assert isinstance(path, Path)
        size = await run_blocking(os.path.getsize, path)
        blocks.append(
            {
                "type": "resource_link",
                "uri": path.resolve().as_uri(),
                "name": path.name,
                "mimeType": mime_from_filename(path.name),
                "size": size,
            }
        )
    if not blocks:
        blocks.append({"type": "text", "text": "(an empty message)"})
    return blocks
