"""The exception tree (one module, drawn in its docstring) and the unwrapping policy."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest
import trio

import weixin_trio as wx
import weixin_trio.crypto
import weixin_trio.login
import weixin_trio.store
import weixin_trio.voice
from weixin_trio import _errors
from weixin_trio._util import unwrap_single_error
from weixin_trio.testing import FakeILinkServer, Fault

USER = "alice@im.wechat"

#: Exception classes that may live outside ``_errors``: none.
OUTSIDE: set[str] = set()


def _drawn_tree() -> dict[str, str | None]:
    """``{class name: parent name}`` as the module docstring draws it."""
    doc = _errors.__doc__ or ""
    block = doc.split("::", 1)[1].split("\n\n", 2)[1]
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for line in block.splitlines():
        match = re.match(r"^ {4}((?:[│ ] {3}|[├└]── )*)(\w+)", line)
        assert match, line
        depth = len(match.group(1)) // 4
        name = match.group(2)
        del stack[depth:]
        parents[name] = stack[-1] if stack else None
        stack.append(name)
    return parents


def _own_classes() -> list[type[BaseException]]:
    return [
        obj
        for obj in vars(_errors).values()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ != "builtins"
    ]


def _defined_tree() -> dict[str, str | None]:
    """``{class name: parent name}`` of the classes; ``Exception`` is the implied root."""
    tree: dict[str, str | None] = {}
    for cls in _own_classes():
        base = cls.__bases__[0]
        tree[cls.__name__] = None if base is Exception else base.__name__
        if base.__module__ == "builtins" and base is not Exception:
            tree[base.__name__] = None
    return tree


def test_docstring_tree_matches_the_classes() -> None:
    assert _drawn_tree() == _defined_tree()


def test_every_exception_class_lives_in_errors() -> None:
    own = {id(cls) for cls in _own_classes()}
    outside = []
    for info in pkgutil.walk_packages(wx.__path__, "weixin_trio."):
        if info.name.endswith(("__main__", "pytest_plugin")):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__.startswith("weixin_trio")
                and id(obj) not in own
                and f"{obj.__module__}.{obj.__qualname__}" not in OUTSIDE
            ):
                outside.append(f"{info.name}.{name}")
    assert outside == []


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (wx, "MalformedMessageError"),
        (wx, "StoreError"),
        (weixin_trio.store, "StoreError"),
        (weixin_trio.store, "StoreUnavailableError"),
        (weixin_trio.store, "StoreLockedError"),
        (weixin_trio.store, "LeaseLostError"),
        (weixin_trio.login, "QrLoginError"),
        (weixin_trio.login, "QrLoginExpired"),
        (weixin_trio.login, "VerifyCodeBlocked"),
        (weixin_trio.login, "QrLoginTimeout"),
        (weixin_trio.login, "QrLoginCancelled"),
        (weixin_trio.crypto, "CryptoError"),
        (weixin_trio.voice, "VoiceCodecUnavailable"),
    ],
)
def test_old_import_paths_still_work(module: object, name: str) -> None:
    assert getattr(module, name) is getattr(_errors, name)


def test_send_window_closed_is_not_an_api_error() -> None:
    assert not issubclass(wx.SendWindowClosedError, wx.ApiError)
    assert _drawn_tree()["SendWindowClosedError"] == "WeixinError"


# --- unwrap_single_error -----------------------------------------------------------


async def test_unwrap_single_error_raises_the_one_exception_as_itself() -> None:
    error = KeyError("k")

    async def nested() -> None:
        with unwrap_single_error():
            async with trio.open_nursery(), trio.open_nursery():
                raise error

    with pytest.raises(KeyError) as info:
        await nested()
    assert info.value is error


async def test_unwrap_single_error_keeps_several_as_one_group() -> None:
    async def fail(exc: Exception) -> None:
        raise exc

    with pytest.RaisesGroup(KeyError, ValueError):
        with unwrap_single_error():
            async with trio.open_nursery() as outer:
                async with trio.open_nursery() as inner:
                    inner.start_soon(fail, KeyError("a"))
                    inner.start_soon(fail, ValueError("b"))
                outer.start_soon(trio.sleep, 0)


# --- the open_* context managers ----------------------------------------------------


async def test_user_error_leaves_open_client_and_open_monitor_unwrapped(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(msg: wx.Message) -> None:
        pass

    with pytest.raises(KeyError, match="mine"):
        async with (
            wx.open_client(
                token=fake_ilink.token,
                base_url=fake_ilink.base_url,
                transport=fake_ilink.transport(),
            ) as client,
            wx.open_monitor(client, handler),
        ):
            raise KeyError("mine")


async def test_stale_token_error_from_the_body_is_unwrapped(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(msg: wx.Message) -> None:
        pass

    fake_ilink.inject_fault("getconfig", Fault.api_error(ret=-14, errcode=-14))
    with pytest.raises(wx.StaleTokenError):
        async with wx.open_monitor(ilink_client, handler, notify=False):
            await ilink_client.get_config(USER)


async def test_monitor_crashed_from_the_services_nursery_is_unwrapped(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = wx.MemoryStore()

    async def handler(msg: wx.Message) -> None:
        store.fail_writes = True  # the done mark (written by the flusher) fails

    async def run() -> None:
        async with wx.open_monitor(ilink_client, handler, store=store):
            fake_ilink.inject_text(USER, "hi")
            await trio.sleep_forever()

    with pytest.raises(wx.MonitorCrashed, match="cannot write the journal"):
        await run()


async def test_user_error_leaves_open_accounts_unwrapped(autojump_clock: trio.abc.Clock) -> None:
    async def handler(msg: wx.Message) -> None:
        pass

    with pytest.raises(KeyError):
        async with wx.open_accounts(handler, store=wx.MemoryStore()):
            raise KeyError("mine")
