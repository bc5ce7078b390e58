"""How fast the MCP server starts and how much a tool call adds to the Task API calls behind it.

1. stdio start-up: `parallel-tools mcp` launched as a host launches it, timed from the launch to
   the `initialize` reply, to the `tools/list` reply, and to the first reply the MCP SDK itself
   gives (the SDK loads while the front door answers the handshake). The same is measured with
   the front door off (`serve_stdio(fast_start=False)`), i.e. the SDK answering everything.
2. Per-call overhead: the same work done directly with `AsyncTaskClient` and through the MCP
   server (in process in both protocol eras, over stdio, over Streamable HTTP), against the
   emulator at time_scale=0 so runs end at once and only the plumbing is measured:
   * `research`: create a run, wait for it, render the cited answer;
   * `get_research_result`: status + result of a finished run, rendered.

Run: ``.venv/bin/python bench/bench_mcp.py`` (about a minute; ``--launches`` and ``--calls``
change the sample sizes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import uvicorn
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from parallel_tools import AsyncTaskClient
from parallel_tools.emulator import Emulator, EmulatorServer
from parallel_tools.mcp import HttpSettings, ServerSettings, create_http_app, create_server

TOKEN = "bench-token"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    },
}


def stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (
        f"min {ordered[0] * 1000:7.1f}  median {statistics.median(ordered) * 1000:7.1f}  "
        f"p90 {p90 * 1000:7.1f}  max {ordered[-1] * 1000:7.1f} ms"
    )


# --- 1. start-up ----------------------------------------------------------------------------------


def launch(command: list[str]) -> tuple[float, float, float]:
    """Seconds from launch to the initialize reply, the tools/list reply and an SDK reply."""
    env = {**os.environ, "PARALLEL_API_KEY": "bench"}
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    assert process.stdin is not None and process.stdout is not None

    def send(message: dict[str, Any]) -> None:
        process.stdin.write((json.dumps(message) + "\n").encode())  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]

    send(INIT)
    process.stdout.readline()
    initialized = time.perf_counter() - started
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    process.stdout.readline()
    listed = time.perf_counter() - started
    send({"jsonrpc": "2.0", "id": 3, "method": "resources/templates/list"})
    process.stdout.readline()
    sdk = time.perf_counter() - started
    process.stdin.close()
    process.wait(30)
    process.stdout.close()
    return initialized, listed, sdk


def bench_startup(launches: int) -> None:
    print(f"1. stdio start-up ({launches} launches each; from process launch)")
    variants = {
        "parallel-tools mcp (front door)": [sys.executable, "-m", "parallel_tools", "mcp"],
        "SDK answers everything": [
            sys.executable,
            "-c",
            "from parallel_tools.mcp import serve_stdio; serve_stdio(fast_start=False)",
        ],
    }
    for label, command in variants.items():
        launch(command)  # warm the OS file cache and the bytecode caches
        runs = [launch(command) for _ in range(launches)]
        print(f"   {label}")
        print(f"     initialize reply:  {stats([r[0] for r in runs])}")
        print(f"     tools/list reply:  {stats([r[1] for r in runs])}")
        print(f"     first SDK reply:   {stats([r[2] for r in runs])}")


# --- 2. per-call overhead ------------------------------------------------------------------------


async def timed(calls: int, call: Callable[[int], Awaitable[Any]]) -> list[float]:
    await call(-1)  # warm up: connections, lazy imports, caches
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - started)
    return samples


@asynccontextmanager
async def http_server(emu: EmulatorServer) -> AsyncIterator[str]:
    settings = ServerSettings(api_key=emu.api_key, base_url=emu.base_url)
    app = create_http_app(create_server(settings=settings), HttpSettings(tokens=(TOKEN,)))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await task


async def bench_calls(emu: EmulatorServer, calls: int) -> None:
    print(f"\n2. per-call latency ({calls} calls each; emulator at time_scale=0, loopback)")
    finished: list[str] = []

    async with AsyncTaskClient(api_key=emu.api_key, base_url=emu.base_url) as direct:

        async def direct_research(i: int) -> None:
            run = await direct.create_run(f"direct question {i}", output="A short answer")
            await direct.wait(run.run_id)
            finished.append(run.run_id)

        async def direct_result(i: int) -> None:
            await direct.get_run(finished[0])
            await direct.result(finished[0])

        research = {"direct AsyncTaskClient": await timed(calls, direct_research)}
        result = {"direct AsyncTaskClient": await timed(calls, direct_result)}

    settings = ServerSettings(api_key=emu.api_key, base_url=emu.base_url)
    stdio = StdioServerParameters(
        command=sys.executable, args=["-m", "parallel_tools", "mcp"], env=emu.env
    )
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=60)

    @asynccontextmanager
    async def over_http(mode: str) -> AsyncIterator[Client]:
        async with (
            http_server(emu) as url,
            Client(streamable_http_client(url, http_client=http), mode=mode) as client,
        ):
            yield client

    transports: dict[str, Callable[[], Any]] = {
        "MCP in process, 2026-07-28": lambda: Client(create_server(settings=settings)),
        "MCP in process, 2025-11-25": lambda: Client(
            create_server(settings=settings), mode="legacy"
        ),
        "MCP over stdio, 2025-11-25": lambda: Client(stdio, mode="legacy"),
        "MCP over HTTP, 2026-07-28": lambda: over_http("auto"),
        "MCP over HTTP, 2025-11-25": lambda: over_http("legacy"),
    }
    async with http:
        for label, connect in transports.items():
            async with connect() as client:

                async def mcp_research(i: int, client: Client = client, label: str = label) -> None:
                    done = await client.call_tool("research", {"question": f"{label} question {i}"})
                    assert not done.is_error, done

                async def mcp_result(i: int, client: Client = client) -> None:
                    done = await client.call_tool(
                        "get_research_result", {"run_id": finished[0], "wait_seconds": 0}
                    )
                    assert not done.is_error, done

                research[label] = await timed(calls, mcp_research)
                result[label] = await timed(calls, mcp_result)

    for title, table in (
        ("research (create, wait, render)", research),
        ("get_research_result of a finished run", result),
    ):
        base = statistics.median(table["direct AsyncTaskClient"])
        print(f"   {title}")
        for label, samples in table.items():
            extra = statistics.median(samples) - base
            tail = "" if label.startswith("direct") else f"  (+{extra * 1000:.1f} ms)"
            print(f"     {label:30} {stats(samples)}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launches", type=int, default=10)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    # The in-process emulator's event streams outlive the waits that opened them; asyncio then
    # warns about writes to closed sockets, which says nothing about the MCP server.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}\n")
    bench_startup(args.launches)
    emu = Emulator(time_scale=0.0)
    with emu.serve() as server:
        asyncio.run(bench_calls(server, args.calls))


if __name__ == "__main__":
    main()
