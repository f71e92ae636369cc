"""Tests of weixin_trio.text.split_text: boundaries, code fences, surrogates, properties."""

from __future__ import annotations

import functools
import itertools
import re

import pytest
from hypothesis import example, given, strategies as st

from weixin_trio.text import split_text


def u16(s: str) -> int:
    """Length in UTF-16 code units, measured independently of the module."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def payload_variants(chunk: str) -> list[str]:
    """``chunk`` with or without an inserted reopening line and closing fence."""
    out: list[str] = []
    m = re.match(r"```[^\n]*\n", chunk)
    for v in [chunk] + ([chunk[m.end() :]] if m else []):
        out.append(v)
        if v.endswith("\n```"):
            out.append(v[:-4])
        if v.endswith("```"):
            out.append(v[:-3])
    return [v for v in dict.fromkeys(out) if v]


def reassembles(text: str, chunks: list[str]) -> bool:
    """The documented reassembly property.

    Joining the chunks, minus inserted fence lines, gives ``text`` except for runs of
    ``\\r``/``\\n`` dropped at chunk boundaries (including trailing ones at the end).
    """

    @functools.cache
    def go(k: int, pos: int) -> bool:
        if k == len(chunks):
            return text[pos:].strip("\r\n") == ""
        rest = text[pos:]
        run = len(rest) - len(rest.lstrip("\r\n")) if k else 0
        for skip in sorted({0, run}):
            for v in payload_variants(chunks[k]):
                if text.startswith(v, pos + skip) and go(k + 1, pos + skip + len(v)):
                    return True
        return False

    return go(0, 0)


def open_fence_at_end(chunk: str) -> bool:
    """Whether ``chunk`` ends inside a code block (same fence rule as the module)."""
    inside = False
    for line in chunk.split("\n"):
        if not inside and line.startswith("```"):
            inside = True
        elif inside and re.match(r" {0,3}```", line):
            inside = False
    return inside


def check(text: str, limit: int) -> list[str]:
    chunks = split_text(text, limit)
    assert all(chunks), chunks
    assert all(u16(c) <= limit for c in chunks), [u16(c) for c in chunks]
    assert reassembles(text, chunks), chunks
    for a, b in itertools.pairwise(chunks):
        assert not ("\ud800" <= a[-1] <= "\udbff" and "\udc00" <= b[0] <= "\udfff")
    return chunks


def test_empty_and_small() -> None:
    assert split_text("") == []
    assert split_text("hello") == ["hello"]
    assert split_text("x" * 4000) == ["x" * 4000]
    assert split_text("x" * 4001) == ["x" * 4000, "x"]


@pytest.mark.parametrize("limit", [15, 0, -1])
def test_limit_too_small(limit: int) -> None:
    with pytest.raises(ValueError, match="at least 16"):
        split_text("text", limit)


def test_limit_16_is_accepted() -> None:
    assert split_text("a" * 20, 16) == ["a" * 16, "a" * 4]


def test_paragraph_boundary_wins() -> None:
    text = "para one line\nmore.\n\npara two line\nmore text"
    assert check(text, 30) == ["para one line\nmore.\n\n", "para two line\nmore text"]


def test_line_boundary() -> None:
    assert check("first line here\nsecond line", 20) == ["first line here\n", "second line"]


def test_sentence_boundary() -> None:
    assert check("One sentence. Two sentence", 20) == ["One sentence. ", "Two sentence"]
    text = "第一句话。第二句话很长很长很长很长"
    assert check(text, 16) == ["第一句话。", "第二句话很长很长很长很长"]
    assert check("Really?! Yes it is", 16) == ["Really?! ", "Yes it is"]


def test_word_boundary() -> None:
    assert check("alpha beta gamma delta", 16) == ["alpha beta ", "gamma delta"]
    text = "中文中文，中文中文中文中文中文中文"
    assert check(text, 16) == ["中文中文，", "中文中文中文中文中文中文"]


def test_character_boundary() -> None:
    assert check("abcdefghijklmnopqrstuvwxyz", 16) == ["abcdefghijklmnop", "qrstuvwxyz"]


def test_newline_that_does_not_fit_is_dropped() -> None:
    assert check("a" * 16 + "\n\nb", 16) == ["a" * 16, "b"]
    assert check("a" * 15 + "\n\n\nb", 16) == ["a" * 15 + "\n", "b"]
    assert check("a" * 16 + "\n", 16) == ["a" * 16]  # trailing newline at the end


def test_spaces_are_never_dropped() -> None:
    assert check("a" * 16 + " b", 16) == ["a" * 16, " b"]


def test_counts_utf16_code_units() -> None:
    emoji = "\U0001f600"  # 2 code units
    chunks = check(emoji * 10, 16)
    assert chunks == [emoji * 8, emoji * 2]
    assert check("a" + emoji * 8, 16) == ["a" + emoji * 7, emoji]


def test_never_splits_a_surrogate_pair() -> None:
    pair = "\ud83d\ude00"  # a JS-style pair held as two code points
    chunks = check("a" + pair * 10, 16)
    assert all(c.count("\ud83d") == c.count("\ude00") for c in chunks)
    # No grapheme boundary anywhere: the fallback must still respect the pairs.
    for limit in (16, 17, 18):
        chunks = check("\u200d\ud83d\ude00" * 20, limit)
        assert all(c.count("\ud83d") == c.count("\ude00") for c in chunks)


def test_tolerates_lone_surrogates() -> None:
    check("\ud800" * 40 + "\udc00" * 40, 16)
    check("x\udc00\ud800y" * 20, 16)


def test_keeps_grapheme_clusters_together_when_possible() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 8 code units
    chunks = check(family * 4, 16)
    assert chunks == [family * 2, family * 2]
    accented = "e\u0301" * 10
    chunks = check(accented, 16)
    assert all(not c.startswith("\u0301") for c in chunks)


def test_fence_kept_whole_when_possible() -> None:
    text = "intro\n```py\nx = 1\ny = 2\n```\nafter"
    chunks = check(text, 24)
    assert chunks == ["intro\n", "```py\nx = 1\ny = 2\n```\n", "after"]


def test_fence_split_closed_and_reopened_with_language() -> None:
    body = "".join(f"line{i}\n" for i in range(12))
    text = "```python\n" + body + "```\nafter text here"
    chunks = check(text, 36)
    assert chunks[0].startswith("```python\nline0\n")
    for chunk in chunks[:-2]:
        assert chunk.endswith("\n```")
    for chunk in chunks[1:-1]:
        assert chunk.startswith("```python\n")
    assert chunks[-1] == "after text here"
    assert not any(open_fence_at_end(c) for c in chunks)
    code = "".join(re.sub(r"^```python\n|```\n?$", "", c) for c in chunks[:-1])
    assert code == body


def test_long_code_line_is_split_with_a_newline_before_the_closing_fence() -> None:
    text = "```js\n" + "x" * 40 + "\n```"
    chunks = check(text, 20)
    assert chunks[0] == "```js\n" + "x" * 10 + "\n```"
    assert chunks[1].startswith("```js\n")
    assert not any(open_fence_at_end(c) for c in chunks[:-1])


def test_unclosed_fence_is_closed_in_every_chunk_but_the_last() -> None:
    text = "```\n" + "code\n" * 20
    chunks = check(text, 24)
    assert all(c.endswith("```") for c in chunks[:-1])
    assert all(c.startswith("```\n") for c in chunks)


def test_indented_closing_fence() -> None:
    text = "```\na\n  ```\n" + "text " * 10
    chunks = check(text, 20)
    assert chunks[0] == "```\na\n  ```\n"


def test_no_chunk_starts_with_a_fence_like_backtick_run() -> None:
    text = "```\n" + "ab ```x " * 10 + "\n```\n"
    chunks = check(text, 20)
    for c in chunks[1:]:
        assert not re.match(r"```\n {0,3}`", c)


def test_llm_reply() -> None:
    paragraph = "这是一段很长的中文内容，包含一些句子。" * 30 + "\n\n"
    text = ("# 标题\n\n" + paragraph + "```py\nprint('x')\n```\n\n") * 20
    chunks = check(text, 4000)
    assert len(chunks) > 1
    assert not any(open_fence_at_end(c) for c in chunks)


def test_large_input_is_fast_enough() -> None:
    text = "word " * 200_000 + "\n" + "中" * 100_000
    chunks = check(text, 4000)
    assert len(chunks) > 250


# -- properties -------------------------------------------------------------------------

TOKENS = [
    *"ab 中。.!?\n\t，`",
    "\n\n",
    "\r\n",
    "```py\n",
    "```\n",
    "\n```\n",
    "  ```\n",
    "\U0001f600",
    "\ud83d\ude00",
    "\ud800",
    "e\u0301",
    "\U0001f468\u200d\U0001f469",
    "word ",
    "Sentence. ",
]
texts = st.lists(st.sampled_from(TOKENS), max_size=80).map("".join) | st.text(max_size=120)


@given(text=texts, limit=st.integers(min_value=16, max_value=64))
@example(text="a" * 16 + "\n\nb", limit=16)
@example(text="```\n```\n" + "x" * 20, limit=16)
def test_properties(text: str, limit: int) -> None:
    chunks = check(text, limit)
    if not text:
        assert chunks == []


@given(text=st.lists(st.sampled_from(TOKENS), max_size=80).map("".join))
def test_chunks_end_with_fences_closed(text: str) -> None:
    limit = 24
    opening_lines = [line for line in text.split("\n") if line.startswith("```")]
    chunks = check(text, limit)
    if all(u16(line) + 1 + 12 <= limit for line in opening_lines):
        assert not any(open_fence_at_end(c) for c in chunks[:-1])
