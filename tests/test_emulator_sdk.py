"""The official ``parallel-web`` SDK, unmodified, against the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pytest
from parallel import AsyncParallel, NotFoundError, Parallel
from parallel.types import (
    ParsedTaskRunResult,
    TaskGroupStatusEvent,
    TaskRunEvent,
    TaskRunJsonOutput,
    TaskRunProgressMessageEvent,
    TaskRunProgressStatsEvent,
    TaskRunTextOutput,
    TaskSpecParam,
)
from pydantic import BaseModel, Field

from parallel_tools.emulator import EmulatorServer, Fault

UN_SOURCES = [
    "https://www.un.org/en/about-us/history-of-the-un",
    "https://history.state.gov/milestones/1937-1945/un",
    "https://en.wikipedia.org/wiki/United_Nations",
    "https://research.un.org/en/unmembers/founders",
]


class CompanyOutput(BaseModel):
    """The quickstart's structured output."""

    founding_date: str = Field(
        description="The official founding date of the company in the format MM-YYYY"
    )
    employee_count: Literal[
        "1-10 employees",
        "11-50 employees",
        "51-200 employees",
        "201-500 employees",
        "501-1000 employees",
        "1001-5000 employees",
        "5001-10000 employees",
        "10001+ employees",
    ] = Field(description="The range of employees working at the company.")
    funding_sources: str = Field(description="The company's funding sources, in 1-4 sentences.")


class Profile(BaseModel):
    ceo_name: str
    board_size: int
    revenue_musd: float | None
    public: bool
    sector: Literal["tech", "retail", "energy"]
    products: list[str]


@pytest.fixture
def client(parallel_emulator: EmulatorServer) -> Iterator[Parallel]:
    with Parallel(api_key=parallel_emulator.api_key, base_url=parallel_emulator.base_url) as sdk:
        yield sdk


def test_quickstart_create_then_result(client: Parallel) -> None:
    run = client.task_run.create(
        input="United Nations",
        task_spec=TaskSpecParam(
            output_schema="The founding date of the company in the format MM-YYYY"
        ),
        processor="base",
    )
    assert run.status == "queued"
    assert run.run_id.startswith("trun_")
    result = client.task_run.result(run.run_id, api_timeout=3600)
    assert isinstance(result.output, TaskRunTextOutput)
    assert result.output.content == "10-1945"
    (basis,) = result.output.basis
    assert basis.field == "output"
    assert [c.url for c in basis.citations or []] == UN_SOURCES
    assert all(c.title is None and c.excerpts == [] for c in basis.citations or [])
    assert basis.confidence == ""
    assert result.run.status == "completed"


async def test_async_client_create_then_result(parallel_emulator: EmulatorServer) -> None:
    async with AsyncParallel(
        api_key=parallel_emulator.api_key, base_url=parallel_emulator.base_url
    ) as client:
        run = await client.task_run.create(input="Acme Corp", processor="lite-fast")
        result = await client.task_run.result(run.run_id, api_timeout=30)
        assert result.run.run_id == run.run_id
        assert isinstance(result.output, TaskRunJsonOutput)
        events = [e async for e in await client.task_run.events(run.run_id)]
        assert isinstance(events[-1], TaskRunEvent) and events[-1].output is not None


def test_retrieve_and_retrieve_input(client: Parallel) -> None:
    run = client.task_run.create(
        input={"company_name": "Acme"}, processor="core", metadata={"batch": "7"}
    )
    client.task_run.result(run.run_id, api_timeout=30)
    again = client.task_run.retrieve(run.run_id)
    assert (again.status, again.is_active, again.metadata) == ("completed", False, {"batch": "7"})
    echoed = client.task_run.retrieve_input(run.run_id)
    assert echoed.input == {"company_name": "Acme"}
    assert echoed.processor == "core"


@pytest.mark.parallel_emulator(time_scale=0.002)
def test_events_are_typed_and_end_with_the_output(client: Parallel) -> None:
    run = client.task_run.create(
        input="Acme Corp", processor="base", task_spec={"output_schema": "A one-line summary"}
    )
    events = list(client.task_run.events(run.run_id))
    first, last = events[0], events[-1]
    assert isinstance(first, TaskRunEvent) and first.output is None
    assert first.run.status in ("queued", "running")
    assert isinstance(last, TaskRunEvent) and last.run.status == "completed"
    assert isinstance(last.output, TaskRunTextOutput)
    messages = [e for e in events if isinstance(e, TaskRunProgressMessageEvent)]
    assert {m.type for m in messages} >= {
        "task_run.progress_msg.plan",
        "task_run.progress_msg.search",
        "task_run.progress_msg.result",
        "task_run.progress_msg.exec_status",
    }
    stats = [e for e in events if isinstance(e, TaskRunProgressStatsEvent)]
    assert stats and all(0 <= s.progress_meter <= 100 for s in stats)


def test_execute_with_a_pydantic_output(client: Parallel) -> None:
    parsed = client.task_run.execute(input="United Nations", processor="core", output=CompanyOutput)
    assert isinstance(parsed, ParsedTaskRunResult)
    assert parsed.output.parsed == CompanyOutput(
        founding_date="10-1945",
        employee_count="10001+ employees",
        funding_sources=parsed.output.parsed.funding_sources,
    )
    assert "assessed" in parsed.output.parsed.funding_sources
    synthetic = client.task_run.execute(input="Acme Corp", processor="core", output=Profile)
    assert isinstance(synthetic.output.parsed, Profile)
    fields = ["ceo_name", "board_size", "revenue_musd", "public", "sector", "products"]
    assert [b.field for b in synthetic.output.basis] == [*fields, "products.0", "products.1"]


def test_failed_run_raises_not_found_on_result(
    client: Parallel, parallel_emulator: EmulatorServer
) -> None:
    parallel_emulator.emulator.add_fault(Fault(endpoint="create", fail_run="No sources found."))
    run = client.task_run.create(input="x", processor="lite")
    with pytest.raises(NotFoundError, match="Run failed or run id not found"):
        client.task_run.result(run.run_id, api_timeout=30)
    failed = client.task_run.retrieve(run.run_id)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.message == "No sources found."


def test_sdk_retries_a_429_honouring_retry_after(
    client: Parallel, parallel_emulator: EmulatorServer
) -> None:
    emulator = parallel_emulator.emulator
    emulator.add_fault(Fault(endpoint="create", status=429, retry_after=0.05, times=2))
    run = client.task_run.create(input="x", processor="lite")
    assert run.status == "queued"
    assert emulator.request_counts["create"] == 3
    assert len(emulator.runs) == 1


def test_task_group_flow(client: Parallel) -> None:
    group = client.task_group.create(metadata={"batch": "companies"})
    assert group.task_group_id.startswith("tgrp_") and len(group.task_group_id) == 53
    names = ["Acme", "Globex", "Initech", "United Nations"]
    added = client.task_group.add_runs(
        group.task_group_id,
        inputs=[{"input": name, "processor": "lite"} for name in names],
        default_task_spec={
            "output_schema": {"type": "json", "json_schema": CompanyOutput.model_json_schema()}
        },
    )
    assert len(added.run_ids) == 4
    assert added.status.num_task_runs == 4
    assert added.run_cursor is None and added.event_cursor is None

    ended = set()
    for event in client.task_group.events(group.task_group_id, api_timeout=30):
        if isinstance(event, TaskRunEvent):
            ended.add(event.run.run_id)
            assert event.event_id and event.output is None
        else:
            assert isinstance(event, TaskGroupStatusEvent)
            last_status = event.status
    assert ended == set(added.run_ids)
    assert not last_status.is_active
    assert last_status.task_run_status_counts == {"completed": 4}

    runs = list(
        client.task_group.get_runs(group.task_group_id, include_input=True, include_output=True)
    )
    assert [r.run.run_id for r in runs] == added.run_ids
    assert [r.input.input for r in runs if r.input] == names
    assert all(isinstance(r.output, TaskRunJsonOutput) for r in runs)
    assert runs[3].output is not None and runs[3].output.content["founding_date"] == "10-1945"
    retrieved = client.task_group.retrieve(group.task_group_id)
    assert retrieved.metadata == {"batch": "companies"}
    assert retrieved.status.is_active is False
    one = client.task_group.retrieve_run(added.run_ids[0], task_group_id=group.task_group_id)
    assert one.task_group_id == group.task_group_id

    more = client.task_group.add_runs(
        group.task_group_id, inputs=[{"input": "Hooli", "processor": "lite"}]
    )
    assert more.run_cursor == "4"
    resumed = list(client.task_group.get_runs(group.task_group_id, last_event_id=more.run_cursor))
    assert [r.run.run_id for r in resumed] == more.run_ids


class Person(BaseModel):
    name: str
    role: str


class Board(BaseModel):
    chair: Person
    members: list[Person]


def test_execute_with_nested_models_sends_refs_and_gets_a_fitting_answer(
    parallel_emulator: EmulatorServer,
) -> None:
    # The SDK sends nested models as $defs/$ref; Parallel does not document them, so the
    # emulator accepts them with a warning and answers from the resolved schema.
    client = Parallel(api_key=parallel_emulator.api_key, base_url=parallel_emulator.base_url)
    result = client.task_run.execute(input="Acme's board", processor="lite", output=Board)
    assert isinstance(result.output.parsed, Board)
    assert result.output.parsed.members
    warnings = [w.message for w in result.run.warnings or []]
    assert any("$ref" in w for w in warnings)
