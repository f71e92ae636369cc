"""Code spans and word characters for the markdown scanner (`markdown_scan.py`)."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["BACKTICKS", "CJK", "code_spans", "is_word"]

CJK: Final = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")
BACKTICKS: Final = re.compile("`+")


def is_word(ch: str) -> bool:
    """Letters and digits other than CJK: the characters that make ``_`` intraword."""
    return ch.isalnum() and CJK.match(ch) is None


def code_spans(buf: str, start: int, end: int, base: int) -> dict[int, int]:
    """Match code spans in ``buf[start:end]`` left to right, in linear time.

    Returns ``{opener: end}`` of each span, as absolute offsets (``base`` is the
    absolute offset of ``buf[0]``).
    """
    runs = [(m.start(), m.end() - m.start()) for m in BACKTICKS.finditer(buf, start, end)]
    by_len: dict[int, list[int]] = {}
    for s, n in runs:
        by_len.setdefault(n, []).append(s)
    ptr: dict[int, int] = {}
    spans: dict[int, int] = {}
    k = start
    for s, n in runs:
        if s < k:
            continue  # inside a span
        b = s
        while b > k and buf[b - 1] == "\\":
            b -= 1
        if (s - b) % 2:  # first backtick escaped
            s, n = s + 1, n - 1
            if not n:
                k = s
                continue
        lst = by_len.get(n, [])
        q = ptr.get(n, 0)
        while q < len(lst) and lst[q] < s + n:
            q += 1
        if q < len(lst):
            spans[base + s] = base + lst[q] + n
            k = lst[q] + n
            q += 1
        else:
            k = s + n
        ptr[n] = q
    return spans
