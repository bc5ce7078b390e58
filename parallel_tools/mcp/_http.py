"""Streamable HTTP: the server's ASGI app behind bearer-token auth, with a health route.

* Every request to the MCP endpoint needs `Authorization: Bearer <token>` with one of the
  operator's tokens (compared in constant time); anything else gets 401.
* `GET /health` needs no token and tells nothing secret: a load balancer's probe.
* DNS-rebinding protection stays on: only loopback and the operator's host names may appear in
  `Host`, which stops a web page from reaching a server on the user's machine through a
  rebinding domain.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from .. import __version__
from .._tasks import Task
from ._manifest import SERVER_NAME
from ._settings import HttpSettings, ServerSettings

__all__ = ["create_http_app", "serve_http"]

logger = logging.getLogger("parallel_tools.mcp")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEALTH_PATH = "/health"


class BearerAuth:
    """ASGI middleware: a valid bearer token or 401, except for the health route.

    Args:
        app: The app to protect.
        tokens: The accepted tokens.
        health: The body of `GET /health`.
    """

    def __init__(self, app: ASGIApp, tokens: Sequence[str], health: dict[str, Any]) -> None:
        self._app = app
        self._tokens = [token.encode() for token in tokens]
        self._health = json.dumps(health).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if scope["path"] == HEALTH_PATH and scope["method"] in ("GET", "HEAD"):
            await _respond(send, 200, self._health)
            return
        if not self._authorized(scope):
            body = json.dumps(
                {
                    "error": "unauthorized",
                    "message": "Send 'Authorization: Bearer <token>' with a token this server "
                    "accepts (the operator sets them in PARALLEL_MCP_TOKENS).",
                }
            ).encode()
            await _respond(
                send, 401, body, [(b"www-authenticate", b'Bearer realm="parallel-tools"')]
            )
            return
        await self._app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"bearer" or not token.strip():
                    return False
                given = token.strip()
                # Compare against every token, so timing does not reveal which one is close.
                matches = [hmac.compare_digest(given, known) for known in self._tokens]
                return any(matches)
        return False


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_http_app(server: Any, http: HttpSettings) -> ASGIApp:
    """The ASGI app serving `server` (from `create_server`) over Streamable HTTP.

    Both protocol eras are served at `http.path`. Serve it with any ASGI server (the app's
    lifespan must run, which uvicorn does by default).
    """
    from mcp.server.transport_security import TransportSecuritySettings

    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=http.host_patterns(),
        allowed_origins=http.origin_patterns(),
    )
    app = server.streamable_http_app(
        streamable_http_path=http.path, transport_security=security, host=http.host
    )
    health = {"status": "ok", "server": SERVER_NAME, "version": __version__}
    return BearerAuth(app, http.tokens, health)


def serve_http(
    tasks: Sequence[Task[Any, Any]] = (),
    settings: ServerSettings | None = None,
    http: HttpSettings | None = None,
    *,
    log_level: str = "WARNING",
) -> None:
    """Serve over Streamable HTTP with uvicorn until interrupted."""
    import anyio
    import uvicorn

    from ._server import create_server

    http = http if http is not None else HttpSettings.from_env()
    server = create_server(tasks, settings=settings, log_level=log_level)
    app = create_http_app(server, http)
    config = uvicorn.Config(
        app, host=http.host, port=http.port, log_level=log_level.lower(), lifespan="on"
    )
    logger.warning(
        "parallel-tools MCP server on http://%s:%d%s (bearer token required)",
        http.host,
        http.port,
        http.path,
    )
    anyio.run(uvicorn.Server(config).serve)
