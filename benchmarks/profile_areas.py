"""Summarise a cProfile dump of the bot by area (httpx, h11, JSON, cattrs, trio, ...).

Run: ``.venv/bin/python benchmarks/profile_areas.py PROFILE [--top N]``, where
PROFILE comes from ``BENCH_PROFILE=PROFILE python benchmarks/_bot.py echo ...``
(see ``bench_cpu.py``/README for the whole command): a cProfile dump, or a
pyinstrument session when the name ends in ``.pyisession``.

Each function's own time (``tottime``) is put in an area by its file. C functions
(``~`` in pstats) and stdlib code other than ``json`` and ``logging`` (e.g.
``contextlib``'s ``@contextmanager`` machinery, ``http.cookiejar`` under httpx) go to
the area of their callers, in proportion to the time each
caller spent in them, except the ones that are an area of their own: ``epoll.poll``
(waiting, not CPU: left out of the percentages), socket calls (kernel send/recv) and
the ``_json`` scanner/encoder. Work in worker threads (`FileStore`'s fsync in
``trio.to_thread``) is not in a cProfile of the main thread. Printed: the share of
the main thread's busy time per area, then the top functions by own time and the
cumulative time of chosen entry points.
"""

from __future__ import annotations

import argparse
import pstats
from collections import defaultdict
from typing import Any

Key = tuple[str, int, str]

#: (area, substrings of the file path); the first match wins.
AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("httpx", ("/httpx/",)),
    ("httpcore", ("/httpcore/",)),
    ("h11", ("/h11/",)),
    ("anyio/sniffio", ("/anyio/", "/sniffio/")),
    ("cattrs (incl. generated)", ("/cattrs/", "<cattrs generated")),
    ("attrs (incl. generated)", ("/attr/", "/attrs/", "<attrs generated")),
    ("JSON (stdlib)", ("/json/",)),
    ("logging", ("/logging/",)),
    ("trio: sockets/streams", ("/trio/_highlevel_socket", "/trio/_socket")),
    ("trio: scheduler, cancel scopes", ("/trio/",)),
    ("outcome", ("/outcome/",)),
    ("weixin_trio: _wire (structure/unstructure)", ("/weixin_trio/_wire/",)),
    ("weixin_trio: _client (requests, sends)", ("/weixin_trio/_client/",)),
    ("weixin_trio: _monitor", ("/weixin_trio/_monitor/",)),
    ("weixin_trio: store", ("/weixin_trio/store/",)),
    ("weixin_trio: _proto (headers, markdown filter, ids)", ("/weixin_trio/_proto/",)),
    ("weixin_trio: other", ("/weixin_trio/",)),
]
WAITING = "waiting in epoll (not CPU)"
SOCKET = "socket syscalls (send/recv)"
JSON = "JSON (stdlib)"
THREADS = "thread hand-off (to_thread)"

#: Entry points whose cumulative time is printed (substring of "file:function").
ENTRY_POINTS = [
    "httpx/_client.py:send",
    "httpx/_client.py:build_request",
    "httpx/_models.py:__init__",
    "httpcore/_async/connection_pool.py:handle_async_request",
    "h11/_connection.py:send",
    "h11/_connection.py:next_event",
    "json/__init__.py:dumps",
    "json/__init__.py:loads",
    "cattrs",
    "logging/__init__.py:debug",
    "logging/__init__.py:isEnabledFor",
    "trio/_core/_run.py:unrolled_run",
    "trio/_threads.py:to_thread_run_sync",
]


def area_of(key: Key) -> str | None:
    """The area of a Python function, or ``None`` for a C function."""
    filename, _, name = key
    if filename == "~":
        if "epoll" in name:
            return WAITING
        if "socket" in name and ("send" in name or "recv" in name):
            return SOCKET
        if "_json" in name or "encode_basestring" in name:
            return JSON
        if "_thread" in name or ("lock" in name.lower() and "acquire" in name):
            return THREADS
        return None
    path = filename.replace("\\", "/")
    for area, needles in AREAS:
        if any(n in path for n in needles):
            return area
    if "/lib/python3" in path and "-packages/" not in path:
        return None  # other stdlib: its callers' area
    return "other Python"


def summarise(path: str, top: int) -> None:
    stats: dict[Key, Any] = pstats.Stats(path).stats  # type: ignore[attr-defined]
    by_area: dict[str, float] = defaultdict(float)

    def caller_area(key: Key, depth: int = 0) -> dict[str, float]:
        """Shares of ``key``'s own time by the areas of its (Python) callers."""
        callers = stats[key][4]
        weights: dict[str, float] = defaultdict(float)
        total = sum(edge[2] for edge in callers.values()) or 1.0
        for caller, edge in callers.items():
            area = area_of(caller)
            if area is None and depth < 8 and caller in stats:
                for sub, share in caller_area(caller, depth + 1).items():
                    weights[sub] += share * edge[2] / total
            else:
                weights[area or "C (unattributed)"] += edge[2] / total
        return weights or {"C (unattributed)": 1.0}

    for key, (_, _, tottime, _, _) in stats.items():
        area = area_of(key)
        if area is None:
            for sub, share in caller_area(key).items():
                by_area[sub] += tottime * share
        else:
            by_area[area] += tottime
    waiting = by_area.pop(WAITING, 0.0)
    busy = sum(by_area.values())
    print(f"profile {path}: {busy:.2f} s busy (main thread), {waiting:.2f} s waiting in epoll")
    print(f"{'area':48s} {'s':>7s} {'%':>6s}")
    for area, seconds in sorted(by_area.items(), key=lambda kv: -kv[1]):
        print(f"{area:48s} {seconds:7.2f} {100 * seconds / busy:5.1f}%")
    print(f"\ntop {top} functions by own time (% of busy):")
    ranked = sorted(stats.items(), key=lambda kv: -kv[1][2])
    shown = 0
    for key, (_, ncalls, tottime, _, _) in ranked:
        if shown >= top:
            break
        if area_of(key) == WAITING:
            continue
        filename, line, name = key
        short = "/".join(filename.split("/")[-2:])
        print(f"  {100 * tottime / busy:5.1f}%  {ncalls:8d} calls  {short}:{line}({name})")
        shown += 1
    print("\ncumulative time of entry points (% of busy; coroutine frames make it approximate):")
    for needle in ENTRY_POINTS:
        cum = 0.0
        calls = 0
        for (filename, _, name), (_, ncalls, _, cumtime, _) in stats.items():
            if needle in f"{filename}:{name}":
                cum = max(cum, cumtime)
                calls = ncalls if cumtime >= cum else calls
        if cum:
            print(f"  {100 * cum / busy:5.1f}%  {calls:8d} calls  {needle}")


def summarise_sampled(path: str, top: int) -> None:
    """The same areas from a pyinstrument session (sampled wall time of the main thread).

    A sample's time goes to the innermost Python frame (C calls are in their caller);
    stdlib frames other than ``json``/``logging`` and synthetic frames take the area of
    their nearest caller. Self time of trio's ``get_events`` is waiting in epoll.
    """
    from pyinstrument.session import Session  # the dev extra

    root = Session.load(path).root_frame(trim_stem=False)
    if root is None:
        raise SystemExit(f"{path}: no samples")
    by_area: dict[str, float] = defaultdict(float)
    by_function: dict[str, float] = defaultdict(float)
    stack: list[tuple[Any, str, str]] = [(root, "other Python", "")]
    while stack:
        frame, inherited, name_of = stack.pop()
        file_path = frame.file_path or ""
        area: str | None = inherited
        if file_path and not frame.is_synthetic:
            key = ("~" if file_path == "<built-in>" else file_path, 0, frame.function)
            area = area_of(key)
        own = frame.time - sum(child.time for child in frame.children)
        if "_io_epoll" in file_path and frame.function == "get_events":
            area = WAITING
        by_area[area or inherited] += own
        label = name_of if frame.is_synthetic else f"{frame.file_path_short}:{frame.function}"
        by_function[label] += own
        stack.extend((child, area or inherited, label) for child in frame.children)
    waiting = by_area.pop(WAITING, 0.0)
    busy = sum(by_area.values())
    print(f"session {path}: {busy:.2f} s busy (main thread), {waiting:.2f} s waiting in epoll")
    print(f"{'area':48s} {'s':>7s} {'%':>6s}")
    for name, seconds in sorted(by_area.items(), key=lambda kv: -kv[1]):
        print(f"{name:48s} {seconds:7.2f} {100 * seconds / busy:5.1f}%")
    print(f"\ntop {top} functions by own time (% of busy):")
    for name, seconds in sorted(by_function.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {100 * seconds / busy:5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.profile.endswith(".pyisession"):
        summarise_sampled(args.profile, args.top)
    else:
        summarise(args.profile, args.top)


if __name__ == "__main__":
    main()
