"""The client against a real HTTP server (the emulator): long waits, faults, streams, groups."""

from __future__ import annotations

import time
from typing import Literal

import pytest
from pydantic import BaseModel

from parallel_tools import (
    AsyncTaskClient,
    PaymentRequiredError,
    ProgressMessageEvent,
    RetryPolicy,
    RunMayExistError,
    RunStateEvent,
    Task,
    TaskClient,
    TaskFailedError,
    TaskTimeoutError,
)
from parallel_tools.emulator import EmulatorServer, Fault

FAST = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05)


def client_for(server: EmulatorServer, **options: object) -> TaskClient:
    return TaskClient(api_key=server.api_key, base_url=server.base_url, retry=FAST, **options)  # type: ignore[arg-type]


class CompanyOutput(BaseModel):
    founding_date: str
    employee_count: Literal["1-10 employees", "10001+ employees"]
    funding_sources: str


def test_run_returns_the_seed_answer_typed(parallel_emulator: EmulatorServer) -> None:
    with client_for(parallel_emulator) as client:
        result = client.run("United Nations", output=CompanyOutput, processor="core")
    assert isinstance(result.parsed, CompanyOutput)
    assert result.parsed.founding_date == "10-1945"
    assert result.confidence("employee_count") == "low"
    assert any("mulated" in w.message for w in result.warnings)


@pytest.mark.parallel_emulator(time_scale=0.004, max_result_hold=1)
def test_wait_spans_many_holds_and_returns_promptly(parallel_emulator: EmulatorServer) -> None:
    # core runs last 60-300 s, so 0.24-1.2 s here: several 1-second holds, maybe 408s.
    with client_for(parallel_emulator, result_hold=1) as client:
        run = client.create_run("A question that takes a while", processor="core")
        stored = parallel_emulator.emulator.runs[run.run_id]
        result = client.wait(run.run_id)
        finished = time.time()
    assert result.run.status == "completed"
    # Delivered within 100 ms of completion: the hold returns the moment the run ends.
    assert finished - (stored.created + stored.duration) < 0.1


@pytest.mark.parallel_emulator(time_scale=0.01, max_result_hold=1)
def test_wait_survives_dropped_holds_and_5xx(parallel_emulator: EmulatorServer) -> None:
    emu = parallel_emulator.emulator
    emu.add_fault(Fault.parse("result:drop_mid:times=2"))
    emu.add_fault(Fault.parse("result:503:times=2"))
    with client_for(parallel_emulator, result_hold=1) as client:
        run = client.create_run("q", processor="lite")
        assert client.wait(run.run_id).run.status == "completed"
    assert emu.request_counts["result"] >= 5


@pytest.mark.parallel_emulator(time_scale=1.0, max_result_hold=1)
def test_deadline_gives_back_the_run_id(parallel_emulator: EmulatorServer) -> None:
    with client_for(parallel_emulator, result_hold=1) as client:
        run = client.create_run("q", processor="ultra")
        started = time.monotonic()
        with pytest.raises(TaskTimeoutError) as info:
            client.wait(run.run_id, timeout=1.5)
    assert info.value.run_id == run.run_id
    assert 1.4 < time.monotonic() - started < 3.5


def test_failed_runs_raise_with_their_error(parallel_emulator: EmulatorServer) -> None:
    parallel_emulator.emulator.add_fault(Fault.parse("create:fail_run=Source blocked"))
    with client_for(parallel_emulator) as client, pytest.raises(TaskFailedError) as info:
        client.run("q", output="x")
    assert "Source blocked" in str(info.value)


def test_create_is_not_repeated_after_it_may_have_been_accepted(
    parallel_emulator: EmulatorServer,
) -> None:
    emu = parallel_emulator.emulator
    emu.add_fault(Fault.parse("create:502:after_accept"))
    with client_for(parallel_emulator) as client, pytest.raises(RunMayExistError):
        client.create_run("q")
    assert emu.request_counts["create"] == 1
    assert len(emu.runs) == 1  # the run exists; it was not created a second time


def test_create_is_retried_when_it_was_refused(parallel_emulator: EmulatorServer) -> None:
    emu = parallel_emulator.emulator
    emu.add_fault(Fault.parse("create:429:times=2:retry_after_ms=20"))
    with client_for(parallel_emulator) as client:
        client.create_run("q")
    assert emu.request_counts["create"] == 3 and len(emu.runs) == 1


def test_payment_errors_are_not_retried(parallel_emulator: EmulatorServer) -> None:
    emu = parallel_emulator.emulator
    emu.add_fault(Fault.parse("create:402"))
    with client_for(parallel_emulator) as client, pytest.raises(PaymentRequiredError):
        client.create_run("q")
    assert emu.request_counts["create"] == 1


@pytest.mark.parallel_emulator(time_scale=0.002)
def test_events_stream_progress_and_end_with_the_output(parallel_emulator: EmulatorServer) -> None:
    with client_for(parallel_emulator) as client:
        run = client.create_run("q", processor="pro", output="A report")
        events = list(client.events(run.run_id))
    assert isinstance(events[0], RunStateEvent)
    assert any(isinstance(e, ProgressMessageEvent) for e in events)
    last = events[-1]
    assert isinstance(last, RunStateEvent) and last.run.status == "completed"
    assert last.output is not None


@pytest.mark.parallel_emulator(time_scale=0.003)
def test_events_reconnect_after_a_dropped_stream(parallel_emulator: EmulatorServer) -> None:
    parallel_emulator.emulator.add_fault(Fault.parse("events:drop_mid"))
    with client_for(parallel_emulator) as client:
        run = client.create_run("q", processor="pro")
        events = list(client.events(run.run_id))
    messages = [e.message for e in events if isinstance(e, ProgressMessageEvent)]
    assert len(messages) == len(set(messages))
    assert events[-1].run.status == "completed"  # type: ignore[union-attr]
    assert parallel_emulator.emulator.request_counts["events"] >= 2


class Company(BaseModel):
    company_name: str


class Founding(BaseModel):
    founding_date: str


async def test_batch_through_one_group_in_input_order(parallel_emulator: EmulatorServer) -> None:
    task = Task("founding", "Find the founding date.", input=Company, output=Founding)
    names = [f"Company {i}" for i in range(25)]
    async with AsyncTaskClient(
        api_key=parallel_emulator.api_key, base_url=parallel_emulator.base_url
    ) as client:
        outcomes = await client.run_batch(task, [{"company_name": n} for n in names])
    assert [o.ok for o in outcomes] == [True] * 25
    assert all(isinstance(o.result.parsed, Founding) for o in outcomes)  # type: ignore[union-attr]
    inputs = [parallel_emulator.emulator.runs[o.run_id].input for o in outcomes]
    assert inputs == [{"company_name": n} for n in names]
    counts = parallel_emulator.emulator.request_counts
    assert counts["group_create"] == 1 and counts["group_add_runs"] == 1 and counts["create"] == 0


def test_add_runs_splits_large_batches(parallel_emulator: EmulatorServer) -> None:
    with client_for(parallel_emulator) as client:
        group = client.create_group()
        added = client.add_runs(
            group.taskgroup_id, (f"q{i}" for i in range(1200)), output="x", processor="lite"
        )
        assert len(added.run_ids) == 1200
        outcomes = list(client.group_results(group.taskgroup_id, concurrency=16))
    assert len(outcomes) == 1200 and all(o.ok for o in outcomes)
    assert parallel_emulator.emulator.request_counts["group_add_runs"] == 2


@pytest.mark.parallel_emulator(time_scale=1.0)
def test_nothing_keeps_running_after_a_batch_times_out(parallel_emulator: EmulatorServer) -> None:
    import threading

    with client_for(parallel_emulator) as client:
        outcomes = client.run_batch(None, ["a", "b"], output="x", processor="lite", timeout=0.5)
        assert [type(o.error).__name__ for o in outcomes] == ["TaskTimeoutError"] * 2
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if not [t for t in threading.enumerate() if t.name.startswith("parallel-tools")]:
                break
            time.sleep(0.05)
        assert not [t.name for t in threading.enumerate() if t.name.startswith("parallel-tools")]
