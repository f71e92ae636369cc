"""Reading an account directory of a `FileStore` (snapshot, journal, dead letters)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from typing import TYPE_CHECKING, Any, TypeVar

from ._base import (
    DeadLetter,
    StoreError,
)
from ._journal import (
    JournalState,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["account_key"]

log = logging.getLogger("weixin_trio.store")

T = TypeVar("T")
_SNAPSHOT = "snapshot.json"
_DEAD = "dead-letters.jsonl"
_ACCOUNT = "account.json"
_LOCK = "lock"
_JOURNAL_RE = re.compile(r"^journal-(\d+)\.log$")


def account_key(account: str) -> str:
    """A file-system-safe directory name for an account id.

    ``abc@im.bot`` becomes ``abc-im-bot`` (the reference's rule); any other character
    outside ``[a-z0-9_-]`` is replaced and a short hash keeps distinct ids distinct.
    """
    base = account.replace("@", "-").replace(".", "-")
    safe = re.sub(r"[^a-z0-9_-]", "_", base.lower())[:80].strip("-_") or "account"
    if safe != base:
        safe += "-" + hashlib.sha256(account.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return safe


def _complete_lines(data: bytes) -> int:
    """The length of ``data`` up to and including its last newline (0 when none)."""
    return data.rfind(b"\n") + 1


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _file_id(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _parse_object(body: bytes, path: Path) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise StoreError(f"corrupt store file {path}: not valid JSON") from None
    if not isinstance(data, dict):
        raise StoreError(f"corrupt store file {path}: not a JSON object")
    return data


def _dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.message_id,
        "raw": dict(letter.raw),
        "n": letter.attempts,
        "e": letter.error,
        "at": letter.at,
    }


def _parse_dead_letters(body: bytes) -> list[DeadLetter]:
    letters: list[DeadLetter] = []
    seen: set[int] = set()
    for line in body[: _complete_lines(body)].splitlines():
        try:
            d = json.loads(line)
            letter = DeadLetter(int(d["id"]), d["raw"], int(d["n"]), str(d["e"]), float(d["at"]))
        except (ValueError, KeyError, TypeError):
            continue  # unreadable: its message is still pending, so not lost
        if letter.message_id not in seen:  # written again after a failed journal mark
            seen.add(letter.message_id)
            letters.append(letter)
    return letters


class _Loaded:
    """What the files of an account directory add up to (one consistent read)."""

    def __init__(self, state: JournalState, generation: int) -> None:
        self.state = state
        self.generation = generation
        self.records = 0
        self.journal_good = 0  # bytes of complete lines in the journal
        self.journal_size = 0  # bytes in the journal (a torn tail included)
        self.dead_good = 0
        self.dead_size = 0
        self.has_snapshot = False


def _read_account_dir(directory: Path, window: int) -> _Loaded:
    """Read snapshot, journal and dead letters; never writes.

    A concurrent writer may compact between the reads, so the snapshot's identity is
    checked after the journal was read, and the read is repeated when it changed (a
    journal generation is deleted only after a newer snapshot is in place).

    Raises:
        StoreError: A file is corrupt (named by its path).
        OSError: A file could not be read.
    """
    snapshot_path = directory / _SNAPSHOT
    for _ in range(20):
        before = _file_id(snapshot_path)
        snapshot = _read_bytes(snapshot_path)
        state = JournalState(window=window)
        generation = 0
        if snapshot is not None:
            data = _parse_object(snapshot, snapshot_path)
            try:
                state = JournalState.from_snapshot(data, window=window)
                generation = int(data.get("generation", 0))
            except (KeyError, TypeError, ValueError) as exc:
                raise StoreError(f"corrupt snapshot {snapshot_path}: {exc}") from None
        journal_path = directory / f"journal-{generation}.log"
        journal = _read_bytes(journal_path) or b""
        if _file_id(snapshot_path) == before:
            break
    else:
        raise StoreError(f"{directory} kept changing while it was read; try again")
    loaded = _Loaded(state, generation)
    loaded.has_snapshot = snapshot is not None
    loaded.journal_size = len(journal)
    loaded.journal_good = _complete_lines(journal)
    lines = journal[: loaded.journal_good].split(b"\n")
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            state.apply(json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"corrupt journal {journal_path}, line {index + 1}: {exc}") from None
        loaded.records += 1
    dead = _read_bytes(directory / _DEAD) or b""
    loaded.dead_size = len(dead)
    loaded.dead_good = _complete_lines(dead)
    state.dead_letters.extend(_parse_dead_letters(dead))
    for letter in state.dead_letters:  # the dead-letter file is the truth
        state.pending.pop(letter.message_id, None)
    return loaded


def _close_fds(fds: dict[str, int]) -> None:
    """Close every fd in ``fds`` (a lock fd's close releases its lock)."""
    for name in list(fds):
        with contextlib.suppress(OSError):
            os.close(fds.pop(name))
