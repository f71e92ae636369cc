"""A fast fake iLink server for benchmarks: one asyncio process, hand-written HTTP/1.1.

Usage::

    python _fast_fake.py [--accounts K] [--messages N] [--users U] [--held]
                         [--hold S] [--max-batch B] [--lifetime S]

Prints one JSON line ``{"base_url": ..., "token": ..., "token_prefix": ...,
"pid": ...}`` and serves on 127.0.0.1 (a free port) until ``--lifetime`` seconds have
passed (default 600), ``POST /_fast/quit`` or SIGTERM. Account ``i`` has the token
``tok-<i>`` (``token`` is account 0's).

Not a protocol checker (that is `weixin_trio.testing.FakeILinkServer`): it exists so
that the server is never the bottleneck of a bot benchmark. Every account gets
``N`` pre-generated text messages from ``U`` users (``u<k>@im.wechat``), each with its
own context token and the text ``m<i>``, in the wire shape of PROTOCOL §3.9, encoded
once at start-up. ``getupdates`` is a long poll with a cursor: the cursor is the offset
of the next undelivered message, so a re-presented cursor redelivers; with nothing to
deliver the poll parks for ``--hold`` seconds (``longpolling_timeout_ms``). With
``--held`` nothing is delivered before ``POST /_fast/go``. ``sendmessage`` answers
``{"message_id": n}``, counts sends, and checks per user that replies come in the order
of the messages (text ``m<i>``, increasing ``i``) and carry that message's context
token. ``notifystart``/``notifystop``/``getconfig``/``sendtyping`` answer ``ret 0``.
``GET /_fast/stats`` returns the counters as JSON.

Requests are parsed with ``bytes.find`` on the head (request line, Content-Length,
Authorization); keep-alive, pipelining-safe (one request at a time per connection).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from typing import Any

_HEAD = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
_OK = b"{}"


def _response(body: bytes, status: int = 200, reason: bytes = b"OK") -> bytes:
    return _HEAD % (status, reason, len(body)) + body


_RET0 = _response(b'{"ret":0}')
_STALE = _response(b'{"ret":-14,"errcode":-14,"errmsg":"session timeout"}')
_CONFIG = _response(b'{"ret":0,"typing_ticket":"tk-fast"}')
_NOT_FOUND = _response(b'{"ret":-1,"errmsg":"not found"}', 404, b"Not Found")


class Account:
    """One account's pre-generated messages, its parked polls and its counters."""

    __slots__ = (
        "bot_id",
        "encoded",
        "last_index",
        "parked",
        "tokens",
        "users",
    )

    def __init__(self, index: int, messages: int, users: int) -> None:
        self.bot_id = f"bot{index}@im.bot"
        self.encoded: list[bytes] = []
        self.tokens: list[str] = []
        self.users: list[str] = []
        self.last_index: dict[str, int] = {}
        self.parked: list[tuple[Conn, int, asyncio.TimerHandle]] = []
        for i in range(messages):
            user = f"u{i % users}@im.wechat"
            token = f"ctx-{index}-{i}-{os.urandom(4).hex()}"
            self.tokens.append(token)
            self.users.append(user)
            raw = {
                "seq": i + 1,
                "message_id": 3_000_000_000_000 + index * 1_000_000 + i,
                "from_user_id": user,
                "to_user_id": self.bot_id,
                "create_time_ms": 1_767_225_600_000 + i,
                "session_id": f"s-{user}",
                "message_type": 1,
                "message_state": 2,
                "item_list": [{"type": 1, "text_item": {"text": f"m{i}"}}],
                "context_token": token,
            }
            self.encoded.append(json.dumps(raw, separators=(",", ":")).encode())


class Server:
    """The state of the fake: accounts by token, counters, the release switch."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.hold: float = args.hold
        self.max_batch: int = args.max_batch
        self.released = not args.held
        self.accounts: dict[bytes, Account] = {
            f"Bearer tok-{i}".encode(): Account(i, args.messages, args.users)
            for i in range(args.accounts)
        }
        self.counts: dict[str, int] = {
            "requests": 0,
            "getupdates": 0,
            "delivered": 0,
            "sent": 0,
            "out_of_order": 0,
            "bad_context_token": 0,
            "notifystart": 0,
            "notifystop": 0,
            "getconfig": 0,
            "sendtyping": 0,
            "other": 0,
            "parked_now": 0,
            "connections": 0,
        }
        self.message_ids = 7_000_000_000_001
        self.quit = asyncio.Event()

    # --- endpoints -----------------------------------------------------------------

    def handle(self, conn: Conn, path: bytes, auth: bytes, body: bytes) -> bytes | None:
        """The response to one request, or ``None`` when the poll was parked."""
        counts = self.counts
        counts["requests"] += 1
        name = path.rsplit(b"/", 1)[-1]
        if path.startswith(b"/_fast/"):
            return self.control(name)
        account = self.accounts.get(auth)
        if account is None:
            return _STALE
        if name == b"sendmessage":
            return self.sendmessage(account, body)
        if name == b"getupdates":
            counts["getupdates"] += 1
            return self.getupdates(conn, account, body)
        if name in (b"notifystart", b"notifystop", b"getconfig", b"sendtyping"):
            counts[name.decode()] += 1
            return _CONFIG if name == b"getconfig" else _RET0
        counts["other"] += 1
        return _NOT_FOUND

    def getupdates(self, conn: Conn, account: Account, body: bytes) -> bytes | None:
        cursor = json.loads(body).get("get_updates_buf") or ""
        offset = int(cursor[4:]) if cursor.startswith("cur-") else 0
        if self.released and offset < len(account.encoded):
            return self.batch(account, offset)
        timer = asyncio.get_running_loop().call_later(self.hold, self.expire, account, conn)
        account.parked.append((conn, offset, timer))
        self.counts["parked_now"] += 1
        return None

    def batch(self, account: Account, offset: int) -> bytes:
        end = min(len(account.encoded), offset + self.max_batch)
        self.counts["delivered"] += end - offset
        body = b"".join(
            (
                b'{"ret":0,"msgs":[',
                b",".join(account.encoded[offset:end]),
                b'],"get_updates_buf":"cur-%d","longpolling_timeout_ms":%d}'
                % (end, int(self.hold * 1000)),
            )
        )
        return _response(body)

    def expire(self, account: Account, conn: Conn) -> None:
        """A parked poll's hold ran out: answer it with no messages."""
        for k, (c, offset, _) in enumerate(account.parked):
            if c is conn:
                del account.parked[k]
                self.counts["parked_now"] -= 1
                body = b'{"ret":0,"msgs":[],"get_updates_buf":"cur-%d","longpolling_timeout_ms":%d}'
                conn.answer(_response(body % (offset, int(self.hold * 1000))))
                return

    def release(self) -> None:
        """``/_fast/go``: deliver to every parked poll that has messages waiting."""
        self.released = True
        for account in self.accounts.values():
            still: list[tuple[Conn, int, asyncio.TimerHandle]] = []
            for conn, offset, timer in account.parked:
                if offset < len(account.encoded):
                    timer.cancel()
                    self.counts["parked_now"] -= 1
                    conn.answer(self.batch(account, offset))
                else:
                    still.append((conn, offset, timer))
            account.parked = still

    def forget(self, conn: Conn) -> None:
        """A connection closed: drop its parked poll, if any."""
        account = conn.parked_on
        if account is None:
            return
        for k, (c, _, timer) in enumerate(account.parked):
            if c is conn:
                timer.cancel()
                del account.parked[k]
                self.counts["parked_now"] -= 1
                return

    def sendmessage(self, account: Account, body: bytes) -> bytes:
        counts = self.counts
        counts["sent"] += 1
        msg = json.loads(body)["msg"]
        user = msg["to_user_id"]
        text = msg["item_list"][0]["text_item"]["text"]
        if text.startswith("m") and text[1:].isdigit():
            index = int(text[1:])
            if account.last_index.get(user, -1) > index:
                counts["out_of_order"] += 1
            account.last_index[user] = index
            if index >= len(account.tokens) or msg.get("context_token") != account.tokens[index]:
                counts["bad_context_token"] += 1
        self.message_ids += 1
        return _response(b'{"message_id":%d}' % self.message_ids)

    def control(self, name: bytes) -> bytes:
        if name == b"go":
            self.release()
            return _RET0
        if name == b"quit":
            self.quit.set()
            return _RET0
        if name == b"stats":
            stats: dict[str, Any] = dict(self.counts)
            stats["notify_accounts"] = len(self.accounts)
            return _response(json.dumps(stats).encode())
        return _NOT_FOUND


class Conn(asyncio.Protocol):
    """One keep-alive connection; requests are handled one at a time."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.parked_on: Account | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.counts["connections"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.forget(self)
        self.transport = None
        self.server.counts["connections"] -= 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.parked_on is None:
            self.process()

    def answer(self, response: bytes) -> None:
        """Send the answer of a parked poll, then go on with buffered requests."""
        self.parked_on = None
        if self.transport is not None:
            self.transport.write(response)
            self.process()

    def process(self) -> None:
        buffer = self.buffer
        while self.transport is not None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            if len(buffer) < end + 4 + length:
                return
            body = bytes(buffer[end + 4 : end + 4 + length])
            auth = b""
            at = head.find(b"\r\nauthorization:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                # the token's case matters: read it from the original bytes
                raw = bytes(buffer[at + 16 : stop if stop >= 0 else end]).strip()
                auth = b"Bearer " + raw[7:] if raw[:7].lower() == b"bearer " else raw
            path = head[head.find(b" ") + 1 : head.find(b" http/")]
            del buffer[: end + 4 + length]
            response = self.server.handle(self, path.split(b"?", 1)[0], auth, body)
            if response is None:
                self.parked_on = self._account_of(auth)
                return
            self.transport.write(response)

    def _account_of(self, auth: bytes) -> Account | None:
        return self.server.accounts.get(auth)


async def serve(args: argparse.Namespace) -> None:
    server = Server(args)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: Conn(server), "127.0.0.1", args.port, backlog=4096, reuse_address=True
    )
    port = listener.sockets[0].getsockname()[1]
    info = {
        "base_url": f"http://127.0.0.1:{port}",
        "token": "tok-0",
        "token_prefix": "tok-",
        "pid": os.getpid(),
    }
    print(json.dumps(info), flush=True)
    loop.add_signal_handler(signal.SIGTERM, server.quit.set)
    loop.add_signal_handler(signal.SIGINT, server.quit.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.quit.wait(), args.lifetime)
    listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="fast fake iLink server (benchmarks)")
    parser.add_argument("--accounts", type=int, default=1)
    parser.add_argument("--messages", type=int, default=0, help="messages per account")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--held", action="store_true", help="deliver only after /_fast/go")
    parser.add_argument("--hold", type=float, default=35.0, help="long-poll hold (s)")
    parser.add_argument("--max-batch", type=int, default=100)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=600.0, help="exit after (s)")
    args = parser.parse_args()
    with contextlib.suppress(ValueError, OSError):
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
