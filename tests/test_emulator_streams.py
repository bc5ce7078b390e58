"""Event streams (SSE framing, replay, live progress) and task groups over raw HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from parallel import Parallel

from parallel_tools._models import RunStateEvent, TaskGroup, TaskGroupStatusEvent
from parallel_tools.emulator import EmulatorServer, Fault

from .conftest import SSL_CONTEXT

RUN = {"input": "x", "processor": "lite"}


def raw_events(api: httpx.Client, path: str, **params: Any) -> tuple[str, list[dict[str, Any]]]:
    """The stream's raw text and its events, checking the framing of every block."""
    with api.stream("GET", path, params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = []
    assert text.endswith("\n\n") or text == ""
    for block in text.split("\n\n")[:-1]:
        lines = block.split("\n")
        if all(line.startswith(":") for line in lines):
            continue  # a keep-alive comment
        assert len(lines) == 2, block
        assert lines[0].startswith("event: ") and lines[1].startswith("data: ")
        data = lines[1].removeprefix("data: ")
        event = json.loads(data)
        assert lines[0] == f"event: {event['type']}"
        assert data == json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        events.append(event)
    assert not any(line.startswith("id:") for line in text.split("\n"))
    return text, events


def create(api: httpx.Client, **body: Any) -> str:
    response = api.post("/v1/tasks/runs", json={**RUN, **body})
    assert response.status_code == 202
    run_id: str = response.json()["run_id"]
    return run_id


# --- run event streams --------------------------------------------------------------------------


def test_a_finished_run_replays_its_trace_then_its_output(api: httpx.Client) -> None:
    run_id = create(api, task_spec={"output_schema": "A short answer"})
    api.get(f"/v1/tasks/runs/{run_id}/result")
    _, events = raw_events(api, f"/v1/tasks/runs/{run_id}/events")
    first, last = events[0], events[-1]
    assert first["type"] == last["type"] == "task_run.state"
    assert first["output"] is None and first["event_id"] is None and first["input"] is None
    assert last["run"]["status"] == "completed" and last["output"]["type"] == "text"
    RunStateEvent.model_validate(last)
    middle = events[1:-1]
    messages = [e for e in middle if e["type"].startswith("task_run.progress_msg.")]
    stats = [e for e in middle if e["type"] == "task_run.progress_stats"]
    assert len(stats) == 1 and stats[0]["progress_meter"] == 95.0  # only the latest snapshot
    stamps = [m["timestamp"] for m in messages]
    assert stamps == sorted(stamps)
    assert last["run"]["created_at"] <= stamps[0] <= stamps[-1] <= last["run"]["modified_at"]
    # Reconnecting replays the same trace, original timestamps and all.
    _, again = raw_events(api, f"/v1beta/tasks/runs/{run_id}/events")
    assert again[1:] == events[1:]


@pytest.mark.parallel_emulator(time_scale=0.01, keepalive_interval=0.005)
def test_live_progress_with_safe_keepalives(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    # lite-fast: 10-20 s, here 100-200 ms; progress events are 5-15% of it apart (at least
    # 4.5 ms), so the stream goes quiet for longer than the keep-alive interval.
    run_id = create(api, processor="lite-fast")
    text, events = raw_events(api, f"/v1/tasks/runs/{run_id}/events")
    assert events[0]["run"]["status"] in ("queued", "running")
    assert ": keepalive\n\n" in text
    stats = [e["progress_meter"] for e in events if e["type"] == "task_run.progress_stats"]
    assert stats == sorted(stats) and len(stats) >= 3  # seen live, not collapsed
    # The official SDK's decoder chokes on comments after an `id:` line; there are none.
    run_id = create(api, processor="lite-fast")
    with Parallel(api_key=parallel_emulator.api_key, base_url=parallel_emulator.base_url) as sdk:
        typed = list(sdk.task_run.events(run_id))
    assert typed[-1].type == "task_run.state"


def test_a_failed_run_stream_ends_with_an_error_event(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    parallel_emulator.emulator.add_fault(Fault(fail_run="Quota of the upstream source hit."))
    run_id = create(api)
    _, events = raw_events(api, f"/v1/tasks/runs/{run_id}/events")
    state, error = events[-2], events[-1]
    assert state["type"] == "task_run.state" and state["run"]["status"] == "failed"
    assert state["output"] is None
    assert error == {"type": "error", "error": state["run"]["error"]}
    assert error["error"]["message"] == "Quota of the upstream source hit."


@pytest.mark.parallel_emulator(time_scale=1, sse_max_seconds=0.3)
def test_run_streams_close_after_the_maximum_duration(api: httpx.Client) -> None:
    run_id = create(api)
    started = time.monotonic()
    _, events = raw_events(api, f"/v1/tasks/runs/{run_id}/events")
    assert 0.29 <= time.monotonic() - started < 2
    assert all(e["type"] != "task_run.state" or e["output"] is None for e in events)
    assert api.get(f"/v1/tasks/runs/{run_id}").json()["is_active"] is True


# --- groups -------------------------------------------------------------------------------------


def new_group(api: httpx.Client, prefix: str = "/v1", **body: Any) -> str:
    response = api.post(f"{prefix}/tasks/groups", json=body)
    assert response.status_code == 200
    group = TaskGroup.model_validate(response.json())
    assert group.taskgroup_id.startswith("tgrp_") and len(group.taskgroup_id) == 5 + 48
    return group.taskgroup_id


def add(api: httpx.Client, group: str, inputs: list[dict[str, Any]], **body: Any) -> Any:
    response = api.post(f"/v1/tasks/groups/{group}/runs", json={"inputs": inputs, **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_group_create_and_retrieve_on_both_paths(api: httpx.Client) -> None:
    group = new_group(api, "/v1beta", metadata={"owner": "tests", "n": 2})
    for prefix in ("/v1", "/v1beta"):
        body = api.get(f"{prefix}/tasks/groups/{group}").json()
        assert body["metadata"] == {"owner": "tests", "n": 2}
        assert body["status"] == {
            "num_task_runs": 0,
            "task_run_status_counts": {},
            "is_active": False,
            "status_message": None,
            "modified_at": body["created_at"],
        }
    assert api.post("/v1/tasks/groups", content=b"").status_code == 200


@pytest.mark.parallel_emulator(time_scale=0.01)
def test_group_status_counts_follow_the_runs(api: httpx.Client) -> None:
    group = new_group(api)
    added = add(api, group, [{**RUN, "processor": "lite-fast"}, {**RUN, "processor": "base"}])
    assert added["status"]["task_run_status_counts"] == {"queued": 2}
    assert added["status"]["is_active"] is True
    for run_id in added["run_ids"]:
        run = api.get(f"/v1/tasks/groups/{group}/runs/{run_id}").json()
        assert run["taskgroup_id"] == group
        api.get(f"/v1/tasks/runs/{run_id}/result")
    status = api.get(f"/v1/tasks/groups/{group}").json()["status"]
    assert status["task_run_status_counts"] == {"completed": 2}
    assert status["is_active"] is False and status["num_task_runs"] == 2


def test_a_runs_own_task_spec_overrides_the_group_default(api: httpx.Client) -> None:
    group = new_group(api)
    schema = {
        "type": "object",
        "properties": {"ceo": {"type": "string"}},
        "required": ["ceo"],
        "additionalProperties": False,
    }
    added = add(
        api,
        group,
        [RUN, {**RUN, "task_spec": {"output_schema": "One sentence"}}],
        default_task_spec={"output_schema": {"type": "json", "json_schema": schema}},
    )
    outputs = [api.get(f"/v1/tasks/runs/{r}/result").json()["output"] for r in added["run_ids"]]
    assert outputs[0]["type"] == "json" and set(outputs[0]["content"]) == {"ceo"}
    assert outputs[1]["type"] == "text"
    echoed = api.get(f"/v1/tasks/runs/{added['run_ids'][0]}/input").json()
    assert echoed["task_spec"]["output_schema"]["json_schema"] == schema


def test_group_runs_snapshot_with_cursors_and_filters(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    group = new_group(api)
    parallel_emulator.emulator.add_fault(Fault(fail_run="Boom"))
    first = add(api, group, [RUN, RUN])
    second = add(api, group, [RUN])
    assert (first["run_cursor"], second["run_cursor"]) == (None, "2")
    for run_id in first["run_ids"] + second["run_ids"]:
        api.get(f"/v1/tasks/runs/{run_id}/result")
    url = f"/v1beta/tasks/groups/{group}/runs"
    _, events = raw_events(api, url)
    assert [e["event_id"] for e in events] == ["1", "2", "3"]
    assert [e["run"]["run_id"] for e in events] == first["run_ids"] + second["run_ids"]
    assert all(e["input"] is None and e["output"] is None for e in events)
    _, full = raw_events(api, url, include_input="true", include_output="true")
    assert [e["input"] for e in full] == [{**RUN}] * 3
    # Output only for completed runs (the first run failed).
    assert [e["output"] is not None for e in full] == [False, True, True]
    _, resumed = raw_events(api, url, last_event_id=second["run_cursor"])
    assert [e["run"]["run_id"] for e in resumed] == second["run_ids"]
    _, failed = raw_events(api, url, status="failed")
    assert [e["run"]["run_id"] for e in failed] == first["run_ids"][:1]
    _, past_end = raw_events(api, url, last_event_id="99")
    assert past_end == []


def test_group_events_are_a_resumable_log(api: httpx.Client) -> None:
    group = new_group(api)
    first = add(api, group, [RUN, RUN])
    url = f"/v1/tasks/groups/{group}/events"
    _, events = raw_events(api, url)  # ends once the group is idle
    assert [e["event_id"] for e in events] == [str(i) for i in range(1, len(events) + 1)]
    kinds = [e["type"] for e in events]
    assert kinds.count("task_run.state") == 2
    assert kinds[-1] == "task_group_status"
    assert events[-1]["status"]["is_active"] is False
    ended = [e for e in events if e["type"] == "task_run.state"]
    assert {e["run"]["run_id"] for e in ended} == set(first["run_ids"])
    assert all(e["output"] is None and e["run"]["status"] == "completed" for e in ended)
    for event in events:
        model = RunStateEvent if event["type"] == "task_run.state" else TaskGroupStatusEvent
        model.model_validate(event)

    second = add(api, group, [RUN])
    assert second["event_cursor"] == str(len(events))
    _, tail = raw_events(api, url, last_event_id=second["event_cursor"])
    assert tail[0]["event_id"] == str(len(events) + 1)
    assert [e["run"]["run_id"] for e in tail if e["type"] == "task_run.state"] == second["run_ids"]
    _, middle = raw_events(api, url, last_event_id="3")
    assert middle == (events + tail)[3:]


@pytest.mark.parallel_emulator(time_scale=1)
def test_group_events_stay_open_while_active_until_the_timeout(api: httpx.Client) -> None:
    group = new_group(api)
    add(api, group, [RUN])
    started = time.monotonic()
    _, events = raw_events(api, f"/v1/tasks/groups/{group}/events", timeout="0.3")
    assert 0.29 <= time.monotonic() - started < 2
    assert [e["type"] for e in events] == ["task_group_status"]
    assert events[0]["status"]["is_active"] is True


@pytest.mark.parallel_emulator(time_scale=0.01)
def test_group_events_deliver_completions_live(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    group = new_group(api)
    added = add(api, group, [{**RUN, "processor": "lite-fast"}])
    run = parallel_emulator.emulator.runs[added["run_ids"][0]]
    with api.stream("GET", f"/v1/tasks/groups/{group}/events") as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and '"task_run.state"' in line:
                arrived = time.time()
                break
    assert 0 <= arrived - run.end < 0.5  # live, not at a keep-alive or at the stream's end


@pytest.mark.parallel_emulator(time_scale=0.05)
async def test_reset_ends_streams_and_holds_of_forgotten_runs(
    parallel_emulator: EmulatorServer,
) -> None:
    emulator = parallel_emulator.emulator
    async with httpx.AsyncClient(
        base_url=parallel_emulator.base_url, headers={"x-api-key": "k"}, verify=SSL_CONTEXT
    ) as client:
        group = (await client.post("/v1/tasks/groups", json={})).json()["taskgroup_id"]
        body = {"inputs": [{"input": "x", "processor": "lite-fast"}]}  # 0.5-1 s at this scale
        (run_id,) = (await client.post(f"/v1/tasks/groups/{group}/runs", json=body)).json()[
            "run_ids"
        ]
        stream = asyncio.create_task(client.get(f"/v1/tasks/groups/{group}/events"))
        hold = asyncio.create_task(client.get(f"/v1/tasks/runs/{run_id}/result"))
        await asyncio.sleep(0.1)
        emulator.reset()
        started = time.monotonic()
        events = (await stream).text
        closed = time.monotonic() - started
        result = await hold
    assert closed < 0.3
    assert "task_run.state" not in events  # closed without reporting the forgotten run
    assert result.status_code == 200
