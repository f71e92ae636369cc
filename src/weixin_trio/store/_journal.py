"""Sans-IO journal: the records a store writes and the state they add up to.

Both stores use it: ``MemoryStore`` applies records directly, ``FileStore`` appends
them as JSON lines and replays them on load. Records::

    {"t": "a", "c": cursor, "m": [{"id": .., "raw": {..}}], "x": {user: token}}  accept
    {"t": "d", "ids": [..]}                                                      done
    {"t": "f", "id": .., "n": attempts}                                         failure
    {"t": "x", "id": ..}                                                        dead-lettered
    {"t": "o", "id": .., "u": user, "s": text, "at": time}                      outbox put
    {"t": "s", "id": ..}                                                        outbox sent

Every record is written by `encode_json`: ASCII-only JSON, so any Python string
(a lone surrogate such as ``"\\ud800"`` included) is written as an escape and read back
as the same string.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import UnencodableError
from .._proto.quarantine import encode_json
from ._base import AccountState, DeadLetter, JournalEntry, OutboxEntry

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "DEFAULT_SEEN_WINDOW",
    "JournalState",
    "UnencodableError",
    "accept_record",
    "dead_record",
    "done_record",
    "encode_json",
    "failure_record",
    "outbox_put_record",
    "outbox_remove_record",
]

#: How many recently accepted message ids are remembered for dedupe.
DEFAULT_SEEN_WINDOW = 10_000


def accept_record(
    cursor: str,
    entries: Sequence[JournalEntry],
    context_tokens: Mapping[str, str],
    last_inbound: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The record of one accepted batch."""
    record: dict[str, Any] = {
        "t": "a",
        "c": cursor,
        "m": [{"id": e.message_id, "raw": e.raw, "n": e.attempts} for e in entries],
        "x": dict(context_tokens),
    }
    if last_inbound:
        record["w"] = dict(last_inbound)
    return record


def outbox_put_record(entry: OutboxEntry) -> dict[str, Any]:
    """The record of a queued text."""
    return {
        "t": "o",
        "id": entry.entry_id,
        "u": entry.user_id,
        "s": entry.text,
        "at": entry.queued_at,
    }


def outbox_remove_record(entry_id: str) -> dict[str, Any]:
    """The record of a queued text that was sent."""
    return {"t": "s", "id": entry_id}


def done_record(message_ids: Sequence[int]) -> dict[str, Any]:
    """The record of finished messages."""
    return {"t": "d", "ids": list(message_ids)}


def failure_record(message_id: int, attempts: int) -> dict[str, Any]:
    """The record of a failed handler attempt."""
    return {"t": "f", "id": message_id, "n": attempts}


def dead_record(message_id: int) -> dict[str, Any]:
    """The record of a dead-lettered message (the letter itself is stored apart)."""
    return {"t": "x", "id": message_id}


@attrs.define
class JournalState:
    """The state that a sequence of records adds up to."""

    window: int = DEFAULT_SEEN_WINDOW
    cursor: str = ""
    pending: dict[int, JournalEntry] = attrs.field(factory=dict)
    seen: deque[int] = attrs.field(init=False)
    context_tokens: dict[str, str] = attrs.field(factory=dict)
    dead_letters: list[DeadLetter] = attrs.field(factory=list)
    last_inbound: dict[str, float] = attrs.field(factory=dict)
    outbox: dict[str, OutboxEntry] = attrs.field(factory=dict)
    records: int = 0

    def __attrs_post_init__(self) -> None:
        self.seen = deque(maxlen=self.window)

    def apply(self, record: Mapping[str, Any]) -> None:
        """Apply one record.

        Raises:
            ValueError: The record is not one of the known shapes.
        """
        kind = record.get("t")
        self.records += 1
        if kind == "a":
            self.cursor = str(record["c"])
            for m in record["m"]:
                mid = int(m["id"])
                self.pending[mid] = JournalEntry(mid, m["raw"], int(m.get("n", 0)))
                self.seen.append(mid)
            self.context_tokens.update(record.get("x") or {})
            for user, at in (record.get("w") or {}).items():
                self.last_inbound[user] = max(float(at), self.last_inbound.get(user, 0.0))
        elif kind == "o":
            queued = OutboxEntry(
                str(record["id"]), str(record["u"]), str(record["s"]), float(record["at"])
            )
            self.outbox[queued.entry_id] = queued
        elif kind == "s":
            self.outbox.pop(str(record["id"]), None)
        elif kind == "d":
            for mid in record["ids"]:
                self.pending.pop(int(mid), None)
        elif kind == "f":
            mid = int(record["id"])
            entry = self.pending.get(mid)
            if entry is not None:
                self.pending[mid] = attrs.evolve(entry, attempts=int(record["n"]))
        elif kind == "x":
            self.pending.pop(int(record["id"]), None)
        else:
            raise ValueError(f"unknown journal record type {kind!r}")

    def to_state(self) -> AccountState:
        """An immutable view for ``Store.load``."""
        return AccountState(
            cursor=self.cursor,
            pending=tuple(self.pending.values()),
            seen_ids=tuple(self.seen),
            context_tokens=dict(self.context_tokens),
            dead_letters=tuple(self.dead_letters),
            last_inbound=dict(self.last_inbound),
            outbox=tuple(self.outbox.values()),
        )

    def snapshot(self) -> dict[str, Any]:
        """Everything but dead letters, as JSON-ready data (for compaction)."""
        return {
            "version": 1,
            "cursor": self.cursor,
            "pending": [
                {"id": e.message_id, "raw": dict(e.raw), "n": e.attempts}
                for e in self.pending.values()
            ],
            "seen": list(self.seen),
            "context_tokens": dict(self.context_tokens),
            "last_inbound": dict(self.last_inbound),
            "outbox": [outbox_put_record(e) for e in self.outbox.values()],
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any], *, window: int) -> JournalState:
        """Rebuild from `snapshot` output.

        Raises:
            ValueError: Unknown version or shape.
        """
        if data.get("version") != 1:
            raise ValueError(f"unsupported snapshot version {data.get('version')!r}")
        state = cls(window=window, cursor=str(data["cursor"]))
        for m in data["pending"]:
            mid = int(m["id"])
            state.pending[mid] = JournalEntry(mid, m["raw"], int(m.get("n", 0)))
        state.seen.extend(int(i) for i in data["seen"])
        state.context_tokens.update(data["context_tokens"])
        state.last_inbound.update(data.get("last_inbound") or {})
        for record in data.get("outbox") or []:
            state.apply(record)
        state.records = 0
        return state
