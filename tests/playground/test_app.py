"""The playground's ASGI app: page, JSON API, media, faults, the fake under /fake, SSE."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest
import trio

from tests._helpers import read_until
from tests.playground.echo_media_bot import echo
from tests.playground.test_chats import PNG
from weixin_trio._playground.runner import Playground, run_playground

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

HEADERS = {"x-playground": "1"}


@pytest.fixture
async def api() -> AsyncIterator[tuple[Playground, httpx.AsyncClient]]:
    pg = Playground()
    transport = httpx.ASGITransport(app=pg.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", headers=HEADERS
    ) as http:
        yield pg, http


async def test_the_page_and_its_assets_are_served(
    api: tuple[Playground, httpx.AsyncClient],
) -> None:
    _, http = api
    page = await http.get("/")
    assert page.status_code == 200
    assert "weixin-trio playground" in page.text
    for asset, kind in (("app.js", "javascript"), ("style.css", "css")):
        response = await http.get(f"/static/{asset}")
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
    assert (await http.get("/favicon.ico")).status_code == 204


async def test_state_users_groups_and_messages(
    api: tuple[Playground, httpx.AsyncClient],
) -> None:
    pg, http = api
    state = (await http.get("/api/state")).json()
    assert [u["user"] for u in state["users"]] == ["alice@im.wechat", "bob@im.wechat"]
    assert {f["name"] for f in state["faults"]} == {"http500", "stale", "throttle", "slow"}
    assert (await http.post("/api/users", json={"name": "Carol"})).json() == {
        "user": "carol@im.wechat"
    }
    members = ["alice@im.wechat", "carol@im.wechat"]
    group = (await http.post("/api/groups", json={"name": "Team", "members": members})).json()
    sent = await http.post(
        "/api/messages", json={"from": "carol@im.wechat", "text": "hi", "group": group["group"]}
    )
    assert sent.status_code == 200
    [queued] = pg.fake.default.queue
    assert queued["group_id"] == group["group"]
    assert queued["item_list"][0]["text_item"]["text"] == "hi"
    state = (await http.get("/api/state")).json()
    assert state["groups"] == [{"group": group["group"], "name": "Team", "members": members}]


async def test_an_upload_is_encrypted_into_the_fake_cdn_and_downloadable(
    api: tuple[Playground, httpx.AsyncClient],
) -> None:
    pg, http = api
    params = {"from": "alice@im.wechat", "kind": "image", "name": "dot.png"}
    response = await http.post("/api/upload", params=params, content=PNG)
    assert response.status_code == 200
    [queued] = pg.fake.default.queue
    media = queued["item_list"][0]["image_item"]["media"]
    assert pg.fake.cdn.plaintext_of(media) == PNG
    assert pg.fake.cdn.objects[media["encrypt_query_param"]].ciphertext != PNG
    event = next(e for e in pg.hub.events if e["type"] == "message")
    download = await http.get(f"/api/media/{event['media']}")
    assert download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert (await http.get("/api/media/m999")).status_code == 404


async def test_bad_requests_are_refused(api: tuple[Playground, httpx.AsyncClient]) -> None:
    _, http = api
    no_header = await http.post("/api/users", json={"name": "x"}, headers={"x-playground": ""})
    assert no_header.status_code == 403
    cases = [
        ("/api/users", {"name": ""}),
        ("/api/groups", {"name": "g", "members": "alice"}),
        ("/api/messages", {"from": "nobody@im.wechat", "text": "hi"}),
        ("/api/faults", {"name": "meteor", "on": True}),
    ]
    for path, body in cases:
        response = await http.post(path, json=body)
        assert response.status_code == 400, (path, response.text)
        assert "error" in response.json()
    assert (await http.post("/api/users", content=b"[1]")).status_code == 400
    empty = await http.post("/api/upload", params={"from": "alice@im.wechat", "kind": "image"})
    assert empty.status_code == 400


async def test_only_loopback_host_names_are_answered() -> None:
    """A page elsewhere cannot reach the playground by DNS rebinding."""
    for host, status in (("127.0.0.1", 200), ("localhost:8080", 200), ("evil.example", 400)):
        transport = httpx.ASGITransport(app=Playground().app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as http:
            assert (await http.get("/api/state")).status_code == status, host
    transport = httpx.ASGITransport(app=Playground("0.0.0.0").app)
    async with httpx.AsyncClient(transport=transport, base_url="http://box.lan") as http:
        assert (await http.get("/api/state")).status_code == 200


async def test_faults_switch_on_and_off(api: tuple[Playground, httpx.AsyncClient]) -> None:
    pg, http = api
    response = await http.post("/api/faults", json={"name": "throttle", "on": True})
    assert [f["on"] for f in response.json()["faults"] if f["name"] == "throttle"] == [True]
    assert set(pg.fake.faults.sticky) == {"sendmessage"}
    await http.post("/api/faults", json={"name": "throttle", "on": False})
    assert pg.fake.faults.sticky == {}
    assert [(e["name"], e["on"]) for e in pg.hub.events if e["type"] == "fault"] == [
        ("throttle", True),
        ("throttle", False),
    ]


async def test_the_fake_server_answers_under_fake(
    api: tuple[Playground, httpx.AsyncClient],
) -> None:
    pg, http = api
    pg.chats.send_text("alice@im.wechat", "hi")
    stats = (await http.get("/fake/_fake/stats")).json()
    assert stats["queued"] == 1
    assert (await http.get("/fake/nothing/here")).status_code == 404


async def _events(url: str, needle: bytes, headers: str = "") -> list[dict[str, object]]:
    """The events of one stream (a raw HTTP/1.1 GET) up to the one containing ``needle``."""
    parts = urlsplit(url)
    stream = await trio.open_tcp_stream(parts.hostname or "", parts.port or 80)
    async with stream:
        request = f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n"
        await stream.send_all(request.encode())
        seen = bytearray()
        await read_until(stream, needle, seen)
    head, _, body = bytes(seen).partition(b"\r\n\r\n")
    assert b"text/event-stream" in head
    return [
        json.loads(line[6:])
        for line in body.decode().splitlines()
        if line.startswith("data: ") and line.endswith("}")
    ]


@pytest.mark.slow
async def test_a_bot_over_loopback_and_the_event_stream() -> None:
    """The real server: the handler answers; SSE replays after an id, then streams live."""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            info = await nursery.start(run_playground, echo)
            assert info["base_url"] == info["url"] + "fake"
            async with httpx.AsyncClient(base_url=info["url"], headers=HEADERS) as http:
                await http.post("/api/messages", json={"from": "bob@im.wechat", "text": "yo"})
            seen = await _events(info["url"] + "api/events?after=2", b"echo: yo")
            assert [e["id"] for e in seen] == list(range(3, 3 + len(seen)))
            assert any(e.get("text") == "echo: yo" for e in seen)
            last = seen[-2]["id"]  # a browser reconnecting after a lost connection
            resumed = await _events(
                info["url"] + "api/events", b'"id": ', headers=f"Last-Event-ID: {last}\r\n"
            )
            assert resumed[0] == seen[-1]
            nursery.cancel_scope.cancel()
