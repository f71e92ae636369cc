"""The public surface: sorted, complete ``__all__``; no private module paths; no eager extras."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import types

import pytest

import weixin_trio as wx

MODULES = [
    "weixin_trio",
    "weixin_trio.testing",
    "weixin_trio.store",
    "weixin_trio.markdown",
    "weixin_trio.text",
    "weixin_trio.crypto",
    "weixin_trio.cdn",
    "weixin_trio.media",
    "weixin_trio.voice",
]

STABLE = [
    "open_client",
    "open_monitor",
    "run_monitor",
    "Message",
    "FileStore",
    "MemoryStore",
    "Backoff",
    "WeixinError",
    "ApiError",
    "StaleTokenError",
    "RateLimitedError",
    "SendWindowClosedError",
    "TransportError",
    "ProtocolError",
    "CdnError",
    "MonitorCrashed",
]


def isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then everything else."""
    if name.isupper() and len(name) > 1:
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_unique_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=isort_key)
    assert len(exported) == len(set(exported))
    for item in exported:
        assert hasattr(module, item), f"{name}.{item} is in __all__ but missing"
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and not isinstance(v, types.ModuleType)
        and getattr(v, "__module__", None) in (name, name + "._impl")
        and (inspect.isclass(v) or inspect.isfunction(v))
    }
    assert public <= set(exported), f"public but not exported: {public - set(exported)}"


def test_stable_names_exist() -> None:
    for name in STABLE:
        assert hasattr(wx, name), name
    from weixin_trio.testing import FakeILinkServer

    assert FakeILinkServer.__name__ == "FakeILinkServer"


def test_public_names_do_not_leak_private_modules() -> None:
    for name in wx.__all__:
        obj = getattr(wx, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "weixin_trio", f"{name}: {obj.__module__}"


@pytest.mark.parametrize("cls", [wx.ILinkClient, wx.Monitor])
def test_handles_have_no_public_constructor(cls: type) -> None:
    with pytest.raises(TypeError, match="no public constructor"):
        cls()


def test_importing_the_library_does_not_import_extras() -> None:
    code = (
        "import sys, weixin_trio, weixin_trio.testing\n"
        "print(sorted(m for m in ('cryptography', 'rich', 'segno', 'pilk') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['cryptography']"  # only the test kit's CDN needs it
    code_lib = (
        "import sys, weixin_trio\n"
        "print(sorted(m for m in ('cryptography', 'rich', 'segno', 'pilk') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code_lib], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
