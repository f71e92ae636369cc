"""The architecture, checked: the import graph has no cycles, the sans-IO core imports no
trio or httpx, no mixins, and modules stay small (DESIGN §2, STYLE 20-22)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "src" / "weixin_trio"

#: Modules with no I/O: no trio, no httpx, and they import only other sans-IO modules.
SANS_IO = (
    "weixin_trio._wire",
    "weixin_trio._proto",
    "weixin_trio._client.state",
    "weixin_trio.cdn",
    "weixin_trio.crypto",
    "weixin_trio.markdown",
    "weixin_trio.media",
    "weixin_trio.text",
)
IO_PACKAGES = ("trio", "httpx", "httpcore", "anyio", "coredis")

#: Cycles that remain, each to be removed; the test fails when one disappears too, so
#: the list only shrinks.
KNOWN_CYCLES: set[str] = set()

#: Modules over the size limit, each to be split; the list only shrinks.
MAX_LINES = 500
KNOWN_LONG: set[str] = set()


@functools.cache
def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Every import of every module (``TYPE_CHECKING`` and function-local ones too)."""
    found: dict[str, set[str]] = {}
    for name, path in mods.items():
        pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = pkg[: len(pkg) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{module}.{alias.name}"
                    targets.add(full if full in mods else module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        found[name] = targets
    return found


@functools.cache
def _all_imports() -> dict[str, set[str]]:
    return _imports(_modules())


@functools.cache
def _graph() -> dict[str, set[str]]:
    """The package's own import graph (the checker of ``before-stop``, as a test)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, targets in _all_imports().items():
        for target in targets:
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> set[str]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: set[str] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.add(" <-> ".join(sorted(x.removeprefix("weixin_trio.") for x in comp)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == {"a <-> b"}


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == KNOWN_CYCLES


def _in_sans_io(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in SANS_IO)


@pytest.mark.parametrize("module", sorted(m for m in _modules() if _in_sans_io(m)))
def test_sans_io_modules_import_no_io(module: str) -> None:
    imports = _all_imports()[module]
    io = sorted(t for t in imports if t.split(".")[0] in IO_PACKAGES)
    assert io == [], f"{module} imports {io}"
    graph = _graph()
    own = sorted(t for t in graph[module] if not _in_sans_io(t) and t != "weixin_trio._errors")
    assert own == [], f"{module} imports modules outside the sans-IO core: {own}"


def test_no_mixins() -> None:
    mixins = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Mixin"):
                mixins.append(f"{name}.{node.name}")
    assert mixins == []


def test_modules_stay_small() -> None:
    long = {
        name
        for name, path in _modules().items()
        if len(path.read_text(encoding="utf-8").splitlines()) > MAX_LINES
    }
    assert long == KNOWN_LONG
