"""Baseline: a bare stdlib ``http.client`` echo loop doing what the echo bot does.

Usage: ``python _stdlib_echo.py BASE_URL TOKEN COUNT``; prints ``{"elapsed": s}``.
One keep-alive connection, serial requests: getupdates, then one sendmessage per
message with the required headers and body. No journal, no checks: the ceiling.
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import resource
import sys
import time
import urllib.parse


def main(base_url: str, token: str, count: int) -> None:
    url = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port)
    cursor = ""
    replied = 0
    base_info = {"channel_version": "0.1.0", "bot_agent": "stdlib/1.0"}

    def post(path: str, body: dict[str, object]) -> dict[str, object]:
        uin = base64.b64encode(str(random.getrandbits(32)).encode()).decode()
        headers = {
            "Content-Type": "application/json",
            "AuthorizationType": "ilink_bot_token",
            "Authorization": f"Bearer {token}",
            "X-WECHAT-UIN": uin,
            "iLink-App-Id": "bot",
            "iLink-App-ClientVersion": "256",
        }
        conn.request("POST", path, json.dumps(body, separators=(",", ":")).encode(), headers)
        response = conn.getresponse()
        data = response.read()
        return json.loads(data) if data else {}

    start = time.perf_counter()
    while replied < count:
        resp = post("/ilink/bot/getupdates", {"get_updates_buf": cursor, "base_info": base_info})
        cursor = str(resp.get("get_updates_buf") or cursor)
        msgs = resp.get("msgs") or []
        assert isinstance(msgs, list)
        for msg in msgs:
            assert isinstance(msg, dict)
            text = msg["item_list"][0]["text_item"]["text"]
            post(
                "/ilink/bot/sendmessage",
                {
                    "msg": {
                        "from_user_id": "",
                        "to_user_id": msg["from_user_id"],
                        "client_id": f"stdlib:{random.getrandbits(64):x}",
                        "message_type": 2,
                        "message_state": 2,
                        "item_list": [{"type": 1, "text_item": {"text": text}}],
                        "context_token": msg["context_token"],
                    },
                    "base_info": base_info,
                },
            )
            replied += 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = time.perf_counter() - start
    print(json.dumps({"elapsed": elapsed, "cpu_s": usage.ru_utime + usage.ru_stime}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
