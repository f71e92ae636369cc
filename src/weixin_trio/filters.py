"""Typed filters for [`Router`][weixin_trio.Router] routes, combined with ``&``, ``|``, ``~``.

```python
from weixin_trio import filters

admins = filters.from_user("alice@im.wechat", "bob@im.wechat")
wanted = admins & filters.is_private & ~filters.is_command()
```

A filter is a cheap synchronous test of one [`Message`][weixin_trio.Message]; wrap any
``(Message) -> bool`` in [`Filter`][weixin_trio.filters.Filter] to combine it with the
others.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, final

from ._proto.commands import parse_command
from ._proto.media_kind import MediaKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._client.message import Message

__all__ = [
    "Filter",
    "from_user",
    "has_media",
    "in_group",
    "is_command",
    "is_group",
    "is_private",
    "media_kind",
    "text_matches",
]


@final
class Filter:
    """A predicate over messages; ``a & b``, ``a | b`` and ``~a`` make new filters.

    Args:
        predicate: ``(Message) -> bool``; its result is taken as a truth value.
        name: Shown by ``repr`` (default: the predicate's name).
    """

    __slots__ = ("_name", "_predicate")

    def __init__(self, predicate: Callable[[Message], object], *, name: str | None = None) -> None:
        if not callable(predicate):
            raise TypeError(f"a filter needs a callable, not {type(predicate).__name__}")
        self._predicate = predicate
        self._name = name or getattr(predicate, "__name__", None) or repr(predicate)

    def __call__(self, message: Message) -> bool:
        """Whether ``message`` passes."""
        return bool(self._predicate(message))

    def __and__(self, other: Filter | Callable[[Message], object]) -> Filter:
        right = as_filter(other)
        return Filter(lambda m: self(m) and right(m), name=f"({self!r} & {right!r})")

    def __or__(self, other: Filter | Callable[[Message], object]) -> Filter:
        right = as_filter(other)
        return Filter(lambda m: self(m) or right(m), name=f"({self!r} | {right!r})")

    def __invert__(self) -> Filter:
        return Filter(lambda m: not self(m), name=f"~{self!r}")

    def __repr__(self) -> str:
        return self._name


def as_filter(value: Filter | Callable[[Message], object]) -> Filter:
    """``value`` itself if it is a [`Filter`][weixin_trio.filters.Filter], else wrapped in one."""
    return value if isinstance(value, Filter) else Filter(value)


def from_user(*user_ids: str) -> Filter:
    """Messages sent by one of ``user_ids`` (``...@im.wechat``)."""
    wanted = frozenset(user_ids)
    return Filter(lambda m: m.from_user_id in wanted, name=f"from_user{tuple(sorted(wanted))}")


def in_group(*group_ids: str) -> Filter:
    """Messages from one of the groups ``group_ids``; with none given, from any group."""
    if not group_ids:
        return is_group
    wanted = frozenset(group_ids)
    return Filter(lambda m: m.group_id in wanted, name=f"in_group{tuple(sorted(wanted))}")


#: Messages from a group chat (they carry a ``group_id``).
is_group = Filter(lambda m: bool(m.group_id), name="is_group")
#: Messages from a one-to-one chat (no ``group_id``).
is_private = Filter(lambda m: not m.group_id, name="is_private")


def text_matches(pattern: str | re.Pattern[str]) -> Filter:
    """Messages whose text contains a match of ``pattern`` (``re.search``)."""
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    return Filter(
        lambda m: regex.search(m.text) is not None, name=f"text_matches({regex.pattern!r})"
    )


def media_kind(kind: MediaKind | str) -> MediaKind:
    """``kind`` as a [`MediaKind`][weixin_trio.media.MediaKind]; a name is case-insensitive.

    Raises:
        ValueError: ``kind`` names no media kind.
    """
    if isinstance(kind, MediaKind):
        return kind
    try:
        return MediaKind[kind.upper()]
    except KeyError:
        names = ", ".join(k.name.lower() for k in MediaKind)
        raise ValueError(f"unknown media kind {kind!r} (one of {names})") from None


def has_media(kind: MediaKind | str | None = None) -> Filter:
    """Messages with a media item of ``kind`` (a `MediaKind` or its name); any if ``None``."""
    if kind is None:
        return Filter(lambda m: bool(m.media), name="has_media()")
    wanted = media_kind(kind)
    return Filter(
        lambda m: any(ref.kind is wanted for ref in m.media), name=f"has_media({wanted.name})"
    )


def is_command(*names: str) -> Filter:
    """Messages that are slash commands named one of ``names`` (any command if none)."""
    wanted = frozenset(name.casefold().lstrip("/\uff0f") for name in names)

    def test(message: Message) -> bool:
        command = parse_command(message.text)
        return command is not None and (not wanted or command.name in wanted)

    return Filter(test, name=f"is_command{tuple(sorted(wanted))}")
