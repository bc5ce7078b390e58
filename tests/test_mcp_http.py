"""The server over Streamable HTTP with uvicorn: both protocol eras through the SDK's client,
bearer-token auth, the health route and DNS-rebinding protection."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from parallel_tools.emulator import EmulatorServer
from parallel_tools.mcp import HttpSettings, ServerSettings, create_http_app, create_server

TOKEN = "test-token-" + "0" * 32
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@asynccontextmanager
async def serving(emu: EmulatorServer, **http: Any) -> AsyncIterator[str]:
    """Serve the MCP app with uvicorn on a free port; yields the base URL."""
    settings = ServerSettings(
        api_key=emu.api_key, base_url=emu.base_url, max_wait=10, progress_interval=0.3
    )
    app = create_http_app(
        create_server(settings=settings), HttpSettings(tokens=(TOKEN, "second-token"), **http)
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


@asynccontextmanager
async def connect(url: str, mode: str, token: str = TOKEN) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode) as c:
        yield c


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_session_over_streamable_http(parallel_emulator: EmulatorServer, mode: str) -> None:
    emu = parallel_emulator.emulator
    updates: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(message)

    async with serving(parallel_emulator) as url, connect(url, mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert tools["research"].annotations.read_only_hint is True  # type: ignore[union-attr]

        emu.configure(time_scale=0.01)  # core-fast: 0.15-1 s, several progress beats
        result = await client.call_tool(
            "research",
            {"question": "Over HTTP?", "processor": "core-fast"},
            progress_callback=on_progress,
        )
        assert not result.is_error
        data = result.structured_content
        assert data is not None and data["status"] == "completed" and data["sources"]
        assert updates and data["run_id"] in (updates[0] or "")
        full = await client.read_resource(data["resource_uri"])
        assert json.loads(full.contents[0].text)["run"]["run_id"] == data["run_id"]  # type: ignore[union-attr]

        # Cancellation over HTTP (a cancel notification, or a closed stream on 2026-07-28).
        emu.configure(time_scale=0.005)
        with pytest.raises(MCPError):
            await client.call_tool(
                "research", {"question": "Slow", "processor": "core"}, read_timeout_seconds=0.2
            )
        (slow,) = [run_id for run_id, run in emu.runs.items() if run.processor == "core"]
        again = await client.call_tool("get_research_result", {"run_id": slow, "wait_seconds": 10})
        assert again.structured_content["status"] == "completed"  # type: ignore[index]
        assert emu.request_counts["create"] == 2


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-token"},
        {"authorization": f"Basic {TOKEN}"},
        {"authorization": "Bearer"},
    ],
    ids=["missing", "wrong", "not-bearer", "empty"],
)
async def test_requests_without_a_valid_token_get_401(
    parallel_emulator: EmulatorServer, headers: dict[str, str]
) -> None:
    async with serving(parallel_emulator) as url, httpx.AsyncClient() as http:
        response = await http.post(f"{url}/mcp", json=INIT, headers={**MCP_HEADERS, **headers})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "PARALLEL_MCP_TOKENS" in response.json()["message"]


async def test_any_configured_token_works_and_the_sdk_client_sees_401(
    parallel_emulator: EmulatorServer,
) -> None:
    async with serving(parallel_emulator) as url:
        async with connect(url, "legacy", token="second-token") as client:
            assert (await client.list_tools()).tools
        # The SDK's client turns the 401 into an MCPError inside its task groups.
        with pytest.raises(BaseExceptionGroup) as caught:
            async with connect(url, "legacy", token="nope") as client:
                await client.list_tools()
        assert caught.group_contains(MCPError, depth=None)


async def test_health_needs_no_token(parallel_emulator: EmulatorServer) -> None:
    async with serving(parallel_emulator) as url, httpx.AsyncClient() as http:
        response = await http.get(f"{url}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_dns_rebinding_protection_allows_only_listed_hosts(
    parallel_emulator: EmulatorServer,
) -> None:
    auth = {**MCP_HEADERS, "authorization": f"Bearer {TOKEN}"}
    async with (
        serving(parallel_emulator, allowed_hosts=("mcp.example.com",)) as url,
        httpx.AsyncClient() as http,
    ):
        evil = await http.post(f"{url}/mcp", json=INIT, headers={**auth, "host": "evil.example"})
        listed = await http.post(
            f"{url}/mcp", json=INIT, headers={**auth, "host": "mcp.example.com"}
        )
        origin = await http.post(
            f"{url}/mcp", json=INIT, headers={**auth, "origin": "https://evil.example"}
        )
    assert evil.status_code == 421
    assert listed.status_code == 200
    assert origin.status_code == 403


def test_http_needs_tokens_and_sane_settings() -> None:
    with pytest.raises(ValueError, match="PARALLEL_MCP_TOKENS"):
        HttpSettings()
    with pytest.raises(ValueError, match="path"):
        HttpSettings(tokens=("t",), path="mcp")
    settings = HttpSettings.from_env(
        {"PARALLEL_MCP_TOKENS": "tok-1, tok-2", "PARALLEL_MCP_ALLOWED_HOSTS": "mcp.example.com"}
    )
    assert settings.tokens == ("tok-1", "tok-2")
    assert "mcp.example.com:*" in settings.host_patterns()
    assert "https://mcp.example.com" in settings.origin_patterns()
    assert "tok-1" not in repr(settings)
