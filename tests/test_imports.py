"""What importing the package and running a text bot load (issue 16, memory; DESIGN §11).

``import weixin_trio`` loads the exceptions and the version only; the public names load
on first use (PEP 562). A text echo bot, run in a process of its own against the
loopback fake, never loads the media, CDN-transfer, crypto, login or CLI code, nor
``cryptography``, ``rich`` or httpx. Every probe runs in a fresh interpreter, because this
test process has imported everything long before.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import pickle
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
import trio

import weixin_trio
import weixin_trio.media
from tests._helpers import SRC
from weixin_trio._proto.media_kind import MediaKind
from weixin_trio.testing import FakeILinkServer

if TYPE_CHECKING:
    from pathlib import Path

PACKAGE = SRC / "weixin_trio"

#: Never loaded by ``import weixin_trio`` (modules and packages, with their submodules).
NOT_ON_IMPORT = (
    "trio",
    "httpx",
    "httpcore",
    "attrs",
    "cattrs",
    "cryptography",
    "rich",
    "segno",
    "coredis",
    "pilk",
    "weixin_trio._client",
    "weixin_trio._monitor",
    "weixin_trio._cli",
    "weixin_trio.store",
    "weixin_trio.testing",
    "weixin_trio.redis",
    "weixin_trio.media",
    "weixin_trio.cdn",
    "weixin_trio.crypto",
    "weixin_trio.login",
    "weixin_trio.voice",
)

#: Never loaded by a text bot (open_client + open_monitor + FileStore, replies only).
NOT_IN_TEXT_BOT = (
    "cryptography",
    "rich",
    "segno",
    "coredis",
    "pilk",
    "weixin_trio._cli",
    "weixin_trio.testing",
    "weixin_trio.redis",
    "weixin_trio.crypto",
    "weixin_trio.media",
    "weixin_trio.login",
    "weixin_trio.voice",
    "weixin_trio._proto.login_machine",
    "weixin_trio._client.cdn_transfer",
    "weixin_trio._client.cdn_download",
    "weixin_trio._client.media_send",
    # the operations port (run --metrics-port) only
    "weixin_trio._ops",
    "prometheus_client",
    "hypercorn",
    # API requests run on h11 (weixin_trio._http); httpx is for users' clients, test
    # transports and the CDN only, and pulls in email, http.cookiejar, urllib.request.
    "httpx",
    "httpcore",
    "email",
    "http.cookiejar",
    "urllib.request",
)

ECHO_BOT = """
import json, sys
import trio
import weixin_trio as wx

async def main(base_url, token, count, store_dir):
    handled = 0
    done = trio.Event()

    async def echo(msg):
        nonlocal handled
        await msg.reply(msg.text)
        handled += 1
        if handled >= count:
            done.set()

    async with wx.FileStore(store_dir) as store:
        async with wx.open_client(
            token=token, base_url=base_url, pacing=None, send_window=None
        ) as client:
            async with wx.open_monitor(client, echo, store=store):
                await done.wait()
    print(json.dumps(sorted(sys.modules)))

trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC)}


def _fresh(code: str) -> Any:
    """Run ``code`` in a new interpreter; it prints one JSON value, which is returned."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return json.loads(proc.stdout)


def _loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(m == n or m.startswith(n + ".") for m in modules))


def _public_homes() -> tuple[dict[str, str], dict[str, str]]:
    """``__init__``'s imports by name: (loaded at import, under ``TYPE_CHECKING``)."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))

    def homes(body: list[ast.stmt]) -> dict[str, str]:
        return {
            alias.asname or alias.name: "." * node.level + (node.module or "")
            for node in body
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }

    [guarded] = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "typing.TYPE_CHECKING"
    ]
    return homes(tree.body), homes(guarded.body)


def test_import_loads_only_the_exceptions_and_the_version() -> None:
    modules = _fresh("import json, sys, weixin_trio; print(json.dumps(sorted(sys.modules)))")
    assert _loaded(modules, NOT_ON_IMPORT) == []
    assert sorted(m for m in modules if m.startswith("weixin_trio")) == [
        "weixin_trio",
        "weixin_trio._errors",
        "weixin_trio._version",
    ]


def test_sans_io_helper_modules_load_without_trio() -> None:
    code = (
        "import json, sys\n"
        "import weixin_trio.text, weixin_trio.markdown, weixin_trio.media, weixin_trio.cdn\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    assert _loaded(_fresh(code), ("trio", "httpx", "attrs", "weixin_trio._client")) == []


def test_public_names_resolve_in_a_fresh_process() -> None:
    code = (
        "import json, weixin_trio as wx\n"
        "from weixin_trio import *\n"
        "print(json.dumps({\n"
        "    'missing': [n for n in wx.__all__ if n not in globals()],\n"
        "    'module': sorted({getattr(getattr(wx, n), '__module__', 'weixin_trio')"
        " for n in wx.__all__ if not isinstance(getattr(wx, n), str)}),\n"
        "    'dir': sorted(set(wx.__all__) - set(dir(wx))),\n"
        "    'text': wx.text.split_text('ab'),\n"
        "    'media': wx.media.safe_filename('a/b'),\n"
        "}))\n"
    )
    found = _fresh(code)
    assert found["missing"] == []
    assert found["module"] == ["weixin_trio"]
    assert found["dir"] == []
    assert found["text"] == ["ab"]
    assert "/" not in found["media"]


def test_unknown_names_still_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'open_clinet'"):
        weixin_trio.open_clinet  # type: ignore[attr-defined]  # noqa: B018


def test_every_public_name_is_its_home_modules_object() -> None:
    eager, lazy = _public_homes()
    assert set(eager) | set(lazy) == set(weixin_trio.__all__)
    assert lazy == weixin_trio._LAZY  # the run-time table agrees with what mypy sees
    for name, home in {**eager, **lazy}.items():
        module = importlib.import_module(home, "weixin_trio")
        assert getattr(weixin_trio, name) is getattr(module, name), name


def test_media_kind_keeps_its_public_home() -> None:
    assert weixin_trio.media.MediaKind is MediaKind
    assert MediaKind.__module__ == "weixin_trio.media"
    assert pickle.loads(pickle.dumps(MediaKind.VIDEO)) is MediaKind.VIDEO


@pytest.mark.slow
async def test_text_echo_bot_loads_no_media_crypto_cli_or_httpx(tmp_path: Path) -> None:
    fake = FakeILinkServer(hold=0.5)
    texts = {"alice@im.wechat": ["a1", "a2"], "bob@im.wechat": ["b1"]}
    for user, user_texts in texts.items():
        for text in user_texts:
            fake.inject_text(user, text)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(fake.serve)
            proc = await trio.run_process(
                [sys.executable, "-c", ECHO_BOT, base_url, fake.token, "3", str(tmp_path)],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=_env(),
            )
            nursery.cancel_scope.cancel()
    assert proc.returncode == 0, proc.stderr.decode()
    for user, user_texts in texts.items():
        assert fake.sent_texts(user) == user_texts
    modules = json.loads(proc.stdout)
    assert "weixin_trio._client.ilink_client" in modules  # the probe saw the bot's imports
    assert _loaded(modules, NOT_IN_TEXT_BOT) == []
