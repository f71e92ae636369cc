"""Throughput and scaling of the sans-IO text helpers.

Measures :func:`weixin_trio.markdown.filter_markdown` (one-shot), a
:class:`~weixin_trio.markdown.StreamingMarkdownFilter` fed in 50-character chunks (as an
LLM token stream would), and :func:`weixin_trio.text.split_text`, on deterministic
LLM-style markdown (paragraphs, CJK, bold/italic, code fences, links, images, lists,
tables). Sizes are UTF-8 bytes; 1 MB = 10**6 bytes.

Run: ``.venv/bin/python benchmarks/bench_text.py``
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from weixin_trio.markdown import StreamingMarkdownFilter, filter_markdown
from weixin_trio.text import split_text

if TYPE_CHECKING:
    from collections.abc import Callable

MB = 1_000_000
CHUNK = 50

_EN = [
    "The quick brown fox jumps over the lazy dog.",
    "Here is **an important point** and some *emphasis* for clarity.",
    "Use `snake_case_names` and see [the docs](https://example.com/a_b?x=1).",
    "Numbers like 3 * 4 = 12 and x_1 + y_2 stay as they are!",
]
_ZH = [
    "这是一个包含*强调*和**粗体**的中文段落。",
    "请参考 https://example.com/路径_中文_文件 获取更多信息，谢谢！",
    "***重点内容***需要特别注意，尤其是`代码_片段`里的内容。",
    "图片如下：![示意图](https://example.com/img_(1).png) 以上。",
]
_BLOCKS = [
    "```python\ndef f(a_b, *args):\n    return a_b ** 2  # *不变*\n```\n",
    "| 项目 | 状态 |\n|---|---|\n| *测试* | ✅ |\n",
    "- item_one *中*\n- item_two\n  - nested **bold**\n",
    "> 引用 _说明_ 🎉\n",
    "##### 小标题\n",
    "---\n",
]


def make_text(size: int, seed: int = 0) -> str:
    """Deterministic LLM-style markdown of about ``size`` UTF-8 bytes."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size:
        r = rng.random()
        if r < 0.15:
            part = rng.choice(_BLOCKS)
        elif r < 0.2:
            part = "# 标题 Title\n"
        else:
            pool = _ZH if rng.random() < 0.5 else _EN
            part = " ".join(rng.choice(pool) for _ in range(rng.randint(2, 6))) + "\n\n"
        parts.append(part)
        total += len(part.encode("utf-8"))
    return "".join(parts)


def stream_filter(text: str) -> str:
    f = StreamingMarkdownFilter()
    out = [f.feed(text[i : i + CHUNK]) for i in range(0, len(text), CHUNK)]
    out.append(f.flush())
    return "".join(out)


def best_time(fn: Callable[[str], object], text: str, repeat: int = 3) -> float:
    """Best wall-clock time of ``repeat`` runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    """Print throughput at 1 MB and timings at 0.25, 0.5, 1 and 2 MB."""
    text = make_text(MB)
    size = len(text.encode("utf-8")) / MB
    assert stream_filter(text) == filter_markdown(text)
    print(f"input: {size:.2f} MB UTF-8, {len(text):,} code points")
    functions: list[tuple[str, Callable[[str], object]]] = [
        ("filter_markdown one-shot", filter_markdown),
        (f"streaming feed, {CHUNK}-char chunks", stream_filter),
        ("split_text(limit=4000)", split_text),
    ]
    for name, fn in functions:
        seconds = best_time(fn, text)
        print(f"{name:34s} {seconds * 1000:8.1f} ms  {size / seconds:7.2f} MB/s")
    print("\nscaling (best of 3, ms; ratio to the previous size in parentheses):")
    sizes = [MB // 4, MB // 2, MB, 2 * MB]
    texts = [make_text(s, seed=1) for s in sizes]
    print(f"{'size':>8s} " + " ".join(f"{name.split(',')[0]:>30s}" for name, _ in functions))
    previous: list[float] = []
    for s, t in zip(sizes, texts, strict=True):
        times = [best_time(fn, t) for _, fn in functions]
        cells = []
        for k, seconds in enumerate(times):
            ratio = f"(x{seconds / previous[k]:.2f})" if previous else ""
            cells.append(f"{seconds * 1000:20.1f} {ratio:>9s}")
        print(f"{s / MB:6.2f}MB " + " ".join(cells))
        previous = times


if __name__ == "__main__":
    main()
