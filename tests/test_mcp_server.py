"""The MCP server in process, through the SDK's own client in both protocol eras, against the
emulator: schemas, cited results, progress, long runs, cancellation, bad input, API failures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, ResourceLink, TextContent

from parallel_tools import Task
from parallel_tools.emulator import EmulatorServer, Fault
from parallel_tools.mcp import ServerSettings, create_server, load_tasks
from parallel_tools.mcp._render import estimate_tokens

EXAMPLE_TASKS = str(Path(__file__).parents[1] / "examples" / "mcp_tasks.py")
SECRET = "sk-test-0123456789abcdef-never-show-me"
GENERIC = {
    "research",
    "start_research",
    "get_research_result",
    "start_enrichment",
    "get_enrichment_results",
}


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both protocol eras: 2026-07-28 (auto) and the 2025-11-25 handshake (legacy)."""
    return str(request.param)


def make_server(emu: EmulatorServer, **options: Any) -> Any:
    settings = ServerSettings(
        api_key=options.pop("api_key", emu.api_key),
        base_url=emu.base_url,
        progress_interval=options.pop("progress_interval", 0.5),
        **options,
    )
    return create_server(load_tasks([EXAMPLE_TASKS]), settings=settings)


@pytest.fixture
def connect(parallel_emulator: EmulatorServer, mode: str) -> Any:
    """Connect to a server on the emulator (an async context manager: clients must be opened
    and closed in the test's own task, which async fixtures do not guarantee)."""

    @asynccontextmanager
    async def connected() -> AsyncIterator[Client]:
        async with Client(make_server(parallel_emulator, max_wait=10), mode=mode) as client:
            yield client

    return connected


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def link_of(result: CallToolResult) -> ResourceLink:
    links = [c for c in result.content if isinstance(c, ResourceLink)]
    assert len(links) == 1
    return links[0]


# --- Discovery ----------------------------------------------------------------------------------


async def test_tools_have_schemas_annotations_and_only_allowed_processors(connect: Any) -> None:
    async with connect() as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == GENERIC | {"company_profile", "fact_check"}

        research = tools["research"]
        processor = research.input_schema["properties"]["processor"]["anyOf"][0]
        assert processor["enum"] == ["lite", "lite-fast", "base", "base-fast", "core", "core-fast"]
        assert research.input_schema["required"] == ["question"]
        assert research.annotations is not None
        assert research.annotations.read_only_hint is True
        assert research.annotations.open_world_hint is True
        assert research.annotations.destructive_hint is False
        assert research.annotations.idempotent_hint is False
        assert tools["get_research_result"].annotations.idempotent_hint is True  # type: ignore[union-attr]
        assert (
            tools["get_research_result"].input_schema["properties"]["wait_seconds"]["maximum"] == 10
        )

        output = research.output_schema
        assert output is not None
        assert {"answer", "sources", "basis", "status", "run_id", "price_usd"} <= set(
            output["properties"]
        )

        typed = tools["company_profile"]
        assert typed.input_schema["required"] == ["company_name"]
        assert "company_website" in typed.input_schema["properties"]
        assert typed.input_schema["additionalProperties"] is False
        typed_output = json.dumps(typed.output_schema)
        assert "founding_date" in typed_output and "sources" in typed_output
        assert "base ($0.010/run" in (typed.description or "")


async def test_resource_templates_are_listed(connect: Any) -> None:
    async with connect() as client:
        templates = {
            t.uri_template for t in (await client.list_resource_templates()).resource_templates
        }
        assert templates == {"parallel://runs/{run_id}", "parallel://groups/{group_id}"}


# --- Results ------------------------------------------------------------------------------------


async def test_research_returns_a_cited_answer_text_and_a_resource_link(
    connect: Any, parallel_emulator: EmulatorServer
) -> None:
    async with connect() as client:
        result = await client.call_tool("research", {"question": "When was the UN founded?"})
        assert not result.is_error, text_of(result)
        data = result.structured_content
        assert data is not None
        assert data["status"] == "completed"
        assert data["processor"] == "base" and data["price_usd"] == pytest.approx(0.01)
        assert isinstance(data["answer"], str) and data["answer"]
        assert data["sources"], "a cited answer has sources"
        first = data["sources"][0]
        assert first["number"] == 1 and first["url"].startswith("https://") and first["title"]
        assert first["excerpts"]
        assert data["basis"][0]["confidence"] in ("low", "medium", "high")
        assert data["truncated"] is False and data["next_step"] is None

        text = text_of(result)
        assert "[1]" in text and "Sources:" in text and first["url"] in text
        assert data["run_id"] in text and "$0.010" in text

        link = link_of(result)
        assert str(link.uri) == data["resource_uri"] == f"parallel://runs/{data['run_id']}"
        full = await client.read_resource(str(link.uri))
        body = json.loads(full.contents[0].text)  # type: ignore[union-attr]
        assert body["run"]["run_id"] == data["run_id"]
        assert body["output"]["basis"][0]["citations"]
        assert parallel_emulator.emulator.request_counts["create"] == 1


async def test_typed_task_tool_returns_the_output_model_with_citations(connect: Any) -> None:
    async with connect() as client:
        result = await client.call_tool(
            "company_profile", {"company_name": "Acme", "company_website": "acme.example"}
        )
        assert not result.is_error, text_of(result)
        data = result.structured_content
        assert data is not None
        assert set(data["answer"]) == {"founding_date", "headquarters", "ceo", "employee_count"}
        assert {b["field"] for b in data["basis"]} >= {"founding_date", "ceo"}
        assert all(b["sources"] for b in data["basis"])
        assert "- founding_date:" in text_of(result)


async def test_text_task_tool_takes_an_input_string(connect: Any) -> None:
    async with connect() as client:
        result = await client.call_tool("fact_check", {"input": "The Eiffel Tower is in Rome."})
        assert not result.is_error, text_of(result)
        assert result.structured_content is not None
        assert result.structured_content["processor"] == "lite"


async def test_progress_notifications_while_waiting(parallel_emulator: EmulatorServer) -> None:
    parallel_emulator.emulator.configure(time_scale=0.02)  # a lite run lasts 0.2-1.2 s
    server = make_server(parallel_emulator, max_wait=10, progress_interval=0.3)
    updates: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, message))

    async with Client(server) as connected:
        # core lasts 1.2-6 s at this scale: long enough for several heartbeats.
        result = await connected.call_tool(
            "research",
            {"question": "Progress please", "processor": "core-fast"},
            progress_callback=on_progress,
        )
    assert not result.is_error, text_of(result)
    run_id = result.structured_content["run_id"]  # type: ignore[index]
    assert len(updates) >= 2
    values = [value for value, _ in updates]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert run_id in (updates[0][1] or ""), "the first update names the run"


async def test_a_run_longer_than_the_wait_comes_back_with_its_id_and_is_collected_later(
    parallel_emulator: EmulatorServer, mode: str
) -> None:
    parallel_emulator.emulator.configure(time_scale=0.005)  # core: 0.3-1.5 s
    server = make_server(parallel_emulator, max_wait=0.5)
    async with Client(server, mode=mode) as connected:
        with anyio.fail_after(5):
            result = await connected.call_tool(
                "research", {"question": "A slow one", "processor": "core"}
            )
        assert not result.is_error, text_of(result)
        data = result.structured_content
        assert data is not None
        assert data["status"] in ("queued", "running")
        assert data["answer"] is None
        assert "get_research_result" in data["next_step"]
        assert data["run_id"] in text_of(result)

    parallel_emulator.emulator.configure(time_scale=0.0001)
    async with Client(make_server(parallel_emulator, max_wait=10), mode=mode) as connected:
        done = await connected.call_tool(
            "get_research_result", {"run_id": data["run_id"], "wait_seconds": 10}
        )
    assert not done.is_error, text_of(done)
    assert done.structured_content["status"] == "completed"  # type: ignore[index]


async def test_start_then_collect(connect: Any, parallel_emulator: EmulatorServer) -> None:
    async with connect() as client:
        parallel_emulator.emulator.configure(time_scale=0.01)
        started = await client.call_tool("start_research", {"question": "Q", "processor": "lite"})
        assert not started.is_error, text_of(started)
        data = started.structured_content
        assert data is not None and data["status"] == "queued" and data["answer"] is None
        assert data["price_usd"] == pytest.approx(0.005)

        peek = await client.call_tool(
            "get_research_result", {"run_id": data["run_id"], "wait_seconds": 0}
        )
        assert peek.structured_content["status"] in ("queued", "running", "completed")  # type: ignore[index]

        done = await client.call_tool(
            "get_research_result", {"run_id": data["run_id"], "wait_seconds": 10}
        )
        assert done.structured_content["status"] == "completed"  # type: ignore[index]
        assert done.structured_content["sources"]  # type: ignore[index]


async def test_get_result_parses_a_typed_run_with_its_task_model(connect: Any) -> None:
    async with connect() as client:
        first = await client.call_tool("company_profile", {"company_name": "Globex"})
        run_id = first.structured_content["run_id"]  # type: ignore[index]
        again = await client.call_tool("get_research_result", {"run_id": run_id, "wait_seconds": 0})
        assert again.structured_content["answer"] == first.structured_content["answer"]  # type: ignore[index]


# --- Cancellation and reuse ---------------------------------------------------------------------


async def test_a_cancelled_call_leaves_the_run_alive_and_a_retry_reuses_it(
    parallel_emulator: EmulatorServer, mode: str
) -> None:
    emu = parallel_emulator.emulator
    emu.configure(time_scale=0.005)  # core: 0.3-1.5 s
    server = make_server(parallel_emulator, max_wait=10)
    arguments = {"question": "Interrupt me", "processor": "core"}
    async with Client(server, mode=mode) as connected:
        with pytest.raises(MCPError):
            await connected.call_tool("research", arguments, read_timeout_seconds=0.2)
        assert emu.request_counts["create"] == 1
        (run_id,) = emu.runs
        status = await connected.call_tool(
            "get_research_result", {"run_id": run_id, "wait_seconds": 0}
        )
        assert not status.is_error and status.structured_content["run_id"] == run_id  # type: ignore[index]

        emu.configure(time_scale=0.0001)
        retried = await connected.call_tool("research", arguments)
    assert emu.request_counts["create"] == 1, "the retry must not pay for a second run"
    assert retried.structured_content["run_id"] == run_id  # type: ignore[index]
    assert retried.structured_content["status"] == "completed"  # type: ignore[index]
    assert "reused" in text_of(retried)


async def test_a_call_cancelled_while_creating_still_records_the_run(
    parallel_emulator: EmulatorServer, mode: str
) -> None:
    emu = parallel_emulator.emulator
    emu.add_fault("create:delay=0.6")
    arguments = {"question": "Cancelled mid-create"}
    async with Client(make_server(parallel_emulator, max_wait=10), mode=mode) as connected:
        with pytest.raises(MCPError):
            await connected.call_tool("research", arguments, read_timeout_seconds=0.2)
        with anyio.fail_after(5):
            while not emu.runs:
                await anyio.sleep(0.05)
        await anyio.sleep(0.2)  # the create's answer reaches the server, which records it
        retried = await connected.call_tool("research", arguments)
    assert not retried.is_error, text_of(retried)
    assert retried.structured_content["run_id"] in emu.runs  # type: ignore[index]
    assert emu.request_counts["create"] == 1


async def test_a_failed_run_is_not_reused(connect: Any, parallel_emulator: EmulatorServer) -> None:
    async with connect() as client:
        parallel_emulator.emulator.add_fault(Fault(endpoint="create", fail_run="Source blocked"))
        failed = await client.call_tool("research", {"question": "Doomed"})
        assert failed.is_error
        assert "Source blocked" in text_of(failed) and "start a new run" in text_of(failed)
        retried = await client.call_tool("research", {"question": "Doomed"})
        assert not retried.is_error, text_of(retried)
        assert parallel_emulator.emulator.request_counts["create"] == 2


async def test_start_research_and_research_share_a_run(
    connect: Any, parallel_emulator: EmulatorServer
) -> None:
    async with connect() as client:
        started = await client.call_tool("start_research", {"question": "Shared?"})
        answered = await client.call_tool("research", {"question": "Shared?"})
    assert answered.structured_content["run_id"] == started.structured_content["run_id"]  # type: ignore[index]
    assert answered.structured_content["status"] == "completed"  # type: ignore[index]
    assert parallel_emulator.emulator.request_counts["create"] == 1


# --- Bad arguments and API failures -------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("research", {"question": "Q", "processor": "pro"}, "processor"),
        ("research", {"question": "Q", "processor": "ultra8x"}, "processor"),
        ("research", {}, "question"),
        ("research", {"question": ""}, "question"),
        ("research", {"question": "Q", "colour": "blue"}, "colour"),
        ("get_research_result", {"run_id": "trun_x", "wait_seconds": 999}, "wait_seconds"),
        ("start_enrichment", {"items": [], "output": "x"}, "items"),
        ("start_enrichment", {"items": ["a"]}, "fields"),
        ("start_enrichment", {"items": ["a"], "fields": {"a": "b"}, "output": "c"}, "not both"),
        ("company_profile", {"company": "Acme"}, "company_name"),
        ("get_research_result", {"run_id": "tgrp_123", "wait_seconds": 0}, "get_enrichment"),
    ],
)
async def test_bad_arguments_are_readable_tool_errors(
    connect: Any, tool: str, arguments: dict[str, Any], expected: str
) -> None:
    async with connect() as client:
        result = await client.call_tool(tool, arguments)
        assert result.is_error
        assert expected in text_of(result)


async def test_an_unknown_run_id_is_an_actionable_error(connect: Any) -> None:
    async with connect() as client:
        result = await client.call_tool(
            "get_research_result", {"run_id": "trun_00000000000000000000000000000000"}
        )
        assert result.is_error
        assert "no such run" in text_of(result) and "trun_" in text_of(result)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        # Specs, not Fault objects: a Fault counts its hits and would be spent by the first mode.
        ("create:402", "credit"),
        ("create:429:times=3:retry_after=0", "rate-limiting"),
        ("create:500", "leaves open whether Parallel accepted it"),
    ],
)
async def test_api_failures_are_tool_errors(
    parallel_emulator: EmulatorServer, mode: str, fault: str, expected: str
) -> None:
    parallel_emulator.emulator.add_fault(fault)
    async with Client(make_server(parallel_emulator, api_key=SECRET), mode=mode) as connected:
        result = await connected.call_tool("research", {"question": "Q"})
        assert result.is_error
        assert expected in text_of(result)
        assert SECRET not in text_of(result)
        # The server survives: the next call works.
        assert not (await connected.call_tool("research", {"question": "Q2"})).is_error


@pytest.mark.parallel_emulator(api_keys=["the-right-key"])
async def test_a_rejected_key_is_reported_without_showing_it(
    parallel_emulator: EmulatorServer,
) -> None:
    async with Client(make_server(parallel_emulator, api_key=SECRET)) as connected:
        result = await connected.call_tool("research", {"question": "Q"})
    assert result.is_error
    assert "PARALLEL_API_KEY" in text_of(result) and "401" in text_of(result)
    assert SECRET not in text_of(result)


async def test_without_an_api_key_tools_list_and_calls_explain(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.delenv("PARALLEL_API_KEY", raising=False)
    async with Client(create_server(), mode=mode) as connected:
        assert len((await connected.list_tools()).tools) == 5
        result = await connected.call_tool("research", {"question": "Q"})
    assert result.is_error
    assert "PARALLEL_API_KEY" in text_of(result)


# --- Cost control -------------------------------------------------------------------------------


def test_tasks_on_processors_the_operator_did_not_allow_are_refused() -> None:
    deep = Task("deep_dive", "Research deeply.", output="A report", processor="ultra")
    with pytest.raises(ValueError, match="not allow"):
        create_server([deep])
    server = create_server([deep], settings=ServerSettings(processors=("ultra", "base")))
    assert server is not None


async def test_the_default_processor_is_the_operators(parallel_emulator: EmulatorServer) -> None:
    settings = ServerSettings(
        api_key=parallel_emulator.api_key,
        base_url=parallel_emulator.base_url,
        processors=("lite",),
        default_processor="lite",
    )
    server = create_server(settings=settings)
    async with Client(server) as connected:
        tools = {t.name: t for t in (await connected.list_tools()).tools}
        schema = tools["research"].input_schema["properties"]["processor"]["anyOf"][0]
        assert schema["enum"] == ["lite", "lite-fast"]
        result = await connected.call_tool("research", {"question": "Cheap"})
    assert result.structured_content["processor"] == "lite"  # type: ignore[index]
    assert result.structured_content["price_usd"] == pytest.approx(0.005)  # type: ignore[index]


async def test_only_task_tools_when_generic_tools_are_off(
    parallel_emulator: EmulatorServer,
) -> None:
    server = make_server(parallel_emulator, generic_tools=False)
    async with Client(server) as connected:
        names = {t.name for t in (await connected.list_tools()).tools}
    assert names == {"company_profile", "fact_check", "get_research_result"}


# --- Size budget --------------------------------------------------------------------------------


async def test_huge_results_are_cut_to_the_budget_with_a_link_to_the_rest(
    connect: Any, parallel_emulator: EmulatorServer
) -> None:
    async with connect() as client:
        question = "Write me everything"
        basis = [
            {
                "field": "output",
                "reasoning": "r" * 3000,
                "confidence": "medium",
                "citations": [
                    {
                        "url": f"https://example.com/{i}",
                        "title": f"Page {i}",
                        "excerpts": ["e" * 900],
                    }
                    for i in range(300)
                ],
            }
        ]
        parallel_emulator.emulator.add_fixture(question, "word " * 60_000, basis=basis)
        result = await client.call_tool("research", {"question": question})
        assert not result.is_error, text_of(result)
        data = result.structured_content
        assert data is not None and data["truncated"] is True
        total = estimate_tokens(text_of(result)) + estimate_tokens(json.dumps(data))
        assert total <= 20_000
        assert data["resource_uri"] in text_of(result) and "Truncated" in text_of(result)
        full = await client.read_resource(data["resource_uri"])
        assert len(full.contents[0].text) > 300_000  # type: ignore[union-attr]


# --- Enrichment ---------------------------------------------------------------------------------


async def test_enrichment_runs_a_group_and_returns_rows_in_item_order(
    connect: Any, parallel_emulator: EmulatorServer
) -> None:
    async with connect() as client:
        items = ["Stripe", "Adyen", {"company": "Klarna", "country": "Sweden"}]
        started = await client.call_tool(
            "start_enrichment",
            {"items": items, "fields": {"ceo": "Full name of the CEO"}, "processor": "lite"},
        )
        assert not started.is_error, text_of(started)
        group_id = started.structured_content["group_id"]  # type: ignore[index]
        assert started.structured_content["total_items"] == 3  # type: ignore[index]
        assert "$0.015 in all" in text_of(started)
        assert parallel_emulator.emulator.request_counts["group_add_runs"] == 1

        page = await client.call_tool(
            "get_enrichment_results", {"group_id": group_id, "wait_seconds": 10, "limit": 2}
        )
        assert not page.is_error, text_of(page)
        data = page.structured_content
        assert data is not None and data["status"] == "completed"
        assert [row["index"] for row in data["rows"]] == [0, 1]
        assert [row["input"] for row in data["rows"]] == items[:2]
        assert all(row["result"]["answer"]["ceo"] for row in data["rows"])
        assert all(row["result"]["sources"] for row in data["rows"])
        assert data["next_offset"] == 2 and "offset=2" in text_of(page)

        rest = await client.call_tool(
            "get_enrichment_results", {"group_id": group_id, "wait_seconds": 0, "offset": 2}
        )
        rows = rest.structured_content["rows"]  # type: ignore[index]
        assert [row["input"] for row in rows] == [items[2]]
        assert rest.structured_content["next_offset"] is None  # type: ignore[index]

        full = await client.read_resource(f"parallel://groups/{group_id}")
        assert len(json.loads(full.contents[0].text)["rows"]) == 3  # type: ignore[union-attr]


async def test_enrichment_is_capped_by_the_operator(parallel_emulator: EmulatorServer) -> None:
    async with Client(make_server(parallel_emulator, max_batch_items=2)) as connected:
        result = await connected.call_tool(
            "start_enrichment", {"items": ["a", "b", "c"], "output": "x"}
        )
    assert result.is_error and "items" in text_of(result)
    assert parallel_emulator.emulator.request_counts["group_create"] == 0
