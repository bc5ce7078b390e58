"""Serving the emulator with uvicorn: in a background thread (tests) or in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

import uvicorn

from ._app import DropConnection
from ._emulator import DEFAULT_API_KEY

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from ._emulator import Emulator

__all__ = ["EmulatorServer"]


class EmulatorServer:
    """An emulator served over HTTP on a loopback (or given) address.

    Attributes:
        emulator: The emulator being served: add faults and fixtures, read counts.
        host: The address it listens on.
        port: The port it listens on (the real one when 0 was asked for).
    """

    def __init__(
        self,
        emulator: Emulator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.emulator = emulator
        self.host = host
        self._socket = _bind(host, port)
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            _DroppingApp(emulator.app, self),
            host=host,
            port=self.port,
            log_level=log_level,
            access_log=False,
            lifespan="off",
            # Event streams and result holds can be open for minutes; on shutdown they are
            # cut after this long instead of being waited for.
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        """The URL to give clients, e.g. ``http://127.0.0.1:8787`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
        return f"http://{host}:{self.port}"

    @property
    def api_key(self) -> str:
        """A key the emulator accepts: the first configured one, else ``emulator-key``."""
        keys = self.emulator.api_keys
        return sorted(keys)[0] if keys else DEFAULT_API_KEY

    @property
    def env(self) -> dict[str, str]:
        """``PARALLEL_API_KEY`` and ``PARALLEL_BASE_URL`` for clients that read the environment."""
        return {"PARALLEL_API_KEY": self.api_key, "PARALLEL_BASE_URL": self.base_url}

    def start(self, timeout: float = 10.0) -> None:
        """Start serving in a daemon thread; returns once requests are accepted.

        Raises:
            RuntimeError: the server did not start in time.
        """
        if self._thread is not None:
            raise RuntimeError("This server has already been started.")
        self._thread = threading.Thread(
            target=self._run, name=f"parallel-emulator-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        # The listening socket exists already, so this only waits for uvicorn's start-up.
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"The emulator did not start on {self.base_url}.")
            time.sleep(0.002)

    def _run(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            await self._server.serve(sockets=[self._socket])

        asyncio.run(serve())

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C or SIGTERM)."""
        self._server.run(sockets=[self._socket])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: open connections are closed, and the thread is joined."""
        thread, loop = self._thread, self._loop
        if thread is None:
            self._socket.close()  # never started: uvicorn did not take the socket over
            return
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may close in between
                loop.call_soon_threadsafe(self._close_connections)
        self._server.should_exit = True
        thread.join(timeout)
        self._thread = None

    def _close_connections(self) -> None:
        # Hanging up on clients first lets uvicorn shut down at once instead of waiting out
        # event streams and result holds.
        for connection in list(self._server.server_state.connections):
            connection.shutdown()
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()

    def drop(self, scope: Scope) -> bool:
        """Close the connection that carries the request ``scope``; returns whether found."""
        client = scope.get("client")
        if not client:
            return False
        for connection in list(self._server.server_state.connections):
            if tuple(getattr(connection, "client", None) or ()) == tuple(client):
                connection.transport.close()
                return True
        return False

    def __enter__(self) -> EmulatorServer:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<EmulatorServer {self.base_url}>"


class _DroppingApp:
    """Turns :class:`DropConnection` into a really closed connection."""

    def __init__(self, app: ASGIApp, server: EmulatorServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except DropConnection:
            if not self.server.drop(scope):
                raise
            # Return only once uvicorn has seen the connection go; otherwise it would answer
            # 500 ("returned without starting response") or log an incomplete response.
            message: Any = await receive()
            while message["type"] != "http.disconnect":
                message = await receive()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be given: asyncio only sets TCP_NODELAY on sockets that say IPPROTO_TCP, and
    # without it every response waits ~40 ms for a delayed ACK (headers and body are two writes).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    # Listening at once means clients told the URL can connect before uvicorn has started;
    # their connections wait in the backlog instead of being refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
