"""The scanner behind `weixin_trio.markdown.StreamingMarkdownFilter`.

A single-pass state machine over the unconsumed input; see ``markdown.py`` for what it
does and where it deliberately differs from the reference client.
"""

from __future__ import annotations

import re
import string
from typing import Final

from .markdown_spans import BACKTICKS as _BACKTICKS, CJK as _CJK, code_spans, is_word as _is_word

__all__ = ["MarkdownScanner"]

_PUNCT: Final = frozenset(string.punctuation)
_TRIM: Final = "?!.,:*_~"
_URL_PLAIN: Final = re.compile(r"[^\s<>`\\\"\[\]()?!.,:*_~\u3000-\u303f\uff00-\uffef]+")
_URL_STOP: Final = re.compile(r"[\s<>`\\\"\[\]\u3000-\u303f\uff00-\uffef]")
_MAX_HOLD: Final = 4096  # held text beyond which a code span search waits for a newline
_BODY_SPECIAL: Final = re.compile(r"[\n!*_`\\:]")

# Parser states.
_SOL, _BODY, _RAW_LINE, _FENCE_SOL, _CAND = range(5)
# Candidate kinds: italic, underscore italic, bold-italic, underscore bold-italic, image.
_ITALIC, _UITALIC, _BOLD3, _UBOLD3, _IMG_ALT, _IMG_DEST = range(6)
_OPENERS: Final = ("*", "_", "***", "___", "![", "![")
_CAND_SPECIAL: Final = (
    re.compile(r"[\n*`\\:]"),
    re.compile(r"[\n_`\\:]"),
    re.compile(r"[*`\\:]"),
    re.compile(r"[_`\\:]"),
    re.compile(r"[\]\n`\\]"),
    re.compile(r"[()\n`\\]"),
)


class MarkdownScanner:
    """State and scanning steps of the streaming filter (no public API)."""

    def _reset(self) -> None:
        self._buf = ""  # unconsumed input starts at self._i
        self._i = 0
        self._base = 0  # absolute input offset of self._buf[0]
        self._tail = ""  # last few consumed characters (lookbehind)
        self._pending: list[str] = []  # chunks parked while waiting
        self._need_nl = False
        self._need_not: str | None = None
        self._stall = False
        self._eof = False
        self._out: list[str] = []
        self._state = _SOL
        self._after_line = _SOL  # state after a raw line
        self._kind = _ITALIC
        self._acc: list[str] = []
        self._acc_cjk = False
        self._depth = 0  # image destination parentheses
        self._url = False
        self._url_depth = 0
        self._trimmed_end = 0  # markers before this offset were trimmed off a URL
        self._bt_open = -1  # backtick opener whose closer is being searched
        self._bt_scan = 0  # how far that search got
        self._spans: dict[int, int] = {}
        self._spans_lo = 0
        self._spans_hi = 0

    # -- plumbing ---------------------------------------------------------------------

    def _take(self) -> str:
        out = "".join(self._out)
        self._out.clear()
        return out

    def _load(self) -> None:
        i = self._i
        self._tail = (self._tail + self._buf[max(0, i - 8) : i])[-8:]
        self._base += i
        self._buf = self._buf[i:] + "".join(self._pending)
        self._pending.clear()
        self._i = 0
        self._need_nl = False
        self._need_not = None
        self._stall = False

    def _wait(self, *, newline: bool = False, not_in: str | None = None) -> None:
        self._stall = True
        self._need_nl = newline
        self._need_not = not_in

    def _before(self, j: int, k: int) -> str:
        if j >= k:
            return self._buf[j - k : j]
        return (self._tail + self._buf[:j])[-k:]

    def _run(self) -> None:
        handlers = (self._sol, self._body, self._raw_line, self._fence_sol, self._cand)
        while not self._stall and handlers[self._state]():
            pass

    # -- shared units -----------------------------------------------------------------

    def _code_unit(self, j: int) -> int:
        """End of the backtick unit at ``j`` (a code span or a literal run); -1 to wait."""
        buf = self._buf
        m = _BACKTICKS.match(buf, j)
        assert m is not None
        k = m.end()
        if k == len(buf) and not self._eof:
            self._wait(not_in="`")
            return -1
        p = self._base + j
        if not self._spans_lo <= p < self._spans_hi:
            nl = buf.find("\n", k)
            stop = len(buf) if nl < 0 else nl
            scan = max(k, self._bt_scan - self._base) if self._bt_open == p else k
            for run in _BACKTICKS.finditer(buf, scan, stop):
                if run.end() == len(buf):
                    stop = run.start()  # may still grow
                    break
                if run.end() - run.start() == k - j:
                    return run.end()  # the closer is already here
                scan = run.end()
            if nl < 0 and not self._eof:
                # Resume the search on the next feed; park until a newline once the
                # held text is long, so that re-joining the buffer stays linear.
                self._bt_open, self._bt_scan = p, self._base + max(scan, stop)
                self._wait(newline=len(buf) - j > _MAX_HOLD)
                return -1
            self._compute_spans(j, len(buf) if nl < 0 else nl)
        end = self._spans.get(p)
        return k if end is None else end - self._base

    def _compute_spans(self, start: int, end: int) -> None:
        self._spans = code_spans(self._buf, start, end, self._base)
        self._spans_lo = self._base + start
        self._spans_hi = self._base + end

    def _escape_unit(self, j: int) -> int:
        """End of the backslash unit at ``j``; -1 to wait."""
        if j + 1 >= len(self._buf):
            if self._eof:
                return j + 1
            self._wait()
            return -1
        return j + 2 if self._buf[j + 1] in _PUNCT else j + 1

    def _colon_unit(self, j: int) -> int:
        """End of the unit at ``:`` (``://`` starts URL mode after http/https); -1 to wait."""
        before = self._before(j, 5).lower()
        if not before.endswith(("http", "https")):
            return j + 1
        rest = self._buf[j + 1 : j + 3]
        if rest == "//":
            self._url = True
            self._url_depth = 0
            return j + 3
        if len(rest) < 2 and "//".startswith(rest) and not self._eof:
            self._wait()
            return -1
        return j + 1

    def _url_unit(self, i: int) -> int:
        """Consume URL characters from ``i``; leaves URL mode at its end."""
        buf, n = self._buf, len(self._buf)
        while i < n:
            m = _URL_PLAIN.match(buf, i)
            if m is not None:
                i = m.end()
                continue
            c = buf[i]
            if c == "(":
                self._url_depth += 1
                i += 1
            elif c == ")" and self._url_depth:
                self._url_depth -= 1
                i += 1
            elif c in _TRIM:
                k = i
                while k < n and buf[k] in _TRIM:
                    k += 1
                if k == n and not self._eof:
                    self._wait(not_in=_TRIM)
                    return i
                if k == n or _URL_STOP.match(buf[k]) or (buf[k] == ")" and not self._url_depth):
                    self._trimmed_end = self._base + k
                    break
                i = k
            else:
                break
        else:
            return i
        self._url = False
        return i

    # -- states -----------------------------------------------------------------------

    def _sol(self) -> bool:
        buf, i, n = self._buf, self._i, len(self._buf)
        if i >= n:
            return False
        c = buf[i]
        eof = self._eof
        if c == "\n":
            self._out.append("\n")
            self._i = i + 1
            return True
        if c == "`":
            if buf.startswith("```", i):
                self._state, self._after_line = _RAW_LINE, _FENCE_SOL
                return True
            if n - i < 3 and "```".startswith(buf[i:]) and not eof:
                self._wait()
                return False
        elif c == "#":
            k = i
            while k < n and k - i < 7 and buf[k] == "#":
                k += 1
            if k == n and k - i < 7 and not eof:
                self._wait()
                return False
            if 5 <= k - i <= 6 and k < n and buf[k] == " ":
                self._i = k + 1
        elif c in "*_":
            k = i
            while k < n and buf[k] in (c, " "):
                k += 1
            if k == n and not eof:
                self._wait(not_in=c + " ")
                return False
            if (k == n or buf[k] == "\n") and buf.count(c, i, k) >= 3:
                end = min(k + 1, n)
                self._out.append(buf[i:end])
                self._i = end
                return True
        self._state = _BODY
        return True

    def _raw_line(self) -> bool:
        buf, i = self._buf, self._i
        nl = buf.find("\n", i)
        if nl < 0:
            self._out.append(buf[i:])
            self._i = len(buf)
            return False
        self._out.append(buf[i : nl + 1])
        self._i = nl + 1
        self._state = self._after_line
        return True

    def _fence_sol(self) -> bool:
        buf, i, n = self._buf, self._i, len(self._buf)
        if i >= n:
            return False
        k = i
        while k < n and k - i < 3 and buf[k] == " ":
            k += 1
        if buf.startswith("```", k):
            self._after_line = _SOL
        elif n - k < 3 and "```".startswith(buf[k:]) and not self._eof:
            self._wait()
            return False
        else:
            self._after_line = _FENCE_SOL
        self._state = _RAW_LINE
        return True

    def _body(self) -> bool:
        buf, n, out = self._buf, len(self._buf), self._out
        i = self._i
        eof = self._eof
        while True:
            if self._url:
                e = self._url_unit(i)
                out.append(buf[i:e])
                i = e
                if self._stall:
                    break
                if self._url:
                    break  # buffer exhausted inside the URL
            m = _BODY_SPECIAL.search(buf, i)
            if m is None:
                out.append(buf[i:])
                i = n
                break
            j = m.start()
            if j > i:
                out.append(buf[i:j])
                i = j
            c = buf[j]
            if c == "\n":
                out.append("\n")
                self._i = j + 1
                self._state = _SOL
                return True
            if c in "*_":
                if self._base + j < self._trimmed_end:
                    out.append(c)  # trailing marker of a URL: may close, never opens
                    i = j + 1
                    continue
                if c == "_" and _is_word(self._before(j, 1)):
                    k = j
                    while k < n and buf[k] == "_":
                        k += 1
                    if k == n and not eof:
                        self._wait(not_in="_")
                        break
                    out.append(buf[j:k])
                    i = k
                    continue
                if j + 1 >= n:
                    if not eof:
                        self._wait()
                        break
                    out.append(c)
                    i = j + 1
                    continue
                c1 = buf[j + 1]
                if c1 == c:
                    if j + 2 >= n and not eof:
                        self._wait()
                        break
                    if j + 2 < n and buf[j + 2] == c:
                        return self._open(j + 3, _BOLD3 if c == "*" else _UBOLD3)
                    out.append(buf[j : j + 2])
                    i = j + 2
                elif c1 in " \n":
                    out.append(c)
                    i = j + 1
                else:
                    return self._open(j + 1, _ITALIC if c == "*" else _UITALIC)
                continue
            if c == "!":
                if j + 1 >= n:
                    if not eof:
                        self._wait()
                        break
                elif buf[j + 1] == "[":
                    return self._open(j + 2, _IMG_ALT)
                out.append("!")
                i = j + 1
                continue
            if c == "`":
                e = self._code_unit(j)
            elif c == "\\":
                e = self._escape_unit(j)
            else:
                e = self._colon_unit(j)
            if e < 0:
                break
            out.append(buf[j:e])
            i = e
        self._i = i
        return False

    def _open(self, i: int, kind: int) -> bool:
        self._i = i
        self._state = _CAND
        self._kind = kind
        self._acc = []
        self._acc_cjk = False
        self._depth = 0
        return True

    def _add(self, text: str) -> None:
        if text:
            self._acc.append(text)
            if not self._acc_cjk and _CJK.search(text):
                self._acc_cjk = True

    def _close(self, content_end: int, resume: int, *, keep: bool) -> bool:
        """Finish the candidate: ``keep`` emits the markers around the content."""
        self._add(self._buf[self._i : content_end])
        content = "".join(self._acc)
        kind = self._kind
        if kind >= _IMG_ALT:
            if keep:
                self._out.append("![" + content)
        elif keep or not self._acc_cjk:
            marker = _OPENERS[kind]
            self._out.append(marker + content + marker)
        else:
            self._out.append(content)
        self._acc = []
        self._i = resume
        self._state = _BODY
        return True

    def _abandon(self, j: int) -> bool:
        """Restore the candidate unchanged up to ``j`` and continue in the body there."""
        self._add(self._buf[self._i : j])
        self._out.append(_OPENERS[self._kind])
        self._out.extend(self._acc)
        self._acc = []
        self._i = j
        self._state = _BODY
        return True

    def _cand(self) -> bool:
        buf, n = self._buf, len(self._buf)
        eof = self._eof
        kind = self._kind
        pat = _CAND_SPECIAL[kind]
        i = self._i
        while True:
            if self._url:
                i = self._url_unit(i)
                if self._stall or self._url:
                    break
            m = pat.search(buf, i)
            if m is None:
                i = n
                break
            j = m.start()
            c = buf[j]
            if c == "`":
                e = self._code_unit(j)
            elif c == "\\":
                e = self._escape_unit(j)
            elif c == ":":
                e = self._colon_unit(j)
            elif c == "\n":
                if kind <= _UITALIC:
                    return self._abandon(j)
                k = j + 1  # images: abandon at a blank line
                while k < n and buf[k] in " \t":
                    k += 1
                if k == n and not eof:
                    self._wait(not_in=" \t")
                    i = j
                    break
                if k < n and buf[k] == "\n":
                    return self._abandon(j)
                e = j + 1
            elif kind <= _UITALIC:
                if j + 1 >= n and not eof:
                    self._wait()
                    i = j
                    break
                c1 = buf[j + 1] if j + 1 < n else ""
                if c1 == c:
                    e = j + 2
                elif kind == _UITALIC and _is_word(c1):
                    e = j + 1
                else:
                    return self._close(j, j + 1, keep=False)
            elif kind <= _UBOLD3:
                k = j
                while k < n and k - j < 3 and buf[k] == c:
                    k += 1
                if k - j < 3:
                    if k == n and not eof:
                        self._wait()
                        i = j
                        break
                    e = k
                elif kind == _UBOLD3 and k == n and not eof:
                    self._wait()
                    i = j
                    break
                elif kind == _UBOLD3 and k < n and _is_word(buf[k]):
                    e = k
                else:
                    return self._close(j, k, keep=False)
            elif kind == _IMG_ALT:  # "]"
                if j + 1 >= n:
                    if not eof:
                        self._wait()
                        i = j
                        break
                    e = j + 1
                elif buf[j + 1] == "(":
                    self._add(buf[self._i : j + 2])
                    self._i = j + 2
                    self._kind = _IMG_DEST
                    return True
                else:
                    return self._close(j + 1, j + 1, keep=True)
            elif c == "(":
                self._depth += 1
                e = j + 1
            elif self._depth:
                self._depth -= 1
                e = j + 1
            else:
                return self._close(j, j + 1, keep=False)
            if e < 0:
                i = j
                break
            i = e
        self._add(buf[self._i : i])
        self._i = i
        return False
