"""The playground's ASGI app: the chat page, its JSON API, live events, the fake server.

Routes: ``GET /`` (the page) and ``/static/*`` (its assets, shipped in the package);
``GET /api/state``; ``POST /api/users``, ``/api/groups``, ``/api/messages``,
``/api/upload`` (raw body, parameters in the query), ``/api/faults``;
``GET /api/media/{id}`` (decrypted bytes); ``GET /api/events`` (server-sent events,
resumable with ``Last-Event-ID``); and the fake iLink server under ``/fake/`` (its
``base_url``). POSTs to ``/api`` need the header ``X-Playground: 1``, which a
cross-site form cannot send.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..testing import FakeRequest
from .media_store import sniff_mime
from .sse import EventStream

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.requests import Request

    from .chats import Chats
    from .faults import FaultPanel
    from .hub import EventHub

__all__ = ["LOOPBACK_HOSTS", "STATIC_DIR", "build_app"]

#: The page's assets (plain HTML, JS and CSS; no build step).
STATIC_DIR: Final = Path(__file__).with_name("static")
#: Host names the app answers to by default: loopback only, so that a web page
#: elsewhere cannot reach it through DNS rebinding.
LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1", "[::1]")
#: Largest upload from the page.
MAX_UPLOAD: Final = 20 * 1024 * 1024


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise ValueError(f"{key!r} must be a non-empty string")
    return value


def build_app(
    chats: Chats,
    panel: FaultPanel,
    hub: EventHub,
    *,
    allowed_hosts: Sequence[str] = LOOPBACK_HOSTS,
) -> Starlette:
    """The ASGI app over a playground's chats, fault panel and event hub.

    Requests with another ``Host`` are refused (400); ``["*"]`` allows any.
    """
    fake = chats.fake

    async def index(request: Request) -> Response:
        del request
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})

    async def state(request: Request) -> Response:
        del request
        return JSONResponse(
            {
                "bot": fake.default.bot_id,
                "base_url": fake.base_url,
                "users": [{"user": u, "name": n} for u, n in chats.users.items()],
                "groups": [{"group": g, **v} for g, v in chats.groups.items()],
                "faults": panel.state(),
                "windows": [chats.window(u) for u in chats.users],
                "last_event": len(hub.events),
            }
        )

    async def add_user(body: dict[str, Any], request: Request) -> Response:
        del request
        user = chats.add_user(_text(body, "name") or "")
        return JSONResponse({"user": user})

    async def add_group(body: dict[str, Any], request: Request) -> Response:
        del request
        members = body.get("members")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ValueError("'members' must be a list of user ids")
        return JSONResponse({"group": chats.add_group(_text(body, "name") or "", members)})

    async def send(body: dict[str, Any], request: Request) -> Response:
        del request
        sender = _text(body, "from") or ""
        message_id = chats.send_text(
            sender, _text(body, "text") or "", group=_text(body, "group", required=False)
        )
        return JSONResponse({"message_id": message_id})

    async def upload(body: dict[str, Any], request: Request) -> Response:
        del body
        q = request.query_params
        data = await request.body()
        if not data or len(data) > MAX_UPLOAD:
            raise ValueError(f"the upload must hold 1 to {MAX_UPLOAD} bytes")
        message_id = chats.send_media(
            q.get("from", ""),
            q.get("kind", ""),
            data,
            q.get("name") or "upload.bin",
            group=q.get("group") or None,
            transcript=q.get("transcript") or None,
        )
        return JSONResponse({"message_id": message_id})

    async def faults(body: dict[str, Any], request: Request) -> Response:
        del request
        name = _text(body, "name") or ""
        on = bool(body.get("on"))
        try:
            panel.set(name, on)
        except KeyError:
            raise ValueError(f"unknown fault {name!r}") from None
        hub.publish("fault", name=name, on=on)
        return JSONResponse({"faults": panel.state()})

    async def media(request: Request) -> Response:
        entry = chats.media.get(request.path_params["media_id"])
        if entry is None:
            return _error(404, "no such media")
        data = entry.load()
        mime = sniff_mime(data, entry.name)
        disposition = "inline" if mime.startswith("image/") else "attachment"
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in entry.name)
        return Response(
            data,
            media_type=mime,
            headers={"content-disposition": f'{disposition}; filename="{safe}"'},
        )

    async def fake_route(request: Request) -> Response:
        answer = await fake.handle(
            FakeRequest(
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=await request.body(),
            )
        )
        if answer.action == "reset":
            return Response(b"", status_code=502)
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}
        return Response(answer.body, status_code=answer.status, headers=headers)

    def post(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            if request.headers.get("x-playground") != "1":
                return _error(403, "POSTs need the header X-Playground: 1")
            try:
                body = {} if handler is upload else await _json_body(request)
                response: Response = await handler(body, request)
            except ValueError as exc:
                return _error(400, str(exc))
            return response

        return endpoint

    routes = [
        Route("/", index),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/state", state),
        Route("/api/users", post(add_user), methods=["POST"]),
        Route("/api/groups", post(add_group), methods=["POST"]),
        Route("/api/messages", post(send), methods=["POST"]),
        Route("/api/upload", post(upload), methods=["POST"]),
        Route("/api/faults", post(faults), methods=["POST"]),
        Route("/api/media/{media_id}", media),
        Route("/api/events", EventStream(hub)),
        Route("/fake/{path:path}", fake_route, methods=["GET", "POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))]
    return Starlette(routes=routes, middleware=middleware)
