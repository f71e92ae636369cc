"""Sans-IO splitting of long replies for WeChat's per-message text limit (PROTOCOL §5.2).

Length unit: **UTF-16 code units**, because the reference host measured JavaScript
string length. A character outside the Basic Multilingual Plane (most emoji, CJK
extension B) counts 2; every other code point, including a lone surrogate, counts 1.
A chunk that fits in UTF-16 code units also fits in Python code points.

Where a chunk ends, best first (the last such place that still fits wins):

1. a paragraph break: a run of ``\\r``/``\\n`` holding at least two ``\\n``;
2. a line break;
3. the end of a sentence: ``.``, ``!`` or ``?`` followed by whitespace, or ``。``,
   ``！``, ``？``; spaces after it stay with the sentence;
4. a word boundary: after spaces/tabs/U+3000, or after ``，、；：``;
5. any character boundary, never inside a surrogate pair (also when the text holds
   one as two lone code points) and, where possible, not before a combining mark,
   variation selector, ZWJ, skin-tone modifier or emoji tag, nor after a ZWJ.

Fenced code blocks (an opening line starting with three backticks in column 0, closed
by a line starting with three backticks after at most three spaces, the same rule as
`weixin_trio.markdown`) are never split when a place outside them fits. A block
that must be split because it alone is too long is split at a line break inside it
(else a word, else a character boundary): the chunk gets a closing fence (``"```"``, or
``"\\n```"`` when the chunk does not end with a newline) and the next chunk starts with
the block's opening line (language tag included) and a newline. (A block whose opening
line is so long that reopening and closing it would leave fewer than 8 units for content
is split like plain text; with the default limit that needs a 3988-unit opening line.)

Reassembly: joining the chunks after removing those inserted fence lines gives back the
text, except that where a chunk ends at a run of line breaks outside a code block and
the whole run does not fit, the rest of that run (``\\r``/``\\n`` characters only) is
dropped, so no chunk starts with a line break there (at the very end of the text this
means trailing line breaks that do not fit are dropped). Nothing else is ever dropped,
added or reordered. No chunk is empty.

Run time is linear in the text length (each chunk scans a window of about ``limit``
characters).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from typing import Final, NamedTuple

__all__ = ["split_text"]

MIN_LIMIT: Final = 16

_ASTRAL: Final = re.compile("[\U00010000-\U0010ffff]")
_SENTENCE: Final = re.compile(r"[.!?](?=\s)|[。！？]")
_WORD: Final = re.compile("[ \t\u3000]+|[，、；：]")
_CLOSE_COST: Final = 4  # "\n```"
_MIN_CONTENT: Final = 8  # units a reopened chunk must have left for content


class _Fence(NamedTuple):
    start: int  # first character of the opening line
    content: int  # first character after the opening line
    content_end: int  # first character of the closing line (or len(text))
    close_end: int  # end of the closing line, before its newline (or len(text))
    reopen: str  # opening line plus "\n"


def _units(text: str) -> int:
    """Length of ``text`` in UTF-16 code units."""
    return len(text) + len(_ASTRAL.findall(text))


def _is_closing(text: str, pos: int) -> bool:
    """Whether the line at ``pos`` closes a fence (up to three spaces, then three backticks)."""
    k = pos
    while k < pos + 3 and text.startswith(" ", k):
        k += 1
    return text.startswith("```", k)


def _find_fences(text: str, limit: int) -> list[_Fence]:
    fences: list[_Fence] = []
    n = len(text)
    pos = 0
    open_at = -1
    content = 0
    reopen = ""
    while pos < n:
        nl = text.find("\n", pos)
        line_end = n if nl < 0 else nl
        nxt = n if nl < 0 else nl + 1
        if open_at < 0:
            if text.startswith("```", pos):
                open_at, content = pos, nxt
                reopen = text[pos:line_end].rstrip("\r") + "\n"
        elif _is_closing(text, pos):
            if _units(reopen) + _CLOSE_COST + _MIN_CONTENT <= limit:
                fences.append(_Fence(open_at, content, pos, line_end, reopen))
            open_at = -1
        pos = nxt
    if open_at >= 0 and _units(reopen) + _CLOSE_COST + _MIN_CONTENT <= limit:
        fences.append(_Fence(open_at, content, n, n, reopen))
    return fences


def _is_extender(ch: str) -> bool:
    o = ord(ch)
    return (
        o == 0x200D
        or 0xFE00 <= o <= 0xFE0F
        or 0xDC00 <= o <= 0xDFFF
        or 0x1F3FB <= o <= 0x1F3FF
        or 0xE0020 <= o <= 0xE007F
        or 0xE0100 <= o <= 0xE01EF
        or unicodedata.category(ch).startswith("M")
    )


class _Splitter:
    def __init__(self, text: str, limit: int) -> None:
        self.text = text
        self.limit = limit
        self.astral = [m.start() for m in _ASTRAL.finditer(text)]
        self.fences = _find_fences(text, limit)
        self.fence_starts = [f.start for f in self.fences]

    def units(self, a: int, b: int) -> int:
        return b - a + bisect_left(self.astral, b) - bisect_left(self.astral, a)

    def fit(self, start: int, budget: int) -> int:
        """Largest end with ``units(start, end) <= budget``."""
        hi = min(len(self.text), start + budget)
        if self.units(start, hi) <= budget:
            return hi
        lo = start
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.units(start, mid) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def block(self, p: int) -> _Fence | None:
        """The fence whose block holds position ``p`` (its start counts, its end not)."""
        k = bisect_right(self.fence_starts, p) - 1
        if k >= 0 and p < self.fences[k].close_end:
            return self.fences[k]
        return None

    def outside(self, p: int) -> bool:
        f = self.block(p)
        return f is None or p == f.start

    def pair_safe(self, p: int) -> bool:
        t = self.text
        return not ("\ud800" <= t[p - 1] <= "\udbff" and "\udc00" <= t[p] <= "\udfff")

    def fence_like(self, p: int) -> bool:
        """Whether a chunk starting at ``p`` would start with a fence-like backtick line."""
        t = self.text
        k = p
        while k < p + 3 and t.startswith(" ", k):
            k += 1
        return t.startswith("`", k)

    def char_cut(self, start: int, e: int) -> int:
        """A character boundary in ``(start, e]``, preferring grapheme boundaries.

        Never leaves the rest starting with a backtick (it would read as a fence line);
        returns ``start`` if there is no such boundary.
        """
        t = self.text
        for p in range(e, max(start, e - 32), -1):
            if not _is_extender(t[p]) and t[p - 1] != "\u200d" and not self.fence_like(p):
                return p
        for p in range(e, start, -1):
            if self.pair_safe(p) and not self.fence_like(p):
                return p
        return start

    def outside_cut(self, start: int, e: int) -> tuple[int, int] | None:
        """Best ``(cut, resume)`` outside code blocks, or None."""
        t = self.text
        f = self.block(start)
        if f is not None and f.close_end > e:
            return None  # the whole window lies inside one code block
        line: tuple[int, int] | None = None
        q = t.rfind("\n", start, e + 1)
        while q >= 0:
            q0 = q
            while q0 > start and t[q0 - 1] in "\r\n":
                q0 -= 1
            r = q + 1
            while r < len(t) and t[r] in "\r\n":
                r += 1
            cut = min(r, e)
            if cut > start and self.outside(cut):
                if t.count("\n", q0, r) >= 2:
                    return cut, r
                if line is None:
                    line = (cut, r)
            q = t.rfind("\n", start, q0)
        if line is not None:
            return line
        for pattern, endpos in ((_SENTENCE, e + 1), (_WORD, e)):
            best = -1
            for m in pattern.finditer(t, start, endpos):
                cut = m.end()
                while cut < e and t[cut] in " \t":
                    cut += 1
                if start < cut <= e and self.outside(cut) and not self.fence_like(cut):
                    best = cut
            if best > 0:
                return best, best
        cut = self.char_cut(start, e)
        while cut > start and not self.outside(cut):
            cut -= 1
        return (cut, cut) if cut > start else None

    def inside_cut(self, start: int, e: int, f: _Fence) -> int:
        """Best cut inside the content of ``f`` (-1 if none)."""
        t = self.text
        lo, hi = max(start, f.content), min(e, f.content_end - 1)
        if hi <= lo:
            return -1
        q = t.rfind("\n", lo, hi)
        if q >= 0:
            return q + 1
        best = -1
        for m in _WORD.finditer(t, lo, hi):
            if not self.fence_like(m.end()):
                best = m.end()
        if best > lo:
            return best
        cut = self.char_cut(lo, hi)
        return cut if cut > lo else -1

    def split(self) -> list[str]:
        t, n = self.text, len(self.text)
        chunks: list[str] = []
        start = 0
        while start < n:
            f = self.block(start)
            reopen = f.reopen if f is not None and f.content <= start < f.content_end else ""
            budget = self.limit - _units(reopen)
            e = self.fit(start, budget)
            if e == n:
                chunks.append(reopen + t[start:])
                break
            found = self.outside_cut(start, e)
            close = ""
            if found is None:
                inner = -1
                if f is not None:
                    inner = self.inside_cut(start, self.fit(start, budget - _CLOSE_COST), f)
                if inner > 0:
                    found = (inner, inner)
                    close = "```" if t[inner - 1] == "\n" else "\n```"
                else:  # degenerate: e.g. an opening line longer than the limit
                    cut = self.char_cut(start, e)
                    if cut <= start:
                        cut = e
                        while cut > start + 1 and not self.pair_safe(cut):
                            cut -= 1
                    found = (cut, cut)
            cut, resume = found
            chunks.append(reopen + t[start:cut] + close)
            start = resume
        return chunks


def split_text(text: str, limit: int = 4000) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` UTF-16 code units.

    See the module docstring for where chunks end, how code blocks are closed and
    reopened, and exactly what is dropped at split points.

    Args:
        text: The reply text (already markdown-filtered, if that is wanted).
        limit: Maximum chunk length in UTF-16 code units; WeChat's is 4000.

    Returns:
        The chunks in order; ``[]`` for an empty text.

    Raises:
        ValueError: If ``limit`` is below 16.
    """
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT}, got {limit}")
    if not text:
        return []
    return _Splitter(text, limit).split()
