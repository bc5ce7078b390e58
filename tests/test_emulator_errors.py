"""Bad input gets the documented error, never a 500, and never takes the emulator down."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from parallel_tools.emulator import EmulatorServer

MISSING_RUN = "trun_" + "0" * 32
MISSING_GROUP = "tgrp_" + "0" * 48


def assert_error(response: httpx.Response, status: int, message: str | None = None) -> Any:
    """Check the ErrorResponse shape and return its `detail`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"type", "error"}
    assert body["type"] == "error"
    error = body["error"]
    assert set(error) == {"ref_id", "message", "detail"}
    uuid.UUID(error["ref_id"])
    if message is not None:
        assert error["message"] == message
    return error["detail"]


def assert_fastapi_422(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail and all({"loc", "msg", "type"} <= set(e) for e in detail)
    return list(detail)


@pytest.fixture
def server_survives(parallel_emulator: EmulatorServer, api: httpx.Client) -> Iterator[None]:
    yield
    assert api.get("/_emulator/health").json()["status"] == "ok"
    assert api.post("/v1/tasks/runs", json={"input": "x", "processor": "lite"}).status_code == 202


ENDPOINTS = [
    ("POST", "/v1/tasks/runs"),
    ("GET", f"/v1/tasks/runs/{MISSING_RUN}"),
    ("GET", f"/v1/tasks/runs/{MISSING_RUN}/input"),
    ("GET", f"/v1/tasks/runs/{MISSING_RUN}/result"),
    ("GET", f"/v1/tasks/runs/{MISSING_RUN}/events"),
    ("GET", f"/v1beta/tasks/runs/{MISSING_RUN}/events"),
    ("POST", "/v1/tasks/groups"),
    ("POST", "/v1beta/tasks/groups"),
    ("GET", f"/v1/tasks/groups/{MISSING_GROUP}"),
    ("POST", f"/v1/tasks/groups/{MISSING_GROUP}/runs"),
    ("GET", f"/v1/tasks/groups/{MISSING_GROUP}/runs"),
    ("GET", f"/v1/tasks/groups/{MISSING_GROUP}/events"),
    ("GET", f"/v1/tasks/groups/{MISSING_GROUP}/runs/{MISSING_RUN}"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("key", [None, ""])
def test_every_endpoint_needs_an_api_key(
    api: httpx.Client, method: str, path: str, key: str | None
) -> None:
    request = api.build_request(method, path, json={})
    if key is None:
        del request.headers["x-api-key"]
    else:
        request.headers["x-api-key"] = key
    response = api.send(request)
    assert_error(response, 401, "Unauthorized: invalid or missing credentials")
    assert response.json()["error"]["detail"] is None


@pytest.mark.parallel_emulator(api_keys=["key-one", "key-two"])
def test_configured_keys_are_the_only_ones_accepted(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    body = {"input": "x", "processor": "lite"}
    wrong = api.post("/v1/tasks/runs", json=body, headers={"x-api-key": "sk-secret-9f3"})
    assert_error(wrong, 401)
    assert "sk-secret-9f3" not in wrong.text
    for key in ("key-one", "key-two"):
        ok = api.post("/v1/tasks/runs", json=body, headers={"x-api-key": key})
        assert ok.status_code == 202
    assert parallel_emulator.api_key == "key-one"


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", f"/v1/tasks/runs/{MISSING_RUN}", "Run id not found"),
        ("GET", f"/v1/tasks/runs/{MISSING_RUN}/input", "Run id not found"),
        ("GET", f"/v1/tasks/runs/{MISSING_RUN}/result", "Run failed or run id not found"),
        ("GET", f"/v1/tasks/runs/{MISSING_RUN}/events", "Run id not found"),
        ("GET", "/v1/tasks/runs/not-even-an-id", "Run id not found"),
        ("GET", f"/v1/tasks/groups/{MISSING_GROUP}", "TaskGroup not found"),
        ("POST", f"/v1/tasks/groups/{MISSING_GROUP}/runs", "TaskGroup not found"),
        ("GET", f"/v1/tasks/groups/{MISSING_GROUP}/runs", "TaskGroup not found"),
        ("GET", f"/v1beta/tasks/groups/{MISSING_GROUP}/events", "TaskGroup not found"),
        ("GET", f"/v1/tasks/groups/{MISSING_GROUP}/runs/{MISSING_RUN}", "TaskGroup not found"),
    ],
)
def test_unknown_ids_are_404(
    api: httpx.Client, server_survives: None, method: str, path: str, message: str
) -> None:
    body = {"inputs": [{"input": "x", "processor": "lite"}]} if method == "POST" else None
    assert_error(api.request(method, path, json=body), 404, message)


def test_a_run_is_not_found_through_another_group(api: httpx.Client) -> None:
    group = api.post("/v1/tasks/groups", json={}).json()["taskgroup_id"]
    run = api.post("/v1/tasks/runs", json={"input": "x", "processor": "lite"}).json()["run_id"]
    assert_error(api.get(f"/v1/tasks/groups/{group}/runs/{run}"), 404, "Run id not found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/v2/tasks/runs"),
        ("POST", "/v1/tasks/runs/extra/segments/here"),
        ("GET", "/v1/tasks/runs/"),
        ("DELETE", f"/v1/tasks/groups/{MISSING_GROUP}/things"),
    ],
)
def test_unknown_paths_are_404_json(
    api: httpx.Client, server_survives: None, method: str, path: str
) -> None:
    detail = assert_error(api.request(method, path), 404)
    assert detail is None
    assert path in api.request(method, path).json()["error"]["message"]


def test_wrong_methods_are_405_json(api: httpx.Client) -> None:
    assert_error(api.delete("/v1/tasks/runs"), 405, "Method not allowed")
    assert_error(api.put(f"/v1/tasks/runs/{MISSING_RUN}"), 405)


def nested(levels: int) -> Any:
    return {"a": nested(levels - 1)} if levels else 1


MALFORMED_BODIES: list[bytes] = [
    b"",
    b"{",
    b"not json at all",
    b'{"input": "x", "processor": "lite",}',
    b"\xff\xfe\x00garbage",
    b"null",
    b"[]",
    b'"just a string"',
    b"42",
    b'{"input": {"n": NaN}, "processor": "lite"}',
    b'{"input": {"n": 1e999}, "processor": "lite"}',
    b'{"input": {"n": ' + b"9" * 5000 + b'}, "processor": "lite"}',
    b"[" * 100_000 + b"]" * 100_000,
    json.dumps({"input": "x", "processor": "lite", "metadata": nested(200)}).encode(),
]


@pytest.mark.parametrize("body", MALFORMED_BODIES, ids=range(len(MALFORMED_BODIES)))
def test_malformed_bodies_are_422(api: httpx.Client, server_survives: None, body: bytes) -> None:
    detail = assert_error(api.post("/v1/tasks/runs", content=body), 422)
    assert detail["errors"][0]["loc"] in ([], ["body"])
    group = api.post("/v1/tasks/groups", json={}).json()["taskgroup_id"]
    assert_fastapi_422(api.post(f"/v1/tasks/groups/{group}/runs", content=body))
    if body not in (b"", b"null"):  # an empty body (or null) creates a group without metadata
        assert_fastapi_422(api.post("/v1/tasks/groups", content=body))


WRONG_TYPES: list[dict[str, Any]] = [
    {"processor": "lite"},
    {"input": "x"},
    {"input": ["a", "list"], "processor": "lite"},
    {"input": 12, "processor": "lite"},
    {"input": None, "processor": "lite"},
    {"input": "", "processor": "lite"},
    {"input": "x", "processor": ["lite"]},
    {"input": "x", "processor": "lite", "task_spec": "a string"},
    {"input": "x", "processor": "lite", "task_spec": {}},
    {"input": "x", "processor": "lite", "task_spec": {"output_schema": 3}},
    {"input": "x", "processor": "lite", "task_spec": {"output_schema": {"type": "xml"}}},
    {
        "input": "x",
        "processor": "lite",
        "task_spec": {"output_schema": {"type": "json", "json_schema": "not a schema"}},
    },
    {
        "input": "x",
        "processor": "lite",
        "task_spec": {
            "output_schema": {
                "type": "json",
                "json_schema": {"type": "object", "properties": {"a": {"anyOf": 5}}, "required": 5},
            }
        },
    },
    {
        "input": "x",
        "processor": "lite",
        "task_spec": {
            "output_schema": {
                "type": "json",
                "json_schema": {"type": "object", "properties": [1, 2]},
            }
        },
    },
    {
        "input": "x",
        "processor": "lite",
        "task_spec": {
            "output_schema": {
                "type": "json",
                "json_schema": {"type": "object", "properties": {"a": {"type": "strung"}}},
            }
        },
    },
    {
        "input": "x",
        "processor": "lite",
        "task_spec": {
            "output_schema": "ok",
            "input_schema": {
                "type": "json",
                "json_schema": {"type": "object", "properties": {"a": {"items": 7}}},
            },
        },
    },
    {"input": "x", "processor": "lite", "task_spec": {"output_schema": "ok", "input_schema": 4}},
    {"input": "x", "processor": "lite", "metadata": "k=v"},
    {"input": "x", "processor": "lite", "metadata": {"k": None}},
    {"input": "x", "processor": "lite", "source_policy": {"include_domains": "example.com"}},
    {
        "input": "x",
        "processor": "lite",
        "source_policy": {"exclude_domains": ["https://example.com"]},
    },
    {"input": "x", "processor": "lite", "source_policy": []},
    {"input": "x", "processor": "lite", "advanced_settings": {"location": 5}},
    {"input": "x", "processor": "lite", "advanced_settings": "us"},
    {"input": "x", "processor": "lite", "previous_interaction_id": 5},
    {"input": "x", "processor": "lite", "enable_events": "true"},
    {"input": "x", "processor": "lite", "memory_scope_key": []},
    {"input": "x", "processor": "lite", "mcp_servers": {"url": "https://x"}},
    {"input": "x", "processor": "lite", "mcp_servers": [{"name": "x"}]},
    {
        "input": "x",
        "processor": "lite",
        "mcp_servers": [{"name": "x", "url": "https://x.example", "headers": {"a": 1}}],
    },
    {"input": "x", "processor": "lite", "webhook": "https://hooks.example.com"},
    {
        "input": "x",
        "processor": "lite",
        "webhook": {"url": "https://hooks.example.com", "event_types": ["task_run.progress"]},
    },
]


@pytest.mark.parametrize("body", WRONG_TYPES, ids=range(len(WRONG_TYPES)))
def test_wrong_types_and_missing_fields_are_422(
    api: httpx.Client, server_survives: None, body: dict[str, Any]
) -> None:
    detail = assert_error(
        api.post("/v1/tasks/runs", json=body),
        422,
        "Unprocessable content: request validation error",
    )
    assert detail["errors"] and all(e["loc"][0] == "body" and e["msg"] for e in detail["errors"])
    group = api.post("/v1/tasks/groups", json={}).json()["taskgroup_id"]
    errors = assert_fastapi_422(api.post(f"/v1/tasks/groups/{group}/runs", json={"inputs": [body]}))
    assert all(e["loc"][:3] == ["body", "inputs", 0] for e in errors)


@pytest.mark.parallel_emulator(max_body_bytes=64 * 1024)
def test_huge_bodies_are_413(api: httpx.Client, server_survives: None) -> None:
    huge = json.dumps({"input": "x" * 1_000_000, "processor": "lite"}).encode()
    detail = assert_error(api.post("/v1/tasks/runs", content=huge), 413, "Request body too large")
    assert detail["max_bytes"] == 64 * 1024

    def chunks() -> Iterator[bytes]:  # no content-length: the limit applies while reading
        for _ in range(100):
            yield b"x" * 10_000

    assert_error(api.post("/v1/tasks/runs", content=chunks()), 413)
    group = api.post("/v1/tasks/groups", json={}).json()["taskgroup_id"]
    assert_error(api.post(f"/v1/tasks/groups/{group}/runs", content=huge), 413)


def test_bodies_over_the_default_limit_are_413(api: httpx.Client, server_survives: None) -> None:
    body = b'{"input": "' + b"x" * (9 * 1024 * 1024) + b'", "processor": "lite"}'
    assert_error(api.post("/v1/tasks/runs", content=body), 413)


@pytest.mark.parametrize("timeout", ["abc", "1.5", "-1", "", "1e3", "nan"])
def test_bad_result_timeouts_are_422(
    api: httpx.Client, server_survives: None, timeout: str
) -> None:
    run = api.post("/v1/tasks/runs", json={"input": "x", "processor": "lite"}).json()["run_id"]
    detail = assert_error(api.get(f"/v1/tasks/runs/{run}/result", params={"timeout": timeout}), 422)
    assert detail["errors"][0]["loc"] == ["query", "timeout"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("events", {"timeout": "abc"}),
        ("events", {"timeout": "-5"}),
        ("events", {"timeout": "inf"}),
        ("events", {"last_event_id": "abc"}),
        ("runs", {"last_event_id": "-1"}),
        ("runs", {"include_input": "maybe"}),
        ("runs", {"include_output": "2"}),
        ("runs", {"status": "finished"}),
    ],
)
def test_bad_group_query_params_are_422(
    api: httpx.Client, server_survives: None, path: str, params: dict[str, str]
) -> None:
    group = api.post("/v1/tasks/groups", json={}).json()["taskgroup_id"]
    errors = assert_fastapi_422(api.get(f"/v1/tasks/groups/{group}/{path}", params=params))
    assert errors[0]["loc"] == ["query", next(iter(params))]


def test_group_add_runs_limits(api: httpx.Client, server_survives: None) -> None:
    group = api.post("/v1/tasks/groups", json={}).json()["taskgroup_id"]
    url = f"/v1/tasks/groups/{group}/runs"
    one = {"input": "x", "processor": "lite"}
    assert_fastapi_422(api.post(url, json={"inputs": []}))
    assert_fastapi_422(api.post(url, json={"inputs": one}))
    assert_fastapi_422(api.post(url, json={"runs": [one]}))
    too_many = assert_fastapi_422(api.post(url, json={"inputs": [one] * 1001}))
    assert "1,000" in too_many[0]["msg"]
    bad_default = assert_fastapi_422(
        api.post(url, json={"inputs": [one], "default_task_spec": {"output_schema": 1}})
    )
    assert bad_default[0]["loc"][:2] == ["body", "default_task_spec"]
    # Nothing was added by any of those.
    assert api.get(f"/v1/tasks/groups/{group}").json()["status"]["num_task_runs"] == 0
    unknown = api.post(url, json={"inputs": [one, {"input": "y", "processor": "turbo"}]})
    assert_error(unknown, 403, "Forbidden: invalid processor in request")
    assert api.get(f"/v1/tasks/groups/{group}").json()["status"]["num_task_runs"] == 0
    assert api.post(url, json={"inputs": [one] * 1000}).status_code == 200


def test_group_metadata_is_validated(api: httpx.Client) -> None:
    errors = assert_fastapi_422(api.post("/v1/tasks/groups", json={"metadata": {"k" * 20: 1}}))
    assert errors[0]["loc"] == ["body", "metadata", "k" * 20]


def test_control_api_rejects_bad_input(api: httpx.Client, server_survives: None) -> None:
    for body in (
        {"spec": "create:999"},
        {"spec": "nowhere:429"},
        {"endpoint": "create"},
        {"status": 429, "bogus": 1},
        [1, 2],
    ):
        assert_error(api.post("/_emulator/faults", json=body), 422)
    for body in (
        {"output": "x"},
        {"input": 5, "output": "x"},
        {"input": "x", "output": 5},
        {"input": "x", "output": "y", "basis": [{"no": "field"}]},
    ):
        assert_error(api.post("/_emulator/fixtures", json=body), 422)
    assert_error(api.post("/_emulator/faults", content=b"{"), 422)


@pytest.mark.parallel_emulator(control_api=False)
def test_control_api_can_be_switched_off(api: httpx.Client) -> None:
    assert_error(api.get("/_emulator/counts"), 404)
    assert_error(api.post("/_emulator/reset"), 404)
