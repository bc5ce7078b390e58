"""stdio transport with a front door that answers the handshake before the MCP SDK has loaded.

Importing the MCP SDK takes 1.2-1.8 s on a small machine (it builds a few hundred pydantic
models), yet hosts expect `tools/list` at once, and some give up on slow servers. So serving
starts in two steps:

1. The front door (a thread, no SDK) reads the wire. It answers a handshake-era `initialize`
   and the `tools/list` calls that follow from the same `ToolSpec`s the SDK will serve, and
   queues every message it reads.
2. Meanwhile the SDK loads and the server is built. It then consumes the queue from the start,
   so it sees the same `initialize` and holds the same session state; its own reply to that
   `initialize` (identical, which the tests check) is dropped, as the client already has one.
   From then on the SDK answers everything.

Anything the front door does not recognise (modern-era requests, tool calls, ...) simply waits
in the queue for the SDK. The front door also keeps stray prints off the wire: while serving,
file descriptor 1 points at stderr and 0 at the null device.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import IO, TYPE_CHECKING, Any, Final, cast

from .._tasks import Task
from ._manifest import ToolSpec, build_manifest, initialize_result
from ._settings import ServerSettings

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

__all__ = ["FrontDoor", "claimed_stdio", "serve_stdio"]

logger = logging.getLogger("parallel_tools.mcp")

# Kept in step with the SDK's `mcp_types.version` (a test compares them): importing that module
# would import the whole SDK, which is what the front door exists to avoid.
HANDSHAKE_VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST_HANDSHAKE: Final = "2025-11-25"


class FrontDoor:
    """Owns the wire: reads messages into a queue, answers the handshake until the SDK is up.

    Args:
        wire_in: The binary stream messages arrive on, one JSON object per line.
        wire_out: The binary stream replies go to.
        settings: The server's settings (for the `initialize` result).
        specs: The tools, as `tools/list` will report them; None answers nothing early.
    """

    def __init__(
        self,
        wire_in: IO[bytes],
        wire_out: IO[bytes],
        settings: ServerSettings,
        specs: Sequence[ToolSpec] | None,
    ) -> None:
        self._in = wire_in
        self._out = wire_out
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._handed_over = specs is None
        self._initialized = False
        self._drop: set[Any] = set()
        self.early_answers = 0
        """How many requests the front door answered before the SDK took over."""
        if specs is not None:
            spec_list = list(specs)
            self._tools: dict[str, Any] = {"tools": [spec.wire() for spec in spec_list]}
            self._init = {
                version: initialize_result(version, settings, spec_list)
                for version in HANDSHAKE_VERSIONS
            }

    def start(self) -> None:
        """Start reading the wire on a daemon thread."""
        threading.Thread(target=self._read, name="parallel-tools-stdio", daemon=True).start()

    def hand_over(self) -> None:
        """From now on the SDK answers everything."""
        with self._lock:
            self._handed_over = True

    # --- the reading thread ---------------------------------------------------------------

    def _read(self) -> None:
        try:
            for line in self._in:
                if not line.strip():
                    continue
                with self._lock:
                    forward = True
                    if not self._handed_over:
                        forward = self._answer_early(line)
                    if forward:
                        self._queue.put(line)
        except Exception as exc:  # a broken pipe ends the session like an EOF does
            logger.debug("stdin closed: %s", exc)
        finally:
            self._queue.put(None)

    def _answer_early(self, line: bytes) -> bool:
        """Answer `line` if the front door can; returns whether the SDK must see it too."""
        try:
            message = json.loads(line)
        except ValueError:
            return True
        if not isinstance(message, dict) or "id" not in message:
            return True
        method = message.get("method")
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if method == "initialize" and not self._initialized:
            requested = params.get("protocolVersion")
            if not isinstance(requested, str) or not isinstance(params.get("clientInfo"), dict):
                return True
            version = requested if requested in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE
            self._initialized = True
            self._reply(message["id"], self._init[version])
            # The SDK must see the handshake too, to hold the session; its reply is dropped.
            self._drop.add(message["id"])
            return True
        if method == "tools/list" and self._initialized and not params.get("cursor"):
            self._reply(message["id"], self._tools)
            return False
        return True

    def _reply(self, ident: Any, result: dict[str, Any]) -> None:
        payload = json.dumps({"jsonrpc": "2.0", "id": ident, "result": result})
        self._write(payload.encode() + b"\n")
        self.early_answers += 1

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._out.flush()

    # --- the SDK's side -------------------------------------------------------------------

    def next_line(self) -> bytes | None:
        """The next message for the SDK (blocking); None once the client has hung up."""
        return self._queue.get()

    def send(self, text: str) -> None:
        """Write one of the SDK's messages, unless the front door already answered it."""
        if self._drop:
            try:
                message = json.loads(text)
            except ValueError:
                message = None
            if (
                isinstance(message, dict)
                and "method" not in message
                and message.get("id") in self._drop
            ):
                self._drop.discard(message["id"])
                return
        data = text if text.endswith("\n") else text + "\n"
        with self._lock:
            self._write(data.encode())


class _Lines:
    """The SDK's stdin: the front door's queue, as an async iterator of text lines."""

    def __init__(self, door: FrontDoor) -> None:
        self._door = door

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        import anyio.to_thread

        line = await anyio.to_thread.run_sync(self._door.next_line, abandon_on_cancel=True)
        if line is None:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class _Sink:
    """The SDK's stdout: lines go through the front door, which drops duplicate answers."""

    def __init__(self, door: FrontDoor) -> None:
        self._door = door

    async def write(self, text: str) -> int:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self._door.send, text)
        return len(text)

    async def flush(self) -> None:
        return None


@contextmanager
def claimed_stdio() -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    """Take fds 0 and 1 for the wire; meanwhile they point at the null device and stderr.

    Yields the wire's input and output. Anything else that prints (a task module at import
    time, a library's banner) lands on stderr instead of corrupting the protocol.
    """
    sys.stdout.flush()
    wire_in_fd, wire_out_fd = os.dup(0), os.dup(1)
    saved_in, saved_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    wire_in, wire_out = os.fdopen(wire_in_fd, "rb"), os.fdopen(wire_out_fd, "wb")
    try:
        yield wire_in, wire_out
    finally:
        sys.stdout.flush()
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)
        with suppress(OSError):
            wire_out.close()


def serve_stdio(
    tasks: Sequence[Task[Any, Any]] = (),
    settings: ServerSettings | None = None,
    *,
    log_level: str = "WARNING",
    fast_start: bool = True,
    streams: tuple[IO[bytes], IO[bytes]] | None = None,
) -> None:
    """Serve the MCP server over stdin and stdout until the client hangs up.

    Args:
        tasks: Task definitions to offer as typed tools.
        settings: The server's settings (default: from the environment).
        log_level: The MCP SDK's log level (logs go to stderr).
        fast_start: Answer the handshake from the front door while the SDK loads; turn off to
            let the SDK answer everything (the tests compare the two).
        streams: The wire, if already claimed with `claimed_stdio()`; by default this
            process's stdin and stdout are claimed for the duration.
    """
    settings = settings if settings is not None else ServerSettings.from_env()
    if streams is None:
        with claimed_stdio() as claimed:
            serve_stdio(
                tasks, settings, log_level=log_level, fast_start=fast_start, streams=claimed
            )
        return
    specs = build_manifest(list(tasks), settings) if fast_start else None
    door = FrontDoor(streams[0], streams[1], settings, specs)
    door.start()
    from ._server import create_server

    server = create_server(tasks, settings=settings, log_level=log_level)
    import anyio

    anyio.run(_serve, server, door)


async def _serve(server: MCPServer[Any], door: FrontDoor) -> None:
    from mcp.server.stdio import stdio_server

    lines, sink = cast(Any, _Lines(door)), cast(Any, _Sink(door))
    async with stdio_server(stdin=lines, stdout=sink) as (read_stream, write_stream):
        door.hand_over()
        logger.info("MCP SDK ready; %d request(s) were answered early", door.early_answers)
        # MCPServer has no public way to serve given streams; its own run_stdio_async does
        # exactly this with the process's stdio.
        lowlevel = server._lowlevel_server
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
