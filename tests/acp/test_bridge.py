"""The ACP bridge in-process (fake iLink transport) with the fake agent as a real subprocess.

Subprocesses need the real clock, so every wait is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio

import weixin_trio as wx
from weixin_trio._acp.bridge import Bridge, open_bridge
from weixin_trio._acp.user_agent import SESSIONS, AcpConfig

from .._helpers import until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from weixin_trio.testing import FakeILinkServer

pytestmark = pytest.mark.slow

AGENT = (sys.executable, str(Path(__file__).with_name("fake_agent.py")))
ANN = "ann@im.wechat"
BOB = "bob@im.wechat"
ACCOUNT = "acct"
LIMIT = 20  # seconds: a generous bound on anything one test waits for


@pytest.fixture
def store() -> wx.MemoryStore:
    return wx.MemoryStore()


@asynccontextmanager
async def bridged(
    client: wx.ILinkClient,
    store: wx.MemoryStore,
    root: Path,
    *,
    agent_args: tuple[str, ...] = (),
    **options: Any,
) -> AsyncIterator[Bridge]:
    config = AcpConfig(command=(*AGENT, *agent_args), store=store, account_id=ACCOUNT, **options)
    async with (
        open_bridge(config, root) as bridge,
        wx.open_monitor(
            client, bridge.handle, store=store, control=bridge.is_control, max_attempts=1
        ),
    ):
        yield bridge


def texts(fake: FakeILinkServer, user: str = ANN) -> list[str]:
    return [s.text for s in fake.sent_to(user) if s.text]


async def wait_text(fake: FakeILinkServer, text: str, user: str = ANN) -> None:
    await until(lambda: any(text in t for t in texts(fake, user)), timeout=LIMIT)


async def test_paragraphs_stream_in_order_with_typing(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="all"):
            fake_ilink.inject_text(ANN, "hello")
            await wait_text(fake_ilink, "The end.")
    sent = fake_ilink.sent_to(ANN)
    assert [s.text for s in sent] == ["First paragraph.", "Second **bold** paragraph.", "The end."]
    assert len({s.run_id for s in sent}) == 1
    assert (ANN, 1) in fake_ilink.typing_events()
    assert (ANN, 2) in fake_ilink.typing_events()


async def test_tool_calls_become_progress_items_of_one_run(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="all"):
            fake_ilink.inject_text(ANN, "tool")
            await wait_text(fake_ilink, "tool done")
    sent = fake_ilink.sent_to(ANN)
    types = [s.items[0]["type"] for s in sent]
    assert types == [11, 12, 1]
    assert sent[0].items[0]["tool_call_start_item"]["tool_name"] == "Read notes.txt"
    assert sent[1].items[0]["tool_call_result_item"]["tool_call_id"] == "t1"
    assert len({s.run_id for s in sent}) == 1


async def test_stop_cancels_the_running_prompt(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="all"):
            fake_ilink.inject_text(ANN, "slow")
            await wait_text(fake_ilink, "working")
            start = trio.current_time()
            fake_ilink.inject_text(ANN, "/stop")
            await wait_text(fake_ilink, "(stopped)")
            took = trio.current_time() - start
    assert texts(fake_ilink) == ["working", "(stopped)"]
    assert took < 5  # the agent ended the prompt, not the bridge's cancel grace (10 s)


async def test_new_starts_a_fresh_session(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="all"):
            fake_ilink.inject_text(ANN, "session")
            await wait_text(fake_ilink, "session ")
            first = await store.kv_get(ACCOUNT, SESSIONS, ANN)
            fake_ilink.inject_text(ANN, "/new")
            await wait_text(fake_ilink, "new session")
            second = await store.kv_get(ACCOUNT, SESSIONS, ANN)
            fake_ilink.inject_text(ANN, "session")
            await until(lambda: len(texts(fake_ilink)) == 3, timeout=LIMIT)
    assert isinstance(first, str)
    assert isinstance(second, str)
    assert first != second
    assert texts(fake_ilink)[0] == f"session {first}"
    assert texts(fake_ilink)[2] == f"session {second}"


@pytest.mark.parametrize(("reply", "result"), [("yes", "allowed"), ("no", "rejected")])
async def test_ask_puts_the_question_to_the_user(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    store: wx.MemoryStore,
    tmp_path: Path,
    reply: str,
    result: str,
) -> None:
    # The answer arrives while the user's lane is busy with the prompt that asked:
    # it must take the interrupt path, or it would wait behind that prompt for ever.
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="ask"):
            fake_ilink.inject_text(ANN, "perm")
            await wait_text(fake_ilink, "asks for permission")
            fake_ilink.inject_text(ANN, reply)
            await wait_text(fake_ilink, result)
    question = texts(fake_ilink)[0]
    assert "Edit main.py" in question
    assert "Allow, Reject" in question
    assert texts(fake_ilink)[-1] == result


async def test_ask_without_an_answer_rejects(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="ask", ask_timeout=0.5):
            fake_ilink.inject_text(ANN, "perm")
            await wait_text(fake_ilink, "rejected")
    assert texts(fake_ilink)[1:] == ["(no answer: rejected)", "rejected"]


async def test_stop_while_asking_cancels(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="ask"):
            fake_ilink.inject_text(ANN, "perm")
            await wait_text(fake_ilink, "asks for permission")
            fake_ilink.inject_text(ANN, "/stop")
            await wait_text(fake_ilink, "(stopped)")


@pytest.mark.parametrize(
    ("approve", "prompt", "result"),
    [
        ("read-only", "perm-read", "allowed"),
        ("read-only", "perm", "rejected"),
        ("all", "perm", "allowed"),
    ],
)
async def test_approval_policies(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    store: wx.MemoryStore,
    tmp_path: Path,
    approve: str,
    prompt: str,
    result: str,
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve=approve):
            fake_ilink.inject_text(ANN, prompt)
            await wait_text(fake_ilink, result)
    assert texts(fake_ilink) == [result]


async def test_a_dead_agent_is_restarted_and_the_user_told(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="all") as bridge:
            fake_ilink.inject_text(ANN, "die")
            await wait_text(fake_ilink, "agent stopped")
            first = bridge.users[ANN]
            fake_ilink.inject_text(ANN, "hello")
            await wait_text(fake_ilink, "The end.")
            assert first.restarts >= 1
            # Resumed: the restarted agent loaded the stored session.
            fake_ilink.inject_text(ANN, "history")
            await wait_text(fake_ilink, "history 3")


async def test_two_users_do_not_block_each_other(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="all") as bridge:
            fake_ilink.inject_text(ANN, "slow")
            await wait_text(fake_ilink, "working")
            fake_ilink.inject_text(BOB, "hello")
            await wait_text(fake_ilink, "The end.", BOB)
            assert texts(fake_ilink) == ["working"]  # Ann's prompt still runs
            fake_ilink.inject_text(ANN, "/stop")
            await wait_text(fake_ilink, "(stopped)")
            pids = {u.agent.process.pid for u in bridge.users.values() if u.agent}
    sessions = await store.kv_items(ACCOUNT, SESSIONS)
    assert set(sessions) == {ANN, BOB}
    assert sessions[ANN] != sessions[BOB]
    assert len(pids) == 2


async def test_a_restarted_bridge_resumes_the_stored_session(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="all"):
            fake_ilink.inject_text(ANN, "session")
            await wait_text(fake_ilink, "session ")
        async with bridged(ilink_client, store, tmp_path, approve="all"):
            fake_ilink.inject_text(ANN, "history")
            await wait_text(fake_ilink, "history")
    assert texts(fake_ilink)[1] == "history 2"
    assert not any("REPLAYED" in t for t in texts(fake_ilink))


async def test_an_agent_without_session_load_starts_anew_and_says_so(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, agent_args=("--no-load",)):
            fake_ilink.inject_text(ANN, "session")
            await wait_text(fake_ilink, "session ")
        async with bridged(ilink_client, store, tmp_path, agent_args=("--no-load",)):
            fake_ilink.inject_text(ANN, "history")
            await wait_text(fake_ilink, "history")
    assert "cannot resume" in texts(fake_ilink)[1]
    assert texts(fake_ilink)[2] == "history 1"


async def test_garbage_from_the_agent_is_skipped(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="all") as bridge:
            fake_ilink.inject_text(ANN, "garbage")
            await wait_text(fake_ilink, "still here")
            agent = bridge.users[ANN].agent
            assert agent is not None
            assert agent.connection.garbage == 1


async def test_file_access_outside_the_workspace_is_an_error(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="all"):
            fake_ilink.inject_text(ANN, "fs-outside")
            await wait_text(fake_ilink, "fs error")
    assert texts(fake_ilink) == ["fs error -32602"]


async def test_images_go_inline_and_files_as_links_into_the_workspace(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="all"):
            fake_ilink.inject_image(ANN, png)
            await wait_text(fake_ilink, "blocks image")
            fake_ilink.inject_file(ANN, b"notes", "notes.txt")
            await wait_text(fake_ilink, "blocks resource_link")
    assert [p.read_bytes() for p in tmp_path.glob("*/*/inbox/notes.txt")] == [b"notes"]


async def test_an_idle_agent_is_stopped_and_started_again_on_demand(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(
            ilink_client, store, tmp_path, approve="all", idle_timeout=0.3
        ) as bridge:
            fake_ilink.inject_text(ANN, "session")
            await wait_text(fake_ilink, "session ")
            agent = bridge.users[ANN].agent
            assert agent is not None
            await until(lambda: ANN not in bridge.users, timeout=LIMIT)
            assert agent.process.returncode is not None
            fake_ilink.inject_text(ANN, "history")
            await wait_text(fake_ilink, "history 2")  # a new process, the same session


async def test_an_agent_that_cannot_start_is_reported(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    config = AcpConfig(
        command=(str(tmp_path / "no-such-agent"),),
        store=store,
        account_id=ACCOUNT,
        start_timeout=0.5,
    )
    with trio.fail_after(LIMIT):
        async with (
            open_bridge(config, tmp_path) as bridge,
            wx.open_monitor(ilink_client, bridge.handle, store=store, control=bridge.is_control),
        ):
            fake_ilink.inject_text(ANN, "hello")
            await wait_text(fake_ilink, "not available")
    assert "no-such-agent" not in texts(fake_ilink)[0]  # details go to the log only


async def test_stop_gives_up_on_an_agent_that_ignores_the_cancel(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, store: wx.MemoryStore, tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT):
        async with bridged(ilink_client, store, tmp_path, approve="all", cancel_grace=0.5):
            fake_ilink.inject_text(ANN, "stubborn")
            await wait_text(fake_ilink, "working")
            fake_ilink.inject_text(ANN, "/stop")
            await wait_text(fake_ilink, "(stopped)")
            fake_ilink.inject_text(ANN, "/stop")
            await wait_text(fake_ilink, "nothing to stop")
