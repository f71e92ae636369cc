"""Answers to an agent's ``session/request_permission``, by policy (sans-IO).

``all`` picks an allow option, ``read-only`` allows tools of a reading kind and rejects
the rest, ``ask`` puts the question to the user (the bridge does the asking; here are
the texts and the parsing of the reply).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "READ_KINDS",
    "decide",
    "outcome",
    "parse_answer",
    "question_text",
]

#: Tool kinds ``--approve read-only`` allows.
READ_KINDS = frozenset({"read", "search", "think", "fetch"})

_YES = re.compile(
    r"(?i)^\s*(y|yes|ok|okay|allow|approve|是|好|好的|可以|允许|同意|确认)\s*[.!。！]?\s*$"
)
_NO = re.compile(r"(?i)^\s*(n|no|deny|reject|不|否|不行|不要|拒绝|不同意)\s*[.!。！]?\s*$")


def parse_answer(text: str) -> bool | None:
    """``True`` for a yes, ``False`` for a no, ``None`` for anything else."""
    if _YES.match(text):
        return True
    if _NO.match(text):
        return False
    return None


def decide(policy: str, kind: str | None) -> bool | None:
    """Allow (``True``), reject (``False``) or ask the user (``None``)."""
    if policy == "all":
        return True
    if policy == "read-only":
        return kind in READ_KINDS
    return None


def _options(params: Any) -> list[dict[str, Any]]:
    options = params.get("options") if isinstance(params, dict) else None
    return [o for o in options or [] if isinstance(o, dict) and isinstance(o.get("optionId"), str)]


def outcome(params: Any, allow: bool | None) -> dict[str, Any]:
    """The ``session/request_permission`` result: the option chosen, or cancelled.

    ``allow=None`` (the user stopped the prompt) and a request without a fitting
    option answer ``cancelled``.
    """
    if allow is not None:
        wanted = ("allow_once", "allow_always") if allow else ("reject_once", "reject_always")
        options = _options(params)
        for kind in wanted:
            for option in options:
                if option.get("kind") == kind:
                    return {"outcome": {"outcome": "selected", "optionId": option["optionId"]}}
    return {"outcome": {"outcome": "cancelled"}}


def question_text(params: Any, timeout: float, known_title: str | None = None) -> str:
    """What the user reads: the tool call's title and how to answer.

    ``known_title`` is the title of the tool call as announced earlier (the request
    may carry only its id).
    """
    tool = params.get("toolCall") if isinstance(params, dict) else None
    tool = tool if isinstance(tool, dict) else {}
    title = tool.get("title") or known_title or tool.get("kind") or "a tool call"
    names = ", ".join(str(o.get("name") or o["optionId"]) for o in _options(params))
    minutes = max(1, round(timeout / 60))
    return (
        f"The agent asks for permission: {title}\n"
        f"Options: {names}\n"
        f"Reply yes or no (no answer in {minutes} min counts as no)."
    )
