"""Slash commands in message text: ``/cmd args``, sans-IO.

``parse_command`` accepts ``/name args`` and the full-width ``／name args``, with the
name matched case-insensitively (``str.casefold``), an @-mention before or after the
command (``@bot /cmd``, ``/cmd@bot``, as group chats send them), and whitespace,
including the full-width space U+3000 and the U+2005 WeChat puts after a mention,
ignored around it. Arguments are split like a POSIX shell (``shlex``); unbalanced
quotes fall back to a whitespace split. It never raises, whatever the text.
"""

from __future__ import annotations

import re
import shlex

import attrs

__all__ = ["MAX_SHELL_SPLIT", "Command", "parse_command", "split_args"]

#: Arguments longer than this are split on whitespace only (``shlex`` walks the text
#: one character at a time in Python; a megabyte of arguments would take seconds).
MAX_SHELL_SPLIT = 16 * 1024

_SLASHES = "/\uff0f"
#: ``[@mention] /name[@mention] [args]``; the name stops at whitespace, ``@`` or a slash.
_COMMAND = re.compile(
    r"(?:@(?P<before>[^\s@]+)\s+)?"
    r"[/\uff0f](?P<name>[^\s@/\uff0f]+)"
    r"(?:@(?P<after>[^\s@]+))?"
    r"(?:\s+(?P<args>.*))?",
    re.S,
)


@attrs.frozen
class Command:
    """A parsed slash command.

    Attributes:
        name: The command's name, case-folded, without the slash (``"ping"``).
        args: The arguments, split like a POSIX shell (quotes group words).
        raw_args: The text after the name, stripped, as sent.
        mention: The @-mentioned name (without ``@``) before or after the command,
            if any.
    """

    name: str
    args: tuple[str, ...] = ()
    raw_args: str = ""
    mention: str | None = None


def split_args(raw: str) -> tuple[str, ...]:
    """Split ``raw`` like a POSIX shell; unbalanced quotes fall back to a whitespace split.

    U+3000 (the full-width space) separates arguments too. Never raises.
    """
    if len(raw) > MAX_SHELL_SPLIT:
        return tuple(raw.split())
    lexer = shlex.shlex(raw, posix=True)
    lexer.whitespace_split = True
    lexer.whitespace += "\u3000"
    lexer.commenters = ""
    try:
        return tuple(lexer)
    except ValueError:  # "No closing quotation" / "No escaped character"
        return tuple(raw.split())


def parse_command(text: str) -> Command | None:
    """The command in ``text``, or ``None`` when it is not one.

    Examples: ``"/ping"``, ``"／Ping a 'b c'"``, ``"@bot /ping"``, ``"/ping@bot x"``.
    ``"/usr/bin"``, ``"/"`` and ``"hello /ping"`` are not commands. Never raises.
    """
    stripped = text.strip()
    if not stripped or (stripped[0] not in _SLASHES and stripped[0] != "@"):
        return None
    match = _COMMAND.fullmatch(stripped)
    if match is None:
        return None
    before, after = match.group("before"), match.group("after")
    if before is not None and after is not None and before != after:
        return None  # two different mentions: not addressed to anyone clearly
    raw_args = (match.group("args") or "").strip()
    return Command(
        name=match.group("name").casefold(),
        args=split_args(raw_args) if raw_args else (),
        raw_args=raw_args,
        mention=before if before is not None else after,
    )
