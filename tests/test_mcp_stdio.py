"""`parallel-tools mcp` over stdio, as hosts run it: a subprocess, the SDK's client in both
eras, the front door's early answers (identical to the SDK's), start-up time, a clean wire."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError
from mcp.types import TextContent

from parallel_tools.emulator import EmulatorServer
from parallel_tools.mcp import load_tasks
from parallel_tools.mcp._stdio import HANDSHAKE_VERSIONS, LATEST_HANDSHAKE

EXAMPLE_TASKS = str(Path(__file__).parents[1] / "examples" / "mcp_tasks.py")
COMMAND = [sys.executable, "-m", "parallel_tools", "mcp"]


def server_params(emu: EmulatorServer) -> StdioServerParameters:
    # -X importtime lists every module the server imports on stderr (checked below).
    return StdioServerParameters(
        command=sys.executable,
        args=[
            "-X",
            "importtime",
            "-m",
            "parallel_tools",
            "mcp",
            "--tasks",
            EXAMPLE_TASKS,
            "--max-wait",
            "10",
        ],
        env={**emu.env, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_host_session_over_stdio(
    parallel_emulator: EmulatorServer, mode: str, tmp_path: Path
) -> None:
    emu = parallel_emulator.emulator
    updates: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(message)

    with (tmp_path / "stderr.log").open("w") as errlog:
        transport = stdio_client(server_params(parallel_emulator), errlog=errlog)
        async with Client(transport, mode=mode) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"research", "get_research_result", "company_profile"} <= names

            emu.configure(time_scale=0.005)  # base: 75-500 ms
            result = await client.call_tool(
                "research", {"question": "Over stdio?"}, progress_callback=on_progress
            )
            assert not result.is_error
            assert result.structured_content is not None
            assert result.structured_content["sources"]
            assert any("[1]" in c.text for c in result.content if isinstance(c, TextContent))
            assert updates and result.structured_content["run_id"] in (updates[0] or "")

            typed = await client.call_tool("company_profile", {"company_name": "Initech"})
            assert typed.structured_content["answer"]["ceo"]  # type: ignore[index]

            if mode == "legacy":
                # An interrupted call (notifications/cancelled over stdio): the server stops
                # waiting, the run lives on and can be collected.
                with pytest.raises(MCPError):
                    await client.call_tool(
                        "research",
                        {"question": "Slow", "processor": "core"},
                        read_timeout_seconds=0.2,
                    )
                slow = [r for r, run in emu.runs.items() if run.processor == "core"]
                assert len(slow) == 1
                again = await client.call_tool(
                    "get_research_result", {"run_id": slow[0], "wait_seconds": 10}
                )
                assert again.structured_content["status"] == "completed"  # type: ignore[index]
                assert emu.request_counts["create"] == 3
    log = (tmp_path / "stderr.log").read_text()
    assert "Traceback" not in log
    assert re.search(r"\|\s+mcp\.server\.mcpserver$", log, re.M), "importtime output expected"
    assert "langchain" not in log, "the MCP server must not import LangChain"


# --- The raw wire -------------------------------------------------------------------------------


class Raw:
    """A server subprocess spoken to in raw JSON lines."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
        )

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the server closed stdout"
        message: dict[str, Any] = json.loads(line)
        return message

    def kill(self) -> None:
        """Stop at once (no need to wait for the SDK to finish loading)."""
        self.process.kill()
        self.process.communicate()

    def close(self) -> str:
        """Hang up (close stdin), wait for the exit, and return what it wrote to stderr."""
        try:
            _, err = self.process.communicate(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.communicate()
        return err.decode()


def initialize(version: str, ident: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": ident,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "1"},
        },
    }


def handshake(raw: Raw, version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    raw.send(initialize(version))
    init = raw.receive()
    raw.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    raw.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    return init, raw.receive()


def test_the_front_door_is_kept_in_step_with_the_sdk() -> None:
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

    assert HANDSHAKE_VERSIONS == HANDSHAKE_PROTOCOL_VERSIONS
    assert LATEST_HANDSHAKE == LATEST_HANDSHAKE_VERSION


def bridge_answers(messages: list[dict[str, Any]], *, early: bool) -> list[dict[str, Any]]:
    """Run the stdio bridge in process over OS pipes and return what went on the wire.

    The messages are written before the server starts, as when a host talks to a server that
    is still loading; with `early` the front door answers what it can, without it the SDK
    answers everything.
    """
    from parallel_tools.mcp._manifest import build_manifest
    from parallel_tools.mcp._server import create_server
    from parallel_tools.mcp._settings import ServerSettings
    from parallel_tools.mcp._stdio import FrontDoor, _serve

    tasks = load_tasks([EXAMPLE_TASKS])
    settings = ServerSettings(api_key="unused", processors=("lite", "base", "pro"))
    to_server, from_client = os.pipe()
    to_client, from_server = os.pipe()
    wire_in, wire_out = os.fdopen(to_server, "rb"), os.fdopen(from_server, "wb")
    specs = build_manifest(tasks, settings) if early else None
    door = FrontDoor(wire_in, wire_out, settings, specs)
    with os.fdopen(from_client, "wb") as client_out, os.fdopen(to_client, "rb") as client_in:
        for message in messages:
            client_out.write((json.dumps(message) + "\n").encode())
        client_out.flush()
        door.start()
        replies: list[dict[str, Any]] = []
        expected = sum(1 for m in messages if "id" in m)
        if early:  # the front door answers before the SDK exists
            while len(replies) < 2:
                replies.append(json.loads(client_in.readline()))

        async def serve() -> None:
            async with anyio.create_task_group() as group:
                group.start_soon(_serve, create_server(tasks, settings=settings), door)
                while len(replies) < expected:
                    line = await anyio.to_thread.run_sync(client_in.readline)
                    replies.append(json.loads(line))
                client_out.close()  # hang up: the server ends

        anyio.run(serve)
    wire_in.close()
    wire_out.close()
    return replies


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", "2024-11-05", "2026-07-28"])
def test_early_answers_equal_the_sdks(version: str) -> None:
    messages = [
        initialize(version),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "resources/templates/list"},
    ]
    early = bridge_answers(messages, early=True)
    sdk = bridge_answers(messages, early=False)
    assert [reply["id"] for reply in early] == [1, 2, 3]
    assert early == sdk
    assert early[0]["result"]["protocolVersion"] == (
        version if version in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE
    )
    assert len(early[1]["result"]["tools"]) == 7


def test_tools_list_answers_within_a_second_of_launch() -> None:
    # The best of three launches, so a busy CI machine does not make this flaky; the benchmark
    # (bench/bench_mcp.py) reports the full distribution.
    timings = []
    for _ in range(3):
        raw = Raw(COMMAND, {"PARALLEL_API_KEY": "unused"})
        try:
            _, tools = handshake(raw, "2025-06-18")
            timings.append(time.perf_counter() - raw.started)
        finally:
            raw.kill()
        assert len(tools["result"]["tools"]) == 5
        if timings[-1] < 1.0:
            break
    assert min(timings) < 1.0, timings


def test_prints_stay_off_the_wire_and_hanging_up_ends_the_server(tmp_path: Path) -> None:
    noisy = tmp_path / "noisy_tasks.py"
    noisy.write_text(
        "print('hello from a task module')\n"
        "from parallel_tools import Task\n"
        "shout = Task('shout', 'Say it loud.', output='A loud answer', processor='lite')\n"
    )
    raw = Raw([*COMMAND, "--tasks", str(noisy), "--log-level", "INFO"], {"PARALLEL_API_KEY": "x"})
    try:
        init, tools = handshake(raw, "2025-11-25")
        # Answered by the SDK once it has loaded: the session carries on after the handover.
        raw.send({"jsonrpc": "2.0", "id": 3, "method": "resources/templates/list"})
        assert raw.receive()["id"] == 3
    finally:
        log = raw.close()
    assert init["id"] == 1 and tools["id"] == 2
    assert "shout" in {tool["name"] for tool in tools["result"]["tools"]}
    assert "hello from a task module" in log
    assert "2 request(s) were answered early" in log
    assert raw.process.returncode == 0


def test_bad_configuration_exits_with_a_message() -> None:
    done = subprocess.run(
        [*COMMAND, "--processors", "turbo"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "Unknown processor 'turbo'" in done.stderr
    assert done.stdout == ""


def test_the_cli_module_does_not_import_the_sdk() -> None:
    code = "import sys, parallel_tools.mcp._cli; assert 'mcp' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_the_example_client_runs_offline() -> None:
    example = Path(__file__).parents[1] / "examples" / "mcp_client.py"
    env = {k: v for k, v in os.environ.items() if k != "PARALLEL_API_KEY"}
    done = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "Using the built-in emulator." in done.stdout
    assert "Status: completed" in done.stdout and "[1] https://" in done.stdout
