"""TaskClient and AsyncTaskClient against a scripted API: every endpoint, the wait loop, retries,
the never-pay-twice create policy, streams and groups. Most scenarios run through both clients,
which share all logic, to prove the drivers behave the same."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field

from parallel_tools import (
    APIConnectionError,
    APIError,
    AsyncTaskClient,
    AuthenticationError,
    ConfigurationError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    ProgressMessageEvent,
    RateLimitError,
    RetryPolicy,
    RunMayExistError,
    RunStateEvent,
    SchemaError,
    Task,
    TaskClient,
    TaskFailedError,
    TaskGroupStatusEvent,
    TaskTimeoutError,
    UnknownEvent,
    UnprocessableEntityError,
)

from .fake_api import DroppingStream, FakeAPI, error_body, run_json, sse, text_result

FAST = RetryPolicy(max_retries=3, initial_delay=0.001, max_delay=0.01)
RUNS = "/v1/tasks/runs"
RESULT = r"/v1/tasks/runs/[^/]+/result"


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(kind: str, api: FakeAPI, **kwargs: Any) -> TaskClient | AsyncTaskClient:
    options: dict[str, Any] = {"api_key": "sk-secret-key-1234", "retry": FAST, **kwargs}
    if kind == "sync":
        return TaskClient(transport=api.transport(), **options)
    return AsyncTaskClient(transport=api.transport(), **options)


async def call(client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call a client method the same way for both clients."""
    value = getattr(client, method)(*args, **kwargs)
    return await value if inspect.isawaitable(value) else value


async def collect(iterator: Any) -> list[Any]:
    if hasattr(iterator, "__aiter__"):
        return [item async for item in iterator]
    return list(iterator)


# --- Configuration ---------------------------------------------------------------------------


def test_api_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARALLEL_API_KEY", "env-key")
    monkeypatch.setenv("PARALLEL_BASE_URL", "http://localhost:9999/")
    client = TaskClient()
    assert client.base_url == "http://localhost:9999"
    assert client._headers["x-api-key"] == "env-key"
    explicit = TaskClient(api_key="arg-key", base_url="https://other.example")
    assert explicit._headers["x-api-key"] == "arg-key"
    assert explicit.base_url == "https://other.example"


def test_default_base_url_is_the_public_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARALLEL_BASE_URL", raising=False)
    assert TaskClient(api_key="k").base_url == "https://api.parallel.ai"


def test_missing_api_key_explains_both_ways_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARALLEL_API_KEY", raising=False)
    with pytest.raises(ConfigurationError) as info:
        TaskClient()
    assert "PARALLEL_API_KEY" in str(info.value)
    assert "emulator" in str(info.value)


def test_bad_base_url_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="not an http"):
        TaskClient(api_key="k", base_url="api.parallel.ai")


def test_repr_never_shows_the_key() -> None:
    client = TaskClient(api_key="sk-secret-key-1234")
    assert "sk-secret" not in repr(client)
    assert "1234" not in repr(client)


async def test_the_key_never_appears_in_errors(kind: str) -> None:
    api = FakeAPI()
    api.on(
        "POST",
        RUNS,
        httpx.Response(401, json=error_body("Bad key sk-secret-key-1234 supplied")),
    )
    client = make(kind, api)
    with pytest.raises(AuthenticationError) as info:
        await call(client, "create_run", "q")
    assert "sk-secret-key-1234" not in str(info.value)
    assert "<hidden>" in str(info.value)
    assert "ref-123" in str(info.value)
    assert api.counts[RUNS] == 1


# --- Create ------------------------------------------------------------------------------------


class Founding(BaseModel):
    founding_date: str = Field(description="MM-YYYY")


async def test_create_sends_every_documented_field(kind: str) -> None:
    api = FakeAPI()
    api.on("POST", RUNS, httpx.Response(202, json=run_json(metadata={"k": "v"})))
    client = make(kind, api)
    run = await call(
        client,
        "create_run",
        {"company": "UN"},
        output=Founding,
        processor="core",
        metadata={"k": "v"},
        source_policy={"include_domains": ["un.org"]},
        previous_interaction_id="trun_prev",
        mcp_servers=[{"type": "url", "url": "https://mcp.example", "name": "m"}],
        enable_events=True,
        webhook={"url": "https://hook.example", "event_types": ["task_run.status"]},
        advanced_settings={"location": "us"},
        memory_scope_key="team",
        betas=["events-sse-2025-07-24", "webhook-2025-08-12"],
        extra_body={"future_field": 1},
    )
    assert run.run_id == "trun_1" and run.status == "queued" and run.is_active
    request = api.requests[0]
    body = json.loads(request.content)
    assert body["input"] == {"company": "UN"}
    assert body["processor"] == "core"
    schema = body["task_spec"]["output_schema"]
    assert schema["type"] == "json"
    assert schema["json_schema"]["additionalProperties"] is False
    for name in (
        "metadata",
        "source_policy",
        "previous_interaction_id",
        "mcp_servers",
        "enable_events",
        "webhook",
        "advanced_settings",
        "memory_scope_key",
    ):
        assert name in body, name
    assert body["future_field"] == 1
    assert request.headers["parallel-beta"] == "events-sse-2025-07-24,webhook-2025-08-12"
    assert request.headers["x-api-key"] == "sk-secret-key-1234"


async def test_create_omits_unset_fields_and_defaults_to_an_auto_schema(kind: str) -> None:
    api = FakeAPI()
    api.on("POST", RUNS, httpx.Response(202, json=run_json()))
    await call(make(kind, api), "create_run", "What is the UN?")
    body = json.loads(api.requests[0].content)
    assert body == {"input": "What is the UN?", "processor": "base"}
    assert "parallel-beta" not in api.requests[0].headers


async def test_bad_input_fails_locally_before_any_request(kind: str) -> None:
    api = FakeAPI()
    client = make(kind, api)
    with pytest.raises(InvalidInputError, match="longer than 16"):
        await call(client, "create_run", "q", metadata={"a_very_long_metadata_key": "v"})
    with pytest.raises(InvalidInputError, match="too large"):
        await call(client, "create_run", "x" * 30_000)
    with pytest.raises(InvalidInputError, match="at most 200"):
        await call(
            client,
            "create_run",
            "q",
            source_policy={"include_domains": [f"d{i}.com" for i in range(201)]},
        )
    with pytest.raises(SchemaError):
        await call(
            client,
            "create_run",
            "q",
            task_spec={"output_schema": {"type": "json", "json_schema": {"type": "string"}}},
        )
    with pytest.raises(InvalidInputError):
        await call(client, "create_run", "")
    assert api.requests == []


# --- The never-pay-twice create policy ------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.Response(429, headers={"retry-after-ms": "5"}, json=error_body("Too many")),
        httpx.Response(503, headers={"retry-after": "0"}, json=error_body("Busy")),
    ],
    ids=["refused", "connect-timeout", "429", "503-retry-after"],
)
async def test_create_is_retried_when_the_server_cannot_have_accepted_it(
    kind: str, failure: Any
) -> None:
    api = FakeAPI()
    api.on("POST", RUNS, failure, httpx.Response(202, json=run_json()))
    run = await call(make(kind, api), "create_run", "q")
    assert run.run_id == "trun_1"
    assert api.counts[RUNS] == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected without sending a response"),
        httpx.ReadError("connection reset"),
        httpx.Response(500, json=error_body("Internal error")),
        httpx.Response(502, text="Bad gateway"),
        httpx.Response(504, text="Gateway timeout"),
        httpx.Response(503, text="Unavailable"),
        httpx.Response(408, json=error_body("Timeout")),
    ],
    ids=["read-timeout", "disconnect", "reset", "500", "502", "504", "503-bare", "408"],
)
async def test_create_is_never_retried_after_an_ambiguous_failure(kind: str, failure: Any) -> None:
    api = FakeAPI()
    api.on("POST", RUNS, failure, httpx.Response(202, json=run_json()))
    with pytest.raises(RunMayExistError) as info:
        await call(make(kind, api), "create_run", "q")
    assert api.counts[RUNS] == 1
    assert "may have" in str(info.value) and "not retried" in str(info.value)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthenticationError),
        (402, PaymentRequiredError),
        (403, PermissionDeniedError),
        (422, UnprocessableEntityError),
    ],
)
async def test_client_errors_are_not_retried(kind: str, status: int, error: type) -> None:
    api = FakeAPI()
    detail = {"loc": ["body", "processor"], "msg": "bad"} if status == 422 else None
    api.on("POST", RUNS, httpx.Response(status, json=error_body("No", "ref-9", detail)))
    with pytest.raises(error) as info:
        await call(make(kind, api), "create_run", "q")
    assert api.counts[RUNS] == 1
    assert info.value.status_code == status
    assert info.value.ref_id == "ref-9"
    if status == 422:
        assert info.value.detail == detail
        assert "processor" in str(info.value)


async def test_a_create_refused_until_retries_run_out_is_not_called_ambiguous(kind: str) -> None:
    api = FakeAPI()
    api.on("POST", RUNS, httpx.Response(503, headers={"retry-after": "0"}, json=error_body("Busy")))
    with pytest.raises(InternalServerError) as info:
        await call(make(kind, api), "create_run", "q")
    assert not isinstance(info.value, RunMayExistError)
    assert api.counts[RUNS] == FAST.max_retries + 1


async def test_rate_limit_after_all_retries_reports_retry_after(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", r"/v1/tasks/runs/[^/]+", httpx.Response(429, headers={"retry-after": "0.001"}))
    with pytest.raises(RateLimitError) as info:
        await call(make(kind, api), "get_run", "trun_1")
    assert api.counts[r"/v1/tasks/runs/[^/]+"] == FAST.max_retries + 1
    assert info.value.retry_after == pytest.approx(0.001)


async def test_a_long_retry_after_is_not_slept_through(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", r"/v1/tasks/runs/[^/]+", httpx.Response(429, headers={"retry-after": "3600"}))
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        await call(make(kind, api), "get_run", "trun_1")
    assert time.monotonic() - started < 1
    assert info.value.retry_after == 3600


async def test_retry_after_is_honoured(kind: str) -> None:
    api = FakeAPI()
    api.on(
        "GET",
        r"/v1/tasks/runs/[^/]+",
        httpx.Response(503, headers={"retry-after-ms": "150"}),
        httpx.Response(200, json=run_json(status="running")),
    )
    started = time.monotonic()
    run = await call(make(kind, api), "get_run", "trun_1")
    assert run.status == "running"
    assert time.monotonic() - started >= 0.15


async def test_reads_survive_connection_errors_and_5xx(kind: str) -> None:
    api = FakeAPI()
    api.on(
        "GET",
        r"/v1/tasks/runs/[^/]+",
        httpx.ConnectError("refused"),
        httpx.Response(502),
        httpx.ReadError("reset"),
        httpx.Response(200, json=run_json(status="running")),
    )
    run = await call(make(kind, api), "get_run", "trun_1")
    assert run.status == "running"
    assert api.counts[r"/v1/tasks/runs/[^/]+"] == 4


async def test_persistent_connection_failure_becomes_an_actionable_error(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", r"/v1/tasks/runs/[^/]+", httpx.ConnectError("refused"))
    with pytest.raises(APIConnectionError) as info:
        await call(make(kind, api), "get_run", "trun_1")
    assert "PARALLEL_BASE_URL" in str(info.value)
    assert info.value.run_id == "trun_1"


async def test_server_error_after_retries(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", r"/v1/tasks/groups/[^/]+", httpx.Response(500, json=error_body("boom", "r-5")))
    with pytest.raises(InternalServerError) as info:
        await call(make(kind, api), "get_group", "tgrp_1")
    assert "r-5" in str(info.value) and "4 attempts" in str(info.value)


# --- Retrieve, input, result --------------------------------------------------------------------


async def test_retrieve_and_input(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", r"/v1/tasks/runs/trun_1", httpx.Response(200, json=run_json(status="running")))
    api.on(
        "GET",
        r"/v1/tasks/runs/trun_1/input",
        httpx.Response(200, json={"input": "q", "processor": "base"}),
    )
    client = make(kind, api)
    assert (await call(client, "get_run", "trun_1")).status == "running"
    assert (await call(client, "get_run_input", "trun_1")) == {"input": "q", "processor": "base"}


async def test_unknown_run_is_not_found(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", r"/v1/tasks/runs/nope", httpx.Response(404, json=error_body("Run id not found")))
    with pytest.raises(NotFoundError) as info:
        await call(make(kind, api), "get_run", "nope")
    assert info.value.run_id == "nope"
    assert "check the id" in str(info.value)


async def test_ids_are_escaped_in_paths(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", r".*", httpx.Response(200, json=run_json()))
    await call(make(kind, api), "get_run", "a/b?c")
    assert api.requests[0].url.raw_path == b"/v1/tasks/runs/a%2Fb%3Fc"


async def test_result_is_one_hold(kind: str) -> None:
    api = FakeAPI()
    api.on(
        "GET",
        RESULT,
        httpx.Response(408, json=error_body("Request timed out; run still active")),
        httpx.Response(200, json=text_result()),
    )
    client = make(kind, api, result_hold=30)
    assert await call(client, "result", "trun_1", timeout=5) is None
    request = api.requests[0]
    assert request.url.params["timeout"] == "5"
    result = await call(client, "result", "trun_1")
    assert result.output.content == "10-1945"


# --- wait ----------------------------------------------------------------------------------------


async def test_wait_loops_through_408s_with_a_read_timeout_above_the_hold(kind: str) -> None:
    api = FakeAPI()
    still = httpx.Response(408, json=error_body("Request timed out; run still active"))
    api.on(
        "GET", RESULT, still, still, still, still, still, httpx.Response(200, json=text_result())
    )
    client = make(kind, api, result_hold=45)
    result = await call(client, "wait", "trun_1")
    assert result.output.content == "10-1945"
    assert api.counts[RESULT] == 6
    for request in api.requests:
        assert request.url.params["timeout"] == "45"
        assert request.extensions["timeout"]["read"] > 45


async def test_wait_survives_a_connection_dropped_mid_hold(kind: str) -> None:
    api = FakeAPI()

    def dropped(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=DroppingStream(b'{"run": {"run_id"'))

    api.on(
        "GET",
        RESULT,
        dropped,
        httpx.RemoteProtocolError("peer closed"),
        httpx.ReadTimeout("timed out"),
        httpx.Response(502),
        httpx.Response(200, json=text_result()),
    )
    result = await call(make(kind, api), "wait", "trun_1")
    assert result.run.status == "completed"
    assert api.counts[RESULT] == 5


async def test_wait_on_a_failed_run_raises_with_the_runs_error(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", RESULT, httpx.Response(404, json=error_body("Run failed or run id not found")))
    failed = run_json(
        status="failed", error={"ref_id": "e-1", "message": "Input too vague", "detail": None}
    )
    api.on("GET", r"/v1/tasks/runs/trun_1", httpx.Response(200, json=failed))
    with pytest.raises(TaskFailedError) as info:
        await call(make(kind, api), "wait", "trun_1")
    assert info.value.run_id == "trun_1"
    assert info.value.error_message == "Input too vague"
    assert "Input too vague" in str(info.value)


async def test_wait_on_an_unknown_run_is_not_found(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", RESULT, httpx.Response(404, json=error_body("Run failed or run id not found")))
    api.on(
        "GET", r"/v1/tasks/runs/trun_x", httpx.Response(404, json=error_body("Run id not found"))
    )
    with pytest.raises(NotFoundError):
        await call(make(kind, api), "wait", "trun_x")


async def test_wait_deadline_raises_timeout_with_the_run_id(kind: str) -> None:
    api = FakeAPI()

    def slow_408(request: httpx.Request) -> httpx.Response:
        time.sleep(0.02)
        return httpx.Response(408, json=error_body("Request timed out; run still active"))

    api.on("GET", RESULT, slow_408)
    started = time.monotonic()
    with pytest.raises(TaskTimeoutError) as info:
        await call(make(kind, api), "wait", "trun_1", timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 1.5
    assert info.value.run_id == "trun_1"
    assert "wait('trun_1')" in str(info.value)
    assert isinstance(info.value, TimeoutError)
    # The hold never asks for more than what is left of the deadline (rounded up).
    assert all(r.url.params["timeout"] == "1" for r in api.requests)


async def test_wait_deadline_stops_retrying_a_failing_server(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", RESULT, httpx.Response(503))
    slow = RetryPolicy(max_retries=10, initial_delay=0.2, max_delay=0.2, jitter=0)
    with pytest.raises(TaskTimeoutError):
        await call(make(kind, api, retry=slow), "wait", "trun_1", timeout=0.3)


# --- run ----------------------------------------------------------------------------------------


class CompanyInput(BaseModel):
    company_name: str
    company_website: str


async def test_run_with_a_task_validates_input_then_parses_output(kind: str) -> None:
    task = Task("founding", "Find the founding date.", input=CompanyInput, output=Founding)
    api = FakeAPI()
    api.on("POST", RUNS, httpx.Response(202, json=run_json()))
    result_json = text_result()
    result_json["output"] = {
        "type": "json",
        "content": {"founding_date": "10-1945"},
        "basis": [{"field": "founding_date", "citations": [], "reasoning": "r"}],
    }
    api.on("GET", RESULT, httpx.Response(200, json=result_json))
    client = make(kind, api)
    with pytest.raises(InvalidInputError, match="company_website"):
        await call(client, "run", task, {"company_name": "UN"})
    assert api.requests == []
    result = await call(
        client, "run", task, CompanyInput(company_name="UN", company_website="un.org")
    )
    assert isinstance(result.parsed, Founding)
    assert result.parsed.founding_date == "10-1945"
    body = json.loads(api.requests[0].content)
    assert body["input"] == {"company_name": "UN", "company_website": "un.org"}
    assert body["task_spec"] == task.spec
    assert body["processor"] == "base"


async def test_run_timeout_hands_back_the_run_id(kind: str) -> None:
    api = FakeAPI()
    api.on("POST", RUNS, httpx.Response(202, json=run_json("trun_long")))
    api.on("GET", RESULT, httpx.Response(408, json=error_body("still active")))
    with pytest.raises(TaskTimeoutError) as info:
        await call(make(kind, api), "run", "q", output="text", timeout=0.05)
    assert info.value.run_id == "trun_long"
    assert api.counts[RUNS] == 1


# --- Events ---------------------------------------------------------------------------------------


def _state(status: str, output: Any = None) -> dict[str, Any]:
    return {
        "type": "task_run.state",
        "event_id": None,
        "run": run_json(status=status),
        "output": output,
    }


def _msg(kind: str, text: str, ts: str) -> dict[str, Any]:
    return {"type": f"task_run.progress_msg.{kind}", "message": text, "timestamp": ts}


async def test_events_are_typed_and_tolerate_comments_ids_and_unknown_types(kind: str) -> None:
    body = (
        b": keep-alive\n\n"
        + sse(_state("running"))
        + b"id: 7\n"
        + sse(_msg("plan", "Plan the search", "t1"))
        + b": keep-alive after an id line\n\n"
        + sse(_msg("tool", "docs-only kind", "t2"))
        + b'event: task_run.brand_new\ndata: {"type": "task_run.brand_new", "x": 1}\n\n'
        + b"event: weird\ndata: not json\n\n"
        + sse(
            {
                "type": "task_run.progress_stats",
                "source_stats": {"num_sources_read": 3},
                "progress_meter": 50,
            }
        )
        + sse(_state("completed", text_result()["output"]))
    )
    api = FakeAPI()
    api.on("GET", r"/v1/tasks/runs/trun_1/events", httpx.Response(200, content=body))
    events = await collect(make(kind, api).events("trun_1"))
    types = [e.type for e in events]
    assert types == [
        "task_run.state",
        "task_run.progress_msg.plan",
        "task_run.progress_msg.tool",
        "task_run.brand_new",
        "weird",
        "task_run.progress_stats",
        "task_run.state",
    ]
    assert isinstance(events[2], ProgressMessageEvent) and events[2].kind == "tool"
    assert isinstance(events[3], UnknownEvent) and events[3].data == {
        "type": "task_run.brand_new",
        "x": 1,
    }
    assert isinstance(events[4], UnknownEvent) and events[4].raw == "not json"
    assert events[-1].output.content == "10-1945"
    assert api.requests[0].headers["accept"] == "text/event-stream"


async def test_events_reconnect_while_the_run_is_active_without_repeating(kind: str) -> None:
    first = sse(_state("running"), _msg("plan", "p", "t1"), _msg("search", "s", "t2"))
    second = sse(
        _state("running"),
        _msg("plan", "p", "t1"),
        _msg("search", "s", "t2"),
        _msg("result", "r", "t3"),
        _state("completed", text_result()["output"]),
    )

    def dropped(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=DroppingStream(first + b'data: {"type": "task_run.pro'))

    api = FakeAPI()
    api.on(
        "GET",
        r"/v1/tasks/runs/trun_1/events",
        dropped,
        httpx.Response(200, content=first),
        httpx.Response(200, content=second),
    )
    events = await collect(make(kind, api).events("trun_1"))
    messages = [e.message for e in events if isinstance(e, ProgressMessageEvent)]
    assert messages == ["p", "s", "r"]
    states = [e.run.status for e in events if isinstance(e, RunStateEvent)]
    assert states == ["running", "completed"]
    assert api.counts[r"/v1/tasks/runs/trun_1/events"] == 3


async def test_events_end_after_a_failed_run(kind: str) -> None:
    failed = run_json(status="failed", error={"ref_id": "x", "message": "nope"})
    body = sse(
        _state("running"),
        {"type": "task_run.state", "run": failed, "output": None},
        {"type": "error", "error": {"ref_id": "x", "message": "nope"}},
    )
    api = FakeAPI()
    api.on("GET", r"/v1/tasks/runs/trun_1/events", httpx.Response(200, content=body))
    events = await collect(make(kind, api).events("trun_1"))
    assert [e.type for e in events] == ["task_run.state", "task_run.state", "error"]
    assert api.counts[r"/v1/tasks/runs/trun_1/events"] == 1


async def test_events_on_a_stream_that_never_delivers_give_up(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", r"/v1/tasks/runs/trun_1/events", httpx.Response(200, content=b": ping\n\n"))
    with pytest.raises(APIConnectionError, match="without sending anything"):
        await collect(make(kind, api).events("trun_1"))


# --- Groups ----------------------------------------------------------------------------------------


def _group_status(active: bool, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "num_task_runs": sum(counts.values()),
        "task_run_status_counts": counts,
        "is_active": active,
        "status_message": None,
        "modified_at": None,
    }


async def test_add_runs_splits_into_requests_of_at_most_1000(kind: str) -> None:
    api = FakeAPI()
    calls = iter(range(100))

    def accept(request: httpx.Request) -> httpx.Response:
        n = next(calls)
        inputs = json.loads(request.content)["inputs"]
        ids = [f"trun_{n}_{i}" for i in range(len(inputs))]
        return httpx.Response(
            200,
            json={
                "status": _group_status(True, {"queued": len(inputs)}),
                "run_ids": ids,
                "run_cursor": None if n == 0 else f"c{n}",
                "event_cursor": None,
            },
        )

    api.on("POST", r"/v1/tasks/groups/tgrp_1/runs", accept)
    consumed = []

    def inputs() -> Any:
        for i in range(2500):
            consumed.append(i)
            yield f"company {i}"

    response = await call(
        make(kind, api), "add_runs", "tgrp_1", inputs(), output="Founding date", processor="lite"
    )
    sizes = [len(json.loads(r.content)["inputs"]) for r in api.requests]
    assert sizes == [1000, 1000, 500]
    assert len(response.run_ids) == 2500 and response.run_ids[0] == "trun_0_0"
    body = json.loads(api.requests[0].content)
    assert body["inputs"][0] == {"input": "company 0", "processor": "lite"}
    assert body["default_task_spec"]["output_schema"]["type"] == "text"


async def test_add_runs_reports_runs_created_before_an_ambiguous_failure(kind: str) -> None:
    api = FakeAPI()
    ok = httpx.Response(200, json={"status": _group_status(True, {}), "run_ids": ["trun_a"] * 1000})
    api.on("POST", r"/v1/tasks/groups/tgrp_1/runs", ok, httpx.Response(502))
    with pytest.raises(RunMayExistError) as info:
        await call(make(kind, api), "add_runs", "tgrp_1", [{"input": f"r{i}"} for i in range(1500)])
    assert len(info.value.created_run_ids) == 1000
    assert api.counts[r"/v1/tasks/groups/tgrp_1/runs"] == 2


async def test_group_events_resume_from_the_last_event_id(kind: str) -> None:
    first = (
        sse(
            {
                "type": "task_group_status",
                "event_id": "e1",
                "status": _group_status(True, {"running": 2}),
            },
            {"type": "task_run.state", "event_id": "e2", "run": run_json("trun_a", "completed")},
        )
        .replace(b"event: task_group_status", b"id: e1\nevent: task_group_status")
        .replace(b"event: task_run.state", b"id: e2\nevent: task_run.state")
    )
    second = b"id: e3\n" + sse(
        {
            "type": "task_group_status",
            "event_id": "e3",
            "status": _group_status(False, {"completed": 2}),
        }
    )

    def dropped(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=DroppingStream(first))

    api = FakeAPI()
    api.on("GET", r"/v1/tasks/groups/tgrp_1/events", dropped, httpx.Response(200, content=second))
    events = await collect(make(kind, api).group_events("tgrp_1"))
    assert [e.event_id for e in events] == ["e1", "e2", "e3"]
    assert isinstance(events[-1], TaskGroupStatusEvent) and not events[-1].status.is_active
    assert "last_event_id" not in api.requests[0].url.params
    assert api.requests[1].url.params["last_event_id"] == "e2"


async def test_group_results_yield_every_outcome_with_bounded_concurrency(kind: str) -> None:
    n = 30
    events = [
        {
            "type": "task_group_status",
            "event_id": "s0",
            "status": _group_status(True, {"running": n}),
        }
    ]
    for i in range(n):
        status = "failed" if i == 7 else "completed"
        extra = {"error": {"ref_id": "r", "message": "bad input"}} if status == "failed" else {}
        events.append(
            {
                "type": "task_run.state",
                "event_id": f"e{i}",
                "run": run_json(f"trun_{i}", status, **extra),
            }
        )
    events.append(
        {
            "type": "task_group_status",
            "event_id": "s1",
            "status": _group_status(False, {"completed": n - 1, "failed": 1}),
        }
    )
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def result(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.01)
        with lock:
            in_flight -= 1
        run_id = request.url.path.split("/")[4]
        return httpx.Response(200, json=text_result(run_id, content=f"answer {run_id}"))

    api = FakeAPI()
    group = {"taskgroup_id": "tgrp_1", "status": _group_status(True, {"running": n})}
    api.on("GET", r"/v1/tasks/groups/tgrp_1", httpx.Response(200, json=group))
    api.on("GET", r"/v1/tasks/groups/tgrp_1/events", httpx.Response(200, content=sse(*events)))
    api.on("GET", r"/v1/tasks/groups/tgrp_1/runs", httpx.Response(200, content=sse(*events[1:3])))
    api.on("GET", RESULT, result)
    client = make(kind, api)
    outcomes = await collect(client.group_results("tgrp_1", concurrency=4, skip=["trun_0"]))
    by_id = {o.run_id: o for o in outcomes}
    assert len(outcomes) == n - 1 and "trun_0" not in by_id
    assert by_id["trun_3"].result.parsed == "answer trun_3"
    assert not by_id["trun_7"].ok and isinstance(by_id["trun_7"].error, TaskFailedError)
    assert api.counts[RESULT] == n - 2
    snapshots = [r for r in api.requests if r.url.path.endswith("/runs")]
    assert [r.url.params["include_output"] for r in snapshots] == ["true"]
    if kind == "sync":  # the async client runs the blocking mock one request at a time
        assert 1 < peak <= 4


async def test_wait_gives_up_after_an_outage_longer_than_its_patience(kind: str) -> None:
    api = FakeAPI()
    api.on(
        "GET", RESULT, httpx.Response(408, json=error_body("still")), httpx.ConnectError("refused")
    )
    impatient = RetryPolicy(max_retries=1, initial_delay=0.01, max_delay=0.01, outage_patience=0.1)
    started = time.monotonic()
    with pytest.raises(APIConnectionError) as info:
        await call(make(kind, api, retry=impatient), "wait", "trun_1")
    assert time.monotonic() - started >= 0.1
    assert api.counts[RESULT] > 2  # more than max_retries: the outage budget is time
    assert info.value.run_id == "trun_1"


# --- Progress while waiting -------------------------------------------------------------------


async def test_wait_with_progress_reports_events_and_heartbeats(kind: str) -> None:
    body = sse(_state("running"), _msg("plan", "Planning", "t1"), _msg("search", "Searching", "t2"))
    still = httpx.Response(408, json=error_body("still active"))

    def slow_408(request: httpx.Request) -> Any:
        if kind == "sync":
            time.sleep(0.05)
            return still

        async def later() -> httpx.Response:
            await asyncio.sleep(0.05)  # a real hold lets other tasks run; so must the fake
            return still

        return later()

    api = FakeAPI()
    api.on("GET", r"/v1/tasks/runs/trun_1/events", httpx.Response(200, content=body))
    api.on("GET", RESULT, slow_408, slow_408, slow_408, httpx.Response(200, json=text_result()))
    seen: list[Any] = []
    client = make(kind, api)
    result = await call(client, "wait_with_progress", "trun_1", seen.append, heartbeat=0.05)
    assert result.output.content == "10-1945"
    messages = [p.message for p in seen if p.message]
    assert "Searching" in messages and seen[-1].run_id == "trun_1"
    assert len(seen) >= 2


async def test_wait_with_progress_survives_a_missing_event_stream(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", r"/v1/tasks/runs/trun_1/events", httpx.Response(404, json=error_body("nope")))
    api.on(
        "GET",
        RESULT,
        httpx.Response(408, json=error_body("still")),
        httpx.Response(200, json=text_result()),
    )
    seen: list[Any] = []
    result = await call(
        make(kind, api), "wait_with_progress", "trun_1", seen.append, heartbeat=0.01
    )
    assert result.run.status == "completed"


async def test_group_results_of_an_idle_group_come_from_one_snapshot(kind: str) -> None:
    api = FakeAPI()
    group = {"taskgroup_id": "tgrp_1", "status": _group_status(False, {"completed": 3})}
    api.on("GET", r"/v1/tasks/groups/tgrp_1", httpx.Response(200, json=group))
    snapshot = [
        {
            "type": "task_run.state",
            "event_id": str(i),
            "run": run_json(f"trun_{i}", "completed"),
            "output": text_result(f"trun_{i}", f"answer {i}")["output"],
        }
        for i in range(3)
    ]
    api.on("GET", r"/v1/tasks/groups/tgrp_1/runs", httpx.Response(200, content=sse(*snapshot)))
    outcomes = await collect(make(kind, api).group_results("tgrp_1"))
    assert sorted(o.result.parsed for o in outcomes) == ["answer 0", "answer 1", "answer 2"]
    assert api.counts[RESULT] == 0
    assert api.counts[r"/v1/tasks/groups/tgrp_1/events"] == 0


def test_max_retries_keeps_the_rest_of_a_given_policy() -> None:
    policy = RetryPolicy(initial_delay=0.2, outage_patience=7.0)
    client = TaskClient(api_key="k", retry=policy, max_retries=9)
    assert client.retry.max_retries == 9
    assert client.retry.outage_patience == 7.0 and client.retry.initial_delay == 0.2


# --- Guidance for agents ------------------------------------------------------------------------


def test_agent_error_text_points_at_the_result_tool_and_never_says_retry_for_money_errors() -> None:
    from parallel_tools import TaskRun, TaskTimeoutError, agent_error_text

    timeout = TaskTimeoutError("still running", run_id="trun_9", waited=45.2)
    text = agent_error_text(timeout, result_tool="get_result")
    assert "Call get_result with run_id 'trun_9' later" in text
    assert "do not start the same research again" in text
    maybe = RunMayExistError("boom", created_run_ids=["trun_a"])
    text = agent_error_text(maybe, tool="research", reuses_runs=True)
    assert "not retried, so as not to pay twice" in text and "trun_a" in text
    assert "Calling research again with the same arguments picks up the run" in text
    failed = TaskFailedError(
        "Run trun_1 failed: blocked.",
        run=TaskRun(run_id="trun_1", status="failed", is_active=False),
    )
    assert agent_error_text(failed).startswith("The research run failed. Run trun_1 failed")


# --- No hot loops, no endless retries, nothing left running -----------------------------------


async def test_immediate_408s_are_backed_off_not_hammered(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", RESULT, httpx.Response(408, json=error_body("still active")))
    slow = RetryPolicy(max_retries=3, initial_delay=0.05, max_delay=0.1, jitter=0)
    with pytest.raises(TaskTimeoutError):
        await call(make(kind, api, retry=slow), "wait", "trun_1", timeout=0.6)
    assert api.counts[RESULT] < 20  # without backoff: thousands in 0.6 s


async def test_retry_after_zero_still_gets_backoff(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", RESULT, httpx.Response(503, headers={"retry-after": "0"}))
    slow = RetryPolicy(max_retries=3, initial_delay=0.05, max_delay=0.1, outage_patience=0.5)
    with pytest.raises(InternalServerError):
        await call(make(kind, api, retry=slow), "wait", "trun_1")
    assert api.counts[RESULT] < 20


async def test_a_stream_that_only_reports_errors_is_not_reopened_in_a_loop(kind: str) -> None:
    body = sse(_state("running"), {"type": "error", "error": {"ref_id": "x", "message": "oops"}})
    api = FakeAPI()
    api.on("GET", r"/v1/tasks/runs/trun_1/events", httpx.Response(200, content=body))
    slow = RetryPolicy(max_retries=3, initial_delay=0.05, max_delay=0.1, jitter=0)
    with pytest.raises(APIConnectionError):
        await collect(make(kind, api, retry=slow).events("trun_1"))
    # The first connection brought a new state; then max_retries + 1 reopenings with nothing new.
    assert api.counts[r"/v1/tasks/runs/trun_1/events"] == 5


async def test_group_streams_resume_from_the_json_event_id(kind: str) -> None:
    # No SSE id: lines, as Parallel sends them: the cursor is the JSON event_id.
    first = sse(
        {
            "type": "task_group_status",
            "event_id": "7",
            "status": _group_status(True, {"running": 1}),
        },
    )
    second = sse(
        {
            "type": "task_group_status",
            "event_id": "8",
            "status": _group_status(False, {"completed": 1}),
        },
    )

    def dropped(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=DroppingStream(first))

    api = FakeAPI()
    api.on("GET", r"/v1/tasks/groups/tgrp_1/events", dropped, httpx.Response(200, content=second))
    events = await collect(make(kind, api).group_events("tgrp_1"))
    assert [e.event_id for e in events] == ["7", "8"]
    assert api.requests[1].url.params["last_event_id"] == "7"


async def test_an_unreadable_success_body_is_an_api_error_with_the_run_id(kind: str) -> None:
    api = FakeAPI()
    api.on("GET", RESULT, httpx.Response(200, json={"run": {"run_id": "x"}}))
    with pytest.raises(APIError) as info:
        await call(make(kind, api), "wait", "trun_1")
    assert info.value.run_id == "trun_1" and "cannot read" in str(info.value)


async def test_a_failing_progress_callback_ends_the_wait(kind: str) -> None:
    api = FakeAPI()
    api.on(
        "GET", r"/v1/tasks/runs/trun_1/events", httpx.Response(200, content=sse(_state("running")))
    )

    def slow_408(request: httpx.Request) -> Any:
        if kind == "sync":
            time.sleep(0.02)
            return httpx.Response(408, json=error_body("still"))

        async def later() -> httpx.Response:
            await asyncio.sleep(0.02)
            return httpx.Response(408, json=error_body("still"))

        return later()

    api.on("GET", RESULT, slow_408)

    def broken(progress: Any) -> None:
        raise RuntimeError("callback bug")

    before = threading.active_count()
    with pytest.raises(RuntimeError, match="callback bug"):
        await call(make(kind, api), "wait_with_progress", "trun_1", broken, heartbeat=0.05)
    if kind == "sync":
        deadline = time.monotonic() + 3
        while threading.active_count() > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() <= before  # the helper threads let go


def test_holds_are_shortened_when_something_keeps_cutting_them() -> None:
    from parallel_tools._base import _Holds

    holds = _Holds(60)
    holds.dropped(0.5)  # a quick failure says nothing about holds
    assert holds.length(None) == 60
    holds.dropped(31.0)  # cut after 31 s: ask for less than that
    assert holds.length(None) == 15
    assert holds.length(time.monotonic() + 3.2) == 4


@pytest.mark.parametrize("key", ["sk-live\n123", "sk live", "sk-clé"])
def test_keys_an_http_header_cannot_carry_are_refused_without_echoing_them(key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        TaskClient(api_key=key)
    assert key not in str(info.value) and "cannot be sent" in str(info.value)


async def test_a_bad_item_late_in_a_list_stops_add_runs_before_anything_is_sent(kind: str) -> None:
    api = FakeAPI()
    api.on("POST", r"/v1/tasks/groups/tgrp_1/runs", httpx.Response(200, json={"run_ids": ["x"]}))
    runs = [f"q{i}" for i in range(1500)] + [""]
    with pytest.raises(InvalidInputError):
        await call(make(kind, api), "add_runs", "tgrp_1", runs)
    assert api.requests == []


async def test_a_bad_item_in_a_lazy_stream_reports_the_runs_already_created(kind: str) -> None:
    api = FakeAPI()
    ok = httpx.Response(200, json={"status": _group_status(True, {}), "run_ids": ["trun_a"] * 1000})
    api.on("POST", r"/v1/tasks/groups/tgrp_1/runs", ok)
    runs = (f"q{i}" if i < 1200 else "" for i in range(1300))
    with pytest.raises(InvalidInputError) as info:
        await call(make(kind, api), "add_runs", "tgrp_1", runs)
    assert len(info.value.created_run_ids) == 1000
    assert "do not send them again" in str(info.value)


async def test_an_api_that_was_never_reachable_fails_fast_instead_of_waiting_out_an_outage(
    kind: str,
) -> None:
    api = FakeAPI()
    api.on("GET", RESULT, httpx.ConnectError("refused"))
    started = time.monotonic()
    with pytest.raises(APIConnectionError):
        await call(make(kind, api), "wait", "trun_1")
    assert api.counts[RESULT] == FAST.max_retries + 1
    assert time.monotonic() - started < 2
