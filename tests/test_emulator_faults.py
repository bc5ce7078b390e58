"""Fault injection and request counting, from Python, over HTTP, and in-process via ASGI."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from parallel_tools.emulator import ENDPOINTS, Emulator, EmulatorServer, Fault, create_app

RUN = {"input": "x", "processor": "lite"}


def new_run(api: httpx.Client) -> str:
    response = api.post("/v1/tasks/runs", json=RUN)
    assert response.status_code == 202
    run_id: str = response.json()["run_id"]
    return run_id


# --- the fault language -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "create:429:times=2:retry_after=1",
            Fault(endpoint="create", status=429, times=2, retry_after=1.0),
        ),
        (
            "result:503:retry_after_ms=250:message=Busy",
            Fault(endpoint="result", status=503, retry_after_ms=250.0, message="Busy"),
        ),
        ("create:500:after_accept", Fault(endpoint="create", status=500, after_accept=True)),
        ("create:drop_before", Fault(endpoint="create", drop="before")),
        (
            "create:drop_before:after_accept",
            Fault(endpoint="create", drop="before", after_accept=True),
        ),
        ("events:drop_mid", Fault(endpoint="events", drop="mid")),
        ("retrieve:delay=0.5", Fault(endpoint="retrieve", delay=0.5)),
        ("*:502:delay=0.1:times=0", Fault(endpoint="*", status=502, delay=0.1, times=None)),
        ("create:fail_run", Fault(endpoint="create", fail_run="")),
        (
            "group_add_runs:fail_run=Upstream timeout:times=3",
            Fault(endpoint="group_add_runs", fail_run="Upstream timeout", times=3),
        ),
        (
            "result:hold_408:match=trun_abc",
            Fault(endpoint="result", hold_408=True, match="trun_abc"),
        ),
        (
            '{"endpoint": "create", "fail_run": "Error: with a colon"}',
            Fault(endpoint="create", fail_run="Error: with a colon"),
        ),
    ],
)
def test_fault_text_form(spec: str, expected: Fault) -> None:
    fault = Fault.parse(spec)
    assert fault == expected
    assert Fault.from_dict(fault.to_dict()) == fault


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("create", "ENDPOINT:ACTION"),
        ("nowhere:429", "Unknown endpoint"),
        ("create:200", "400-599"),
        ("create:429:drop_mid", "does one thing"),
        ("retrieve:500:after_accept", "after_accept needs"),
        ("create:hold_408", "hold_408 applies"),
        ("retrieve:fail_run", "fail_run applies"),
        ("create:delay=abc", "Cannot read fault"),
        ("create:429:times=-1", "times"),
        ("create:frobnicate", "unknown part"),
        ("create:drop_before:retry_after=1", "only go with a status"),
        ('{"endpoint": "create", "nope": 1}', "Unknown fault field"),
        ("{not json", "Fault JSON"),
    ],
)
def test_bad_fault_specs_say_what_is_wrong(spec: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Fault.parse(spec)


def test_endpoint_names_are_documented() -> None:
    import parallel_tools.emulator as package

    assert package.__doc__ is not None
    for name in ENDPOINTS:
        assert f"``{name}``" in package.__doc__


# --- faults at work -----------------------------------------------------------------------------


def test_status_faults_answer_error_responses_with_retry_headers(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    emulator = parallel_emulator.emulator
    run_id = new_run(api)
    emulator.add_fault(Fault(endpoint="result", status=503, retry_after_ms=250))
    emulator.add_fault(Fault(endpoint="retrieve", status=429, retry_after=2, message="Slow down"))
    emulator.add_fault(Fault(endpoint="create", status=402))
    got = api.get(f"/v1/tasks/runs/{run_id}/result")
    assert got.status_code == 503
    assert got.headers["retry-after-ms"] == "250"
    assert got.json()["error"]["message"] == "Service unavailable"
    limited = api.get(f"/v1/tasks/runs/{run_id}")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
    assert limited.json()["error"]["message"] == "Slow down"
    paid = api.post("/v1/tasks/runs", json=RUN)
    assert paid.status_code == 402
    assert paid.json()["error"]["message"] == "Payment required: insufficient credit in account"
    # Each fault fired once; everything works again.
    assert api.get(f"/v1/tasks/runs/{run_id}/result").status_code == 200
    assert emulator.faults == []


def test_faults_fire_before_authentication(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    parallel_emulator.emulator.add_fault("create:503")
    for expected in (503, 401):
        request = api.build_request("POST", "/v1/tasks/runs", json=RUN)
        del request.headers["x-api-key"]
        assert api.send(request).status_code == expected


def test_times_counts_requests_and_zero_means_forever(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    emulator = parallel_emulator.emulator
    run_id = new_run(api)
    emulator.add_fault(Fault(endpoint="retrieve", status=500, times=2))
    statuses = [api.get(f"/v1/tasks/runs/{run_id}").status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    emulator.add_fault(Fault(endpoint="input", status=502, times=0))
    assert all(api.get(f"/v1/tasks/runs/{run_id}/input").status_code == 502 for _ in range(5))
    emulator.clear_faults()
    assert api.get(f"/v1/tasks/runs/{run_id}/input").status_code == 200


def test_match_limits_a_fault_to_one_run(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    first, second = new_run(api), new_run(api)
    parallel_emulator.emulator.add_fault(Fault(endpoint="*", status=500, match=second, times=0))
    assert api.get(f"/v1/tasks/runs/{first}").status_code == 200
    assert api.get(f"/v1/tasks/runs/{second}").status_code == 500
    assert api.get(f"/v1/tasks/runs/{second}/result").status_code == 500
    # On creating endpoints, match looks for the text in the request body.
    parallel_emulator.emulator.add_fault(Fault(endpoint="create", status=429, match="Globex"))
    assert api.post("/v1/tasks/runs", json=RUN).status_code == 202
    assert api.post("/v1/tasks/runs", json={**RUN, "input": "Globex"}).status_code == 429


def test_create_failing_before_accept_stores_nothing(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    emulator = parallel_emulator.emulator
    emulator.add_fault(Fault(endpoint="create", status=500))
    assert api.post("/v1/tasks/runs", json=RUN).status_code == 500
    emulator.add_fault(Fault(endpoint="create", drop="before"))
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/v1/tasks/runs", json=RUN)
    assert len(emulator.runs) == 0
    assert emulator.request_counts["create"] == 2


def test_create_failing_after_accept_stores_the_run(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    """The ambiguous failure a client must not retry blindly: the run exists."""
    emulator = parallel_emulator.emulator
    emulator.add_fault(Fault(endpoint="create", status=502, after_accept=True))
    assert api.post("/v1/tasks/runs", json=RUN).status_code == 502
    assert len(emulator.runs) == 1
    emulator.add_fault(Fault(endpoint="create", drop="before", after_accept=True))
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/v1/tasks/runs", json=RUN)
    assert len(emulator.runs) == 2
    emulator.add_fault(Fault(endpoint="create", drop="mid"))
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/v1/tasks/runs", json=RUN)
    assert len(emulator.runs) == 3
    assert emulator.request_counts["create"] == 3
    # The stored runs are real runs.
    for run_id in emulator.runs:
        assert api.get(f"/v1/tasks/runs/{run_id}/result").status_code == 200


def test_group_faults_after_accept(api: httpx.Client, parallel_emulator: EmulatorServer) -> None:
    emulator = parallel_emulator.emulator
    emulator.add_fault(Fault(endpoint="group_create", status=503, after_accept=True))
    assert api.post("/v1/tasks/groups", json={}).status_code == 503
    (group_id,) = emulator.groups
    emulator.add_fault(Fault(endpoint="group_add_runs", drop="before", after_accept=True))
    with pytest.raises(httpx.RemoteProtocolError):
        api.post(f"/v1/tasks/groups/{group_id}/runs", json={"inputs": [RUN, RUN]})
    assert len(emulator.groups[group_id].run_ids) == 2


def test_drop_mid_sends_part_of_a_response(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    run_id = new_run(api)
    parallel_emulator.emulator.add_fault(Fault(endpoint="retrieve", drop="mid"))
    with api.stream("GET", f"/v1/tasks/runs/{run_id}") as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()
    parallel_emulator.emulator.add_fault(Fault(endpoint="events", drop="mid"))
    lines: list[str] = []
    with (
        api.stream("GET", f"/v1/tasks/runs/{run_id}/events") as response,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        lines.extend(response.iter_lines())
    assert lines[0] == "event: task_run.state"
    assert not any("progress" in line for line in lines)
    assert api.get(f"/v1/tasks/runs/{run_id}").status_code == 200


def test_delay_answers_late_but_correctly(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    run_id = new_run(api)
    parallel_emulator.emulator.add_fault("retrieve:delay=0.3")
    started = time.monotonic()
    assert api.get(f"/v1/tasks/runs/{run_id}").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    api.get(f"/v1/tasks/runs/{run_id}")
    assert time.monotonic() - started < 0.3


def test_fail_run_counts_runs(api: httpx.Client, parallel_emulator: EmulatorServer) -> None:
    emulator = parallel_emulator.emulator
    emulator.add_fault(Fault(fail_run="Boom", times=2))
    group = api.post("/v1/tasks/groups", json={}).json()["taskgroup_id"]
    added = api.post(f"/v1/tasks/groups/{group}/runs", json={"inputs": [RUN] * 3}).json()
    single = new_run(api)
    for run_id in [*added["run_ids"], single]:
        api.get(f"/v1/tasks/runs/{run_id}/result", params={"timeout": 30})
    statuses = [
        api.get(f"/v1/tasks/runs/{r}").json()["status"] for r in [*added["run_ids"], single]
    ]
    assert statuses == ["failed", "failed", "completed", "completed"]
    counts = api.get(f"/v1/tasks/groups/{group}").json()["status"]["task_run_status_counts"]
    assert counts == {"failed": 2, "completed": 1}


def test_hold_408_holds_then_times_out_even_when_done(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    emulator = parallel_emulator.emulator
    run_id = new_run(api)
    assert api.get(f"/v1/tasks/runs/{run_id}/result").status_code == 200
    emulator.add_fault(Fault(endpoint="result", hold_408=True, times=2))
    started = time.monotonic()
    held = api.get(f"/v1/tasks/runs/{run_id}/result", params={"timeout": 1})
    assert held.status_code == 408
    assert held.json()["error"]["message"] == "Request timed out; run still active"
    assert time.monotonic() - started >= 1
    emulator.configure(max_result_hold=0.1)
    started = time.monotonic()
    assert api.get(f"/v1/tasks/runs/{run_id}/result").status_code == 408
    assert time.monotonic() - started < 1
    assert api.get(f"/v1/tasks/runs/{run_id}/result").status_code == 200


def test_request_counts_by_endpoint(api: httpx.Client, parallel_emulator: EmulatorServer) -> None:
    run_id = new_run(api)
    base = f"/v1/tasks/runs/{run_id}"
    api.get(base)
    api.get(base + "/input")
    api.get(base + "/result")
    api.get(base + "/events").read()
    api.get(f"/v1beta/tasks/runs/{run_id}/events").read()
    group = api.post("/v1beta/tasks/groups", json={}).json()["taskgroup_id"]
    groups = f"/v1/tasks/groups/{group}"
    added = api.post(groups + "/runs", json={"inputs": [RUN]}).json()
    api.get(groups)
    api.get(groups + "/runs").read()
    api.get(groups + "/events").read()
    api.get(f"{groups}/runs/{added['run_ids'][0]}")
    api.get("/v1/nothing/here")
    api.get("/_emulator/health")  # the control API is not counted
    expected = {name: 1 for name in ENDPOINTS} | {"events": 2, "unknown": 1}
    assert dict(parallel_emulator.emulator.request_counts) == expected
    assert api.get("/_emulator/counts").json() == {"counts": expected}


def test_the_control_api_scripts_a_subprocess_emulator(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    created = api.post("/_emulator/faults", json={"spec": "create:429:times=1:retry_after=1"})
    assert created.status_code == 201
    assert created.json()["faults"][0]["status"] == 429
    assert (
        api.post("/_emulator/faults", json={"endpoint": "retrieve", "status": 500}).status_code
        == 201
    )
    assert [f["endpoint"] for f in api.get("/_emulator/faults").json()["faults"]] == [
        "create",
        "retrieve",
    ]
    assert api.post("/v1/tasks/runs", json=RUN).status_code == 429
    assert api.delete("/_emulator/faults").json() == {"faults": []}
    fixture = {
        "input": "Hooli",
        "output": "Founded in 1998.",
        "basis": [
            {"field": "output", "citations": [], "reasoning": "Known.", "confidence": "high"}
        ],
    }
    assert api.post("/_emulator/fixtures", json=fixture).status_code == 201
    run = api.post(
        "/v1/tasks/runs",
        json={"input": "Hooli", "processor": "lite", "task_spec": {"output_schema": "Founding"}},
    ).json()
    output = api.get(f"/v1/tasks/runs/{run['run_id']}/result").json()["output"]
    assert (output["content"], output["basis"]) == (fixture["output"], fixture["basis"])
    assert api.get("/_emulator/counts").json()["counts"]["create"] == 2
    assert api.post("/_emulator/reset").status_code == 200
    assert api.get("/_emulator/counts").json() == {"counts": {}}
    assert api.get("/_emulator/health").json() == {"status": "ok", "runs": 0, "groups": 0}
    assert parallel_emulator.emulator.faults == []


# --- the ASGI app in-process --------------------------------------------------------------------


async def test_the_asgi_app_works_through_httpx_asgi_transport() -> None:
    emulator = Emulator(time_scale=0)
    transport = httpx.ASGITransport(app=create_app(emulator))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://emulator", headers={"x-api-key": "k"}
    ) as client:
        created = await client.post("/v1/tasks/runs", json=RUN)
        assert created.status_code == 202
        run_id = created.json()["run_id"]
        result = await client.get(f"/v1/tasks/runs/{run_id}/result")
        assert result.status_code == 200
        events = (await client.get(f"/v1/tasks/runs/{run_id}/events")).text
        assert events.startswith("event: task_run.state\n")
        emulator.add_fault(Fault(endpoint="create", drop="before", after_accept=True))
        # Without a real connection to close, the drop surfaces as httpx's own error type.
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/v1/tasks/runs", json=RUN)
        assert len(emulator.runs) == 2


def test_create_app_builds_an_emulator_from_options() -> None:
    app: Any = create_app(time_scale=0, api_keys=["k"])
    assert app.emulator.api_keys == frozenset({"k"})
    assert app.emulator.app is app
    with pytest.raises(TypeError):
        create_app(app.emulator, time_scale=1)
    with pytest.raises(TypeError, match="Unknown emulator option"):
        Emulator().configure(speed=2)
