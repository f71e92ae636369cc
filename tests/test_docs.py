"""Every Python code block of the README and ``docs/`` runs, so samples cannot rot.

The blocks of one page run in order in one namespace (like a notebook), with nothing
imported for them: a sample that forgets an import fails here. The only names given
are the placeholders the pages leave to the reader, each bound to something real:

- ``WEIXIN_TRIO_TOKEN``, ``WEIXIN_TRIO_BASE_URL``, ``WEIXIN_TRIO_BOT_ID`` in the
  environment, and ``TOKEN``, ``BASE_URL``, ``BOT_ID``: an account of a fake iLink
  server served on loopback (in a thread of its own, with a real clock);
- ``client`` (a client of that account), ``user`` (a user who wrote to it), ``path``,
  ``store``, ``runner`` (from ``open_accounts``), ``show_qr``, ``answer_markdown``:
  for the fragments that use them.

How a block runs:

- a block with top-level ``await`` runs inside a trio run where ``client``, ``store``
  and ``runner`` are open;
- ``trio.run(main)`` runs ``main`` for a real second (the samples serve forever) and
  must end cleanly;
- every ``async def test_*`` a page defines then runs like pytest-trio would run it,
  with the ``fake_ilink``, ``ilink_client`` and ``autojump_clock`` fixtures, including
  the plugin's protocol-issue check and ``@pytest.mark.allow_protocol_issues``.
"""

from __future__ import annotations

import ast
import inspect
import re
import struct
import threading
from contextlib import AsyncExitStack
from pathlib import Path
from queue import Queue
from typing import TYPE_CHECKING, Any

import pytest
import trio
from trio.testing import MockClock

import weixin_trio as wx
from weixin_trio.testing import FakeILinkServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests._redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
USER = "reader@im.wechat"
RUN_FOR = 1.0  # seconds of real time a sample's trio.run(main) gets


def blocks(page: Path) -> list[tuple[int, str]]:
    """``(line, source)`` of each Python block of ``page``."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in FENCE.finditer(text)]


PAGES_WITH_CODE = [p for p in PAGES if blocks(p)]


class LoopbackFake:
    """A fake iLink server served on 127.0.0.1 from a thread with its own trio run."""

    def __init__(self) -> None:
        self.fake = FakeILinkServer(hold=0.2)
        self.fake.qr.auto_confirm = True
        self.base_url = ""
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._serve,), daemon=True)

    async def _serve(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as self._scope:
            async with trio.open_nursery() as nursery:
                self.base_url = await nursery.start(self.fake.serve)
                self._ready.put(None)

    def __enter__(self) -> LoopbackFake:
        self._ready: Queue[None] = Queue()
        self._thread.start()
        self._ready.get(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        assert self._scope is not None
        trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
        self._thread.join(timeout=30)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the server's thread (its state belongs to that trio run)."""
        return trio.from_thread.run_sync(fn, trio_token=self._token)


@pytest.fixture
def loopback() -> Iterator[LoopbackFake]:
    with LoopbackFake() as served:
        yield served


def sample_files(where: Path) -> None:
    """The files the samples send."""
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    for name, data in {
        "chart.png": png,
        "clip.mp4": b"\0\0\0\x18ftypmp42" + b"\0" * 64,
        "report.pdf": b"%PDF-1.4\n" + b"\0" * 64,
        "big.zip": b"PK\x03\x04" + b"\0" * 4096,
        "hello.silk": b"\x02#!SILK_V3" + struct.pack("<h", 4) + b"\1\2\3\4" + b"\xff\xff",
    }.items():
        (where / name).write_bytes(data)


async def _top_level(code: Any, ns: dict[str, Any], served: LoopbackFake) -> None:
    """Run a block with top-level ``await`` with ``client``, ``store``, ``runner`` open."""
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            wx.open_client(
                token=served.fake.token,
                base_url=served.base_url,
                cdn_base_url=served.fake.cdn_base_url,
                account_id=BOT,
            )
        )
        # ``user`` wrote first, so the client has a context token for them.
        wrote = trio.Event()

        async def note(msg: wx.Message) -> None:
            wrote.set()

        async with wx.open_monitor(client, note, store=wx.MemoryStore()):
            await trio.to_thread.run_sync(served.call, lambda: served.fake.inject_text(USER, "hi"))
            with trio.fail_after(10):
                await wrote.wait()
        store = wx.FileStore("state")
        stack.push_async_callback(store.aclose)

        async def echo(msg: wx.Message) -> None:
            await msg.reply(f"echo {msg.text}")

        runner = await stack.enter_async_context(wx.open_accounts(echo, [], store=store))
        ns.update(client=client, store=store, runner=runner)
        with trio.fail_after(30):
            await eval(code, ns)


BOT = "docs@im.bot"


def run_page(page: Path, served: LoopbackFake, monkeypatch: pytest.MonkeyPatch) -> None:
    real_run = trio.run

    def run_for_a_while(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async def bounded() -> Any:
            with trio.move_on_after(RUN_FOR):
                return await fn(*args)
            return None

        return real_run(bounded, **kwargs)

    ns: dict[str, Any] = {
        "__name__": f"docs_{page.stem}",
        "TOKEN": served.fake.token,
        "BASE_URL": served.base_url,
        "BOT_ID": BOT,
        "user": USER,
        "path": "report.pdf",
        "answer_markdown": "**Done.** The answer, in *markdown*.",
        "show_qr": lambda qr: None,
    }
    monkeypatch.setattr(trio, "run", run_for_a_while)
    for line, source in blocks(page):
        name = f"{page.relative_to(ROOT)}:{line}"
        try:
            code = compile(source, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            if code.co_flags & inspect.CO_COROUTINE:
                real_run(_top_level, code, ns, served)
            else:
                exec(code, ns)
        except BaseException as exc:
            raise AssertionError(f"the code block at {name} failed: {exc!r}") from exc
    monkeypatch.setattr(trio, "run", real_run)
    for test_name, test in list(ns.items()):
        if test_name.startswith("test_") and inspect.iscoroutinefunction(test):
            run_test(test, f"{page.relative_to(ROOT)}::{test_name}")


def run_test(test: Callable[..., Any], name: str) -> None:
    """Run a sample test the way pytest-trio and our plugin would."""
    wanted = inspect.signature(test).parameters
    marks = {m.name for m in getattr(test, "pytestmark", [])}
    fake = FakeILinkServer(seed=0)

    async def with_fixtures() -> None:
        kwargs: dict[str, Any] = {}
        async with AsyncExitStack() as stack:
            if "fake_ilink" in wanted:
                kwargs["fake_ilink"] = fake
            if "ilink_client" in wanted:
                kwargs["ilink_client"] = await stack.enter_async_context(
                    wx.open_client(
                        token=fake.token,
                        base_url=fake.base_url,
                        cdn_base_url=fake.cdn_base_url,
                        transport=fake.transport(),
                        account_id=fake.default.bot_id,
                        pacing=None,
                    )
                )
            if "autojump_clock" in wanted:
                kwargs["autojump_clock"] = clock
            await test(**kwargs)

    clock = MockClock(autojump_threshold=0)
    try:
        trio.run(with_fixtures, clock=clock)
    except BaseException as exc:
        raise AssertionError(f"the sample test {name} failed: {exc!r}") from exc
    if "allow_protocol_issues" not in marks:
        assert fake.protocol_issues == [], f"{name} caused protocol issues"


PAGE_IDS = [str(p.relative_to(ROOT)) for p in PAGES_WITH_CODE]


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=PAGE_IDS)
def test_every_code_block_of_the_page_runs(
    page: Path,
    loopback: LoopbackFake,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if "WEIXIN_TRIO_REDIS_URL" in page.read_text():  # the deployment guide: a real Redis
        redis: RedisServer = request.getfixturevalue("redis_server")
        monkeypatch.setenv("WEIXIN_TRIO_REDIS_URL", redis.url)
    monkeypatch.chdir(tmp_path)
    sample_files(tmp_path)
    monkeypatch.setenv("WEIXIN_TRIO_TOKEN", loopback.fake.token)
    monkeypatch.setenv("WEIXIN_TRIO_BASE_URL", loopback.base_url)
    monkeypatch.setenv("WEIXIN_TRIO_BOT_ID", BOT)
    run_page(page, loopback, monkeypatch)


def test_the_pages_have_code_to_run() -> None:
    # A change to the fence syntax must not turn this file into a no-op.
    assert len(PAGES_WITH_CODE) >= 6
    assert sum(len(blocks(p)) for p in PAGES_WITH_CODE) >= 15


def test_diagrams_are_shipped_rendered_not_as_raw_mermaid() -> None:
    # Mermaid fences show as raw text without the Mermaid script (offline); the docs
    # show SVGs rendered from docs/diagrams/*.mmd by `python3 tasks.py diagrams`.
    for page in PAGES:
        assert "```mermaid" not in page.read_text(), page
    sources = sorted((ROOT / "docs" / "diagrams").glob("*.mmd"))
    assert sources
    for source in sources:
        svg = source.with_suffix(".svg")
        assert svg.read_text().lstrip().startswith("<svg"), svg
        assert any(f"diagrams/{svg.name}" in page.read_text() for page in PAGES), svg


def test_docstrings_use_mkdocstrings_references_not_sphinx_roles() -> None:
    # The API reference renders Markdown: a Sphinx role would show as raw ":class:".
    role = re.compile(r":(class|meth|func|attr|exc|mod|data|obj):`")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "src").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if role.search(line)
    ]
    assert found == []


def test_the_readme_bot_answers_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """The README's first sample, run as a program: it echoes, and Ctrl+C ends it at once
    with exit 0 and nothing on stderr (no traceback), its journal flushed."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    def http(base_url: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            base_url + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    (tmp_path / "bot.py").write_text(blocks(ROOT / "README.md")[0][1])
    server = subprocess.Popen(
        [sys.executable, "-m", "weixin_trio", "fake-server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    with server:
        info = json.loads(server.stdout.readline())
        env = {
            **os.environ,
            "WEIXIN_TRIO_TOKEN": info["token"],
            "WEIXIN_TRIO_BASE_URL": info["base_url"],
            "WEIXIN_TRIO_BOT_ID": "readme@im.bot",
        }
        bot = subprocess.Popen(
            [sys.executable, "bot.py"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
        )
        with bot:
            http(info["base_url"], "/_fake/inject", {"user": USER, "text": "hi"})
            deadline = time.monotonic() + 20
            while not any(s["text"] == "echo hi" for s in http(info["base_url"], "/_fake/sent")):
                assert time.monotonic() < deadline, "the README bot never answered"
                time.sleep(0.05)
            bot.send_signal(signal.SIGINT)
            started = time.monotonic()
            assert bot.wait(10) == 0
            assert time.monotonic() - started < 5
            assert bot.stderr is not None
            assert bot.stderr.read() == ""
        server.send_signal(signal.SIGINT)
        assert server.wait(10) == 0
    assert (tmp_path / "state").is_dir()


def test_the_architecture_page_matches_the_source_tree() -> None:
    # docs/architecture.md names the packages and modules; a move or a rename that
    # forgets the page fails here.
    text = (ROOT / "docs" / "architecture.md").read_text()
    src = ROOT / "src" / "weixin_trio"
    packages = sorted(p.parent.name for p in src.glob("*/__init__.py"))
    assert len(packages) >= 8
    for package in packages:
        assert f"`{package}/`" in text, f"the architecture page omits {package}/"
    named = re.findall(r"`((?:[\w.]+/)*[\w.]+\.py|[\w]+/)`", text)
    assert len(named) > 40
    for name in named:
        if name.startswith("tests/"):
            assert (ROOT / name).exists(), name
        elif "/" in name.rstrip("/"):
            assert (src / name).exists(), name
        elif name.endswith("/"):
            assert (src / name).is_dir() or (ROOT / "tests" / name).is_dir(), name
        else:  # a module named inside its package's paragraph
            assert any(src.rglob(name)), name
