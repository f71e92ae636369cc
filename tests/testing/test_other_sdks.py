"""Requests shaped like other SDKs' are served by the fake and reported (tests/data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from weixin_trio.testing import FakeILinkServer

VECTORS = json.loads(
    (Path(__file__).parent.parent / "data" / "other_sdk_requests.json").read_text()
)["vectors"]
ALICE = "alice@im.wechat"


async def replay(fake: FakeILinkServer, vector: dict[str, Any]) -> httpx.Response:
    fake.default.issued_tokens.add("ctx-1")
    fake.inject_text(ALICE, "hi")
    headers = {k: v.replace("$TOKEN", fake.token) for k, v in vector["headers"].items()}
    async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url) as http:
        with trio.fail_after(60):  # virtual time: a long poll returns at once here
            return await http.request(
                vector["method"],
                vector["path"],
                content=json.dumps(vector["body"]).encode(),
                headers=headers,
            )


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
async def test_the_fake_serves_other_sdks_and_reports_their_protocol_issues(
    vector: dict[str, Any], autojump_clock: trio.abc.Clock
) -> None:
    expected = vector["expected"]
    fake = FakeILinkServer()
    resp = await replay(fake, vector)
    assert resp.status_code == expected["status"], resp.text
    assert fake.rejections == []
    if "ret" in expected:
        assert resp.json()["ret"] == expected["ret"]
    if expected.get("delivers"):
        assert [m["item_list"][0]["text_item"]["text"] for m in resp.json()["msgs"]] == ["hi"]
    if "shown_text" in expected:
        assert fake.sent_texts(ALICE) == [expected["shown_text"]]
    found = sorted((i.category, i.field) for i in fake.protocol_issues)
    assert found == sorted((c, f) for c, f in expected["issues"])


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
async def test_a_strict_fake_rejects_what_it_would_only_report(
    vector: dict[str, Any], autojump_clock: trio.abc.Clock
) -> None:
    fake = FakeILinkServer(strict=True)
    resp = await replay(fake, vector)
    if any(fake_issue.strict_rejects for fake_issue in fake.protocol_issues):
        refused = resp.status_code == 400 or resp.json().get("ret") not in (None, 0)
        assert refused, resp.text
        assert fake.sends == []
    else:
        assert resp.status_code == 200
