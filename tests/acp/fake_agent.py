"""A fake ACP agent for the bridge's tests: JSON-RPC 2.0, one line per message, on stdio.

Run with ``sys.executable fake_agent.py [--no-load]``. What it does depends on the
prompt's text (the first text block):

- ``tool``: a tool call (kind ``read``) with updates, then ``tool done``.
- ``perm`` / ``perm-read``: asks permission for an ``edit`` (``read``) tool, then says
  ``allowed``, ``rejected`` or ``cancelled``.
- ``slow``: says ``working``, then waits for ``session/cancel`` (stopReason cancelled).
- ``stubborn``: says ``working`` and ignores ``session/cancel`` for 30 s.
- ``die``: exits at once (code 3). ``garbage``: writes a non-JSON line, then answers.
- ``session``: answers ``session <id>``; ``history``: how many prompts the session had.
- ``fs-outside``: reads ``/etc/hostname`` through the client and reports the error code.
- ``blocks``: the types of the prompt's content blocks.
- anything else: three paragraphs streamed in 3-character chunks.

Sessions (id -> prompt texts) persist in ``fake_agent_sessions.json`` in the cwd, so a
restarted bridge can ``session/load`` them (unless ``--no-load``).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

STATE = Path("fake_agent_sessions.json")
LOAD = "--no-load" not in sys.argv
ANSWER = "First paragraph.\n\nSecond **bold** paragraph.\n\nThe end."

_write_lock = threading.Lock()
_ids = itertools.count(1000)
_waiting: dict[int, tuple[threading.Event, list[Any]]] = {}
_cancelled: set[str] = set()


def send(obj: dict[str, Any]) -> None:
    with _write_lock:
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", **obj}) + "\n")
        sys.stdout.flush()


def update(session: str, body: dict[str, Any]) -> None:
    send({"method": "session/update", "params": {"sessionId": session, "update": body}})


def say(session: str, text: str, size: int = 3) -> None:
    for start in range(0, len(text), size):
        chunk = text[start : start + size]
        update(
            session,
            {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": chunk}},
        )
        time.sleep(0.002)


def call(method: str, params: Any) -> dict[str, Any]:
    request_id = next(_ids)
    done: tuple[threading.Event, list[Any]] = (threading.Event(), [])
    _waiting[request_id] = done
    send({"id": request_id, "method": method, "params": params})
    done[0].wait()
    return done[1][0]  # type: ignore[no-any-return]


def sessions() -> dict[str, list[str]]:
    return json.loads(STATE.read_text()) if STATE.exists() else {}


def remember(session: str, text: str) -> int:
    known = sessions()
    known.setdefault(session, []).append(text)
    STATE.write_text(json.dumps(known))
    return len(known[session])


def tool(session: str, call_id: str, kind: str, title: str) -> None:
    update(
        session,
        {
            "sessionUpdate": "tool_call",
            "toolCallId": call_id,
            "title": title,
            "kind": kind,
            "status": "pending",
        },
    )


def prompt(request_id: int, params: dict[str, Any]) -> None:
    session = params["sessionId"]
    texts = [b.get("text", "") for b in params["prompt"] if b.get("type") == "text"]
    text = texts[0].strip() if texts else ""
    count = remember(session, text)
    reason = "end_turn"
    if text == "tool":
        tool(session, "t1", "read", "Read notes.txt")
        update(
            session,
            {"sessionUpdate": "tool_call_update", "toolCallId": "t1", "status": "in_progress"},
        )
        update(
            session,
            {"sessionUpdate": "tool_call_update", "toolCallId": "t1", "status": "completed"},
        )
        say(session, "tool done")
    elif text in ("perm", "perm-read"):
        kind = "read" if text == "perm-read" else "edit"
        tool(session, "p1", kind, "Edit main.py" if kind == "edit" else "Read main.py")
        answer = call(
            "session/request_permission",
            {
                "sessionId": session,
                "toolCall": {"toolCallId": "p1"},
                "options": [
                    {"optionId": "yes-once", "name": "Allow", "kind": "allow_once"},
                    {"optionId": "no-once", "name": "Reject", "kind": "reject_once"},
                ],
            },
        )
        outcome = answer.get("result", {}).get("outcome", {})
        if outcome.get("outcome") == "cancelled":
            reason = "cancelled"
        elif outcome.get("optionId") == "yes-once":
            update(
                session,
                {"sessionUpdate": "tool_call_update", "toolCallId": "p1", "status": "completed"},
            )
            say(session, "allowed")
        else:
            update(
                session,
                {"sessionUpdate": "tool_call_update", "toolCallId": "p1", "status": "failed"},
            )
            say(session, "rejected")
    elif text == "slow":
        say(session, "working\n\n")
        deadline = time.monotonic() + 30
        while session not in _cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        _cancelled.discard(session)
        reason = "cancelled"
    elif text == "stubborn":  # ignores session/cancel
        say(session, "working\n\n")
        time.sleep(30)
    elif text == "die":
        os._exit(3)
    elif text == "garbage":
        with _write_lock:
            sys.stdout.write("this is not json {\n\n")
            sys.stdout.flush()
        say(session, "still here")
    elif text == "session":
        say(session, f"session {session}", size=50)
    elif text == "history":
        say(session, f"history {count}", size=50)
    elif text == "fs-outside":
        answer = call("fs/read_text_file", {"sessionId": session, "path": "/etc/hostname"})
        say(session, f"fs error {answer.get('error', {}).get('code')}", size=50)
    elif text == "blocks" or not text:
        say(session, "blocks " + ",".join(b.get("type", "?") for b in params["prompt"]), size=50)
    else:
        say(session, ANSWER)
    send({"id": request_id, "result": {"stopReason": reason}})


def handle(message: dict[str, Any]) -> None:
    method = message.get("method")
    if method is None:
        waiter = _waiting.pop(message.get("id"), None)  # type: ignore[arg-type]
        if waiter is not None:
            waiter[1].append(message)
            waiter[0].set()
        return
    request_id = message.get("id")
    params = message.get("params") or {}
    if method == "session/cancel":
        _cancelled.add(str(params.get("sessionId")))
    elif method == "initialize":
        caps = {"loadSession": LOAD, "promptCapabilities": {"image": True}}
        send({"id": request_id, "result": {"protocolVersion": 1, "agentCapabilities": caps}})
    elif method == "session/new":
        session = uuid.uuid4().hex
        known = sessions()
        known[session] = []
        STATE.write_text(json.dumps(known))
        send({"id": request_id, "result": {"sessionId": session}})
    elif method == "session/load":
        history = sessions().get(str(params.get("sessionId")))
        if history is None:
            send({"id": request_id, "error": {"code": -32002, "message": "no such session"}})
            return
        for text in history:  # replayed; the client must not forward these
            update(
                params["sessionId"],
                {"sessionUpdate": "user_message_chunk", "content": {"type": "text", "text": text}},
            )
            update(
                params["sessionId"],
                {
                    "sessionUpdate": "agent_message_chunk",
                    "content": {"type": "text", "text": "REPLAYED"},
                },
            )
        send({"id": request_id, "result": {}})
    elif method == "session/prompt":
        threading.Thread(target=prompt, args=(request_id, params), daemon=True).start()
    elif request_id is not None:
        send({"id": request_id, "error": {"code": -32601, "message": f"no method {method}"}})


def main() -> None:
    print(f"fake agent {os.getpid()} in {os.getcwd()}", file=sys.stderr, flush=True)
    for line in sys.stdin:
        if line.strip():
            handle(json.loads(line))


if __name__ == "__main__":
    main()
