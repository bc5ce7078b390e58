"""The LangChain tools' own behaviour: schemas, wire requests, errors, secrets, batches,
results, progress and the toolkit.

Wire-level details are checked over `httpx.MockTransport` (tests/fake_api.py); behaviour that
needs a real server (runs, groups, faults, event streams) runs against the emulator.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field, ValidationError

import parallel_tools.langchain as lc
from parallel_tools import (
    AsyncTaskClient,
    RetryPolicy,
    Task,
    TaskClient,
    TaskResult,
    TaskRun,
    TaskTimeoutError,
)
from parallel_tools.emulator import Fault
from parallel_tools.langchain import (
    PROGRESS_EVENT,
    ParallelGetResultTool,
    ParallelResearchTool,
    ParallelStartTool,
    ParallelTaskTool,
    ParallelToolError,
    ParallelToolkit,
)
from tests.fake_api import FakeAPI, error_body, run_json, text_result

if TYPE_CHECKING:
    from parallel_tools.emulator import EmulatorServer


class CompanyInput(BaseModel):
    """A company to profile."""

    company_name: str = Field(description="The company's name.")


class CompanyProfile(BaseModel):
    founding_year: str = Field(description="The year it was founded, YYYY.")
    ceo: str = Field(description="The current CEO's full name.")


class Address(BaseModel):
    city: str = Field(description="City.")
    country: str = Field(description="Country.")


class SupplierInput(BaseModel):
    """A supplier and where to look."""

    name: str = Field(description="The supplier's name.")
    address: Address
    product_lines: list[str] = Field(default_factory=list, description="Products of interest.")
    max_sources: int = Field(default=5, description="At most this many sources.")


PROFILE = Task(
    "company_profile",
    "Profile a company: founding year and CEO.",
    input=CompanyInput,
    output=CompanyProfile,
    processor="core",
)
SUPPLIER = Task("supplier_check", "Check a supplier.", input=SupplierInput, output="A summary")
SUMMARY = Task("summarize_topic", "Summarize a topic.", output="A summary", processor="lite")

SECRET = "sk-live-SECRET-7f3a9c"


def tool_call(tool: BaseTool, args: dict[str, Any], call_id: str = "c1") -> ToolCall:
    return ToolCall(name=tool.name, args=args, id=call_id, type="tool_call")


def on(server: EmulatorServer, **extra: Any) -> dict[str, Any]:
    return {"api_key": server.api_key, "base_url": server.base_url, **extra}


def no_retries(server: EmulatorServer) -> TaskClient:
    # Failures surface at once: no retries, and no riding out an "outage" while waiting.
    retry = RetryPolicy(max_retries=0, outage_patience=0)
    return TaskClient(api_key=server.api_key, base_url=server.base_url, retry=retry)


@pytest.fixture
def closing() -> Iterator[list[BaseTool]]:
    """Tools appended here have their own sync clients closed after the test."""
    tools: list[BaseTool] = []
    yield tools
    for tool in tools:
        tool.close()  # type: ignore[attr-defined]


# --- Package surface -----------------------------------------------------------------------------


def test_importing_without_langchain_core_names_the_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['langchain_core'] = None\n"
        "try:\n    import parallel_tools.langchain\n"
        "except ImportError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert 'pip install "parallel-tools[langchain]"' in done.stdout, done.stdout + done.stderr


def test_the_adapter_imports_langchain_core_but_not_langchain_or_langgraph() -> None:
    code = (
        "import sys, parallel_tools.langchain; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'langchain', 'langgraph'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_every_public_name_is_documented() -> None:
    for name in lc.__all__:
        value = getattr(lc, name)
        assert name.isupper() or name == "ContentFormat" or value.__doc__, name


# --- Schemas the model sees ----------------------------------------------------------------------

TOOLS_AND_ARGS = [
    (lambda: ParallelTaskTool(task=PROFILE), {"company_name", "previous_interaction_id"}),
    (
        lambda: ParallelTaskTool(task=SUPPLIER),
        {"name", "address", "product_lines", "max_sources", "previous_interaction_id"},
    ),
    (lambda: ParallelTaskTool(task=SUMMARY), {"input", "previous_interaction_id"}),
    (
        lambda: ParallelResearchTool(),
        {"question", "output_description", "previous_interaction_id"},
    ),
    (lambda: ParallelStartTool(task=PROFILE), {"company_name", "previous_interaction_id"}),
    (
        lambda: ParallelStartTool(),
        {"question", "output_description", "previous_interaction_id"},
    ),
    (lambda: ParallelGetResultTool(), {"run_id"}),
]


def _walk(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from _walk(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _walk(value)


@pytest.mark.parametrize(("make", "expected"), TOOLS_AND_ARGS)
def test_schemas_survive_openai_strict_mode(make: Any, expected: set[str]) -> None:
    tool = make()
    function = convert_to_openai_tool(tool, strict=True)["function"]
    params = function["parameters"]
    assert function["strict"] is True
    assert set(params["properties"]) == expected
    # Strict mode makes every argument required: each must still be one the model can fill.
    assert set(params["required"]) == expected
    for node in _walk(params):
        assert "anyOf" not in node and "oneOf" not in node, node
        if node.get("type") == "object":
            assert node["additionalProperties"] is False
            assert set(node.get("required", [])) == set(node.get("properties", {}))
    for name, prop in params["properties"].items():
        assert "type" in prop or "$ref" in prop, name


@pytest.mark.parametrize(("make", "expected"), TOOLS_AND_ARGS)
def test_only_model_arguments_are_in_the_schema(make: Any, expected: set[str]) -> None:
    tool = make()
    schema = convert_to_openai_tool(tool)["function"]["parameters"]
    assert set(schema["properties"]) == expected
    assert not list(filter(lambda node: "anyOf" in node, _walk(schema)))
    for setting in ("processor", "wait", "api_key", "base_url", "run_options", "heartbeat"):
        assert setting not in json.dumps(schema)


def test_the_args_schema_is_the_task_input_model() -> None:
    tool = ParallelTaskTool.from_task(PROFILE)
    assert tool.name == "company_profile"
    assert tool.description.startswith(PROFILE.description)
    assert isinstance(tool.args_schema, type) and issubclass(tool.args_schema, CompanyInput)
    assert tool.args_schema.__name__ == "CompanyInput"
    plain = ParallelTaskTool.from_task(PROFILE, follow_ups=False)
    assert plain.args_schema is CompanyInput


def test_an_input_field_named_like_the_follow_up_needs_follow_ups_off() -> None:
    class Clash(BaseModel):
        previous_interaction_id: str

    task = Task("clash", "d", input=Clash, output="x")
    with pytest.raises(ValidationError, match="follow_ups=False"):
        ParallelTaskTool(task=task)
    assert ParallelTaskTool(task=task, follow_ups=False).args_schema is Clash


def test_settings_are_checked_when_the_tool_is_built() -> None:
    with pytest.raises(ValidationError, match="ParallelResearchTool"):
        ParallelTaskTool()
    with pytest.raises(ValidationError, match="Unknown processor"):
        ParallelTaskTool(task=PROFILE, processor="turbo")
    with pytest.raises(ValidationError, match="own settings"):
        ParallelTaskTool(task=PROFILE, run_options={"processor": "core"})
    with pytest.raises(ValidationError, match="Unknown run option"):
        ParallelResearchTool(run_options={"webhooks": {}})
    with pytest.raises(ValidationError, match="comes from the task"):
        ParallelTaskTool(task=PROFILE, args_schema=CompanyInput)
    with pytest.raises(ValidationError, match="over 64"):
        ParallelStartTool(task=Task("x" * 60, "d", output="y"))


# --- What goes over the wire ----------------------------------------------------------------------


def profile_result(run_id: str = "trun_1", **content: Any) -> dict[str, Any]:
    body = {"founding_year": "2023", "ceo": "Parag Agrawal", **content}
    return {
        "run": run_json(run_id, "completed", processor="core"),
        "output": {
            "type": "json",
            "content": body,
            "basis": [
                {
                    "field": "ceo",
                    "citations": [{"url": "https://parallel.ai/about", "title": "About"}],
                    "reasoning": "The about page names him.",
                    "confidence": "high",
                }
            ],
        },
    }


def fake_profile_api(result: dict[str, Any] | None = None) -> FakeAPI:
    api = FakeAPI()
    api.on("POST", "/v1/tasks/runs", httpx.Response(200, json=run_json("trun_1")), name="create")
    api.on(
        "GET",
        "/v1/tasks/runs/trun_1/result",
        httpx.Response(200, json=result or profile_result()),
        name="result",
    )
    return api


def test_a_run_carries_the_task_spec_processor_metadata_and_follow_up() -> None:
    api = fake_profile_api()
    client = TaskClient(api_key="k", transport=api.transport())
    tool = ParallelTaskTool.from_task(
        PROFILE,
        client,
        processor="core-fast",
        progress=False,
        run_options={
            "metadata": {"team": "sales"},
            "source_policy": {"exclude_domains": ["x.com"]},
        },
    )
    message = tool.invoke(
        tool_call(tool, {"company_name": "Parallel", "previous_interaction_id": "trun_prev"})
    )

    assert message.status == "success"
    (create,) = [r for r in api.requests if r.method == "POST"]
    body = json.loads(create.content)
    assert body["input"] == {"company_name": "Parallel"}
    assert body["task_spec"] == PROFILE.spec
    assert body["processor"] == "core-fast"
    assert body["previous_interaction_id"] == "trun_prev"
    assert body["metadata"] == {"team": "sales", "pt_task": "company_profile"}
    assert body["source_policy"] == {"exclude_domains": ["x.com"]}
    assert "enable_events" not in body  # nobody listens to progress
    client.close()


def test_an_empty_follow_up_is_not_sent_and_the_task_processor_is_the_default() -> None:
    api = fake_profile_api()
    client = TaskClient(api_key="k", transport=api.transport())
    tool = ParallelTaskTool.from_task(PROFILE, client)
    tool.invoke({"company_name": "Parallel", "previous_interaction_id": ""})
    body = json.loads(next(r for r in api.requests if r.method == "POST").content)
    assert "previous_interaction_id" not in body
    assert body["processor"] == "core" and body["enable_events"] is True
    client.close()


async def test_the_async_path_uses_only_the_async_client() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the sync client was used on the async path")

    api = fake_profile_api()
    sync_client = TaskClient(api_key="k", transport=httpx.MockTransport(refuse))
    async_client = AsyncTaskClient(api_key="k", transport=api.transport())
    tool = ParallelTaskTool.from_task(PROFILE, sync_client, async_client=async_client)
    tool.progress = False
    message = await tool.ainvoke(tool_call(tool, {"company_name": "Parallel"}))

    assert message.status == "success"
    assert isinstance(message.artifact.parsed, CompanyProfile)
    assert api.counts["create"] == 1
    sync_client.close()
    await async_client.aclose()


def test_the_content_cites_numbered_sources_and_the_artifact_is_the_result() -> None:
    api = fake_profile_api()
    client = TaskClient(api_key="k", transport=api.transport())
    tool = ParallelTaskTool.from_task(PROFILE, client, progress=False)
    message = tool.invoke(tool_call(tool, {"company_name": "Parallel"}))

    result = message.artifact
    assert isinstance(result, TaskResult) and result.parsed == CompanyProfile(
        founding_year="2023", ceo="Parag Agrawal"
    )
    assert "- ceo: Parag Agrawal [1] (confidence: high)" in message.text
    assert "[1] About - https://parallel.ai/about" in message.text
    assert 'previous_interaction_id="trun_1"' in message.text
    # Invoked with plain arguments, a tool returns the content alone.
    assert tool.invoke({"company_name": "Parallel"}) == message.text
    client.close()


def test_json_content_is_the_shared_cited_answer() -> None:
    api = fake_profile_api()
    client = TaskClient(api_key="k", transport=api.transport())
    tool = ParallelTaskTool.from_task(PROFILE, client, progress=False, content_format="json")
    data = json.loads(tool.invoke({"company_name": "Parallel"}))

    assert data["run_id"] == "trun_1"
    assert data["answer"] == {"founding_year": "2023", "ceo": "Parag Agrawal"}
    assert data["sources"][0]["number"] == 1
    assert data["basis"][0]["field"] == "ceo"
    client.close()


def test_an_output_that_does_not_fit_the_model_comes_back_raw_with_a_note() -> None:
    wrong = profile_result()
    del wrong["output"]["content"]["ceo"]
    api = fake_profile_api(wrong)
    client = TaskClient(api_key="k", transport=api.transport())
    tool = ParallelTaskTool.from_task(PROFILE, client, progress=False)
    message = tool.invoke(tool_call(tool, {"company_name": "Parallel"}))

    assert message.status == "success"
    assert message.text.startswith("Note: the answer does not fit the expected fields (ceo:")
    assert message.artifact.parsed is None
    assert message.artifact.content == {"founding_year": "2023"}
    client.close()


def test_an_unreachable_api_is_a_tool_error() -> None:
    api = FakeAPI()
    api.on("POST", "/v1/tasks/runs", httpx.ConnectError("connection refused"))
    client = TaskClient(api_key="k", transport=api.transport(), retry=RetryPolicy(max_retries=0))
    tool = ParallelResearchTool(client=client, progress=False)
    message = tool.invoke(tool_call(tool, {"question": "Who?"}))
    assert message.status == "error"
    assert message.text.startswith("Parallel could not be reached")
    client.close()


# --- Errors as the agent reads them -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(endpoint="create", status=402), "run out of credit"),
        (Fault(endpoint="create", status=403), "not set up correctly"),
        (Fault(endpoint="create", status=429, retry_after=7), "Wait 7 s before trying again"),
        (Fault(endpoint="create", status=500, after_accept=True), "leaves open whether"),
        (Fault(endpoint="create", fail_run="Source blocked"), "failed: Source blocked"),
        (Fault(endpoint="result", status=503, times=0), "could not be reached or had a problem"),
    ],
)
def test_expected_failures_become_error_messages(
    parallel_emulator: EmulatorServer, fault: Fault, expected: str
) -> None:
    parallel_emulator.emulator.add_fault(fault)
    client = no_retries(parallel_emulator)
    tool = ParallelResearchTool(client=client)
    message = tool.invoke(tool_call(tool, {"question": "Who?"}))

    assert isinstance(message, ToolMessage)
    assert message.status == "error" and message.artifact is None
    assert expected in message.text
    client.close()


def test_a_result_failure_after_creation_points_at_the_result_tool(
    parallel_emulator: EmulatorServer,
) -> None:
    parallel_emulator.emulator.add_fault(Fault(endpoint="result", status=503, times=0))
    client = no_retries(parallel_emulator)
    tool = ParallelResearchTool(client=client, result_tool_name="fetch_answer")
    message = tool.invoke(tool_call(tool, {"question": "Who?"}))
    assert "The run may still finish. Call fetch_answer with run_id 'trun_" in message.text
    client.close()


@pytest.mark.parallel_emulator(time_scale=0.02, max_result_hold=0.1)
def test_a_run_past_the_wait_budget_names_its_id_and_the_result_tool(
    parallel_emulator: EmulatorServer, closing: list[BaseTool]
) -> None:
    tool = ParallelResearchTool(**on(parallel_emulator), processor="lite", wait=0.1)
    closing.append(tool)
    message = tool.invoke(tool_call(tool, {"question": "Who?"}))

    (run_id,) = parallel_emulator.emulator.runs
    assert message.status == "error"
    assert message.text.startswith(f"Research run {run_id} is still running after 0.")
    assert f"Call parallel_get_result with run_id '{run_id}' later" in message.text
    assert "do not start the same research again" in message.text


@pytest.mark.parallel_emulator(time_scale=0.02, max_result_hold=0.1)
def test_unhandled_errors_keep_the_run_id_and_cause(
    parallel_emulator: EmulatorServer, closing: list[BaseTool]
) -> None:
    tool = ParallelResearchTool(
        **on(parallel_emulator), processor="lite", wait=0.1, handle_tool_error=False
    )
    closing.append(tool)
    with pytest.raises(ParallelToolError) as caught:
        tool.invoke({"question": "Who?"})
    assert caught.value.run_id in parallel_emulator.emulator.runs
    assert isinstance(caught.value.cause, TaskTimeoutError)


def test_bad_arguments_name_the_field_and_send_nothing(
    parallel_emulator: EmulatorServer, closing: list[BaseTool]
) -> None:
    tool = ParallelTaskTool.from_task(PROFILE, **on(parallel_emulator))
    research = ParallelResearchTool(**on(parallel_emulator))
    closing += [tool, research]

    missing = tool.invoke(tool_call(tool, {"company": "Acme"}))
    assert missing.status == "error"
    assert missing.text.startswith("The tool arguments are not valid: company_name: Field required")
    blank = research.invoke(tool_call(research, {"question": "  "}))
    assert blank.status == "error"
    assert "The question is empty" in blank.text
    assert parallel_emulator.emulator.request_counts["create"] == 0


def test_a_missing_key_is_a_configuration_error_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PARALLEL_API_KEY", raising=False)
    tool = ParallelResearchTool()
    message = tool.invoke(tool_call(tool, {"question": "Who?"}))
    assert message.status == "error"
    assert "No Parallel API key" in message.text and "tell the user" in message.text


# --- Secrets -------------------------------------------------------------------------------------


def test_the_key_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARALLEL_API_KEY", SECRET)
    tool = ParallelTaskTool.from_task(PROFILE)
    toolkit = ParallelToolkit(tasks=[PROFILE])
    assert tool.api_key.get_secret_value() == SECRET
    shown = [
        repr(tool),
        str(tool),
        repr(toolkit),
        str(tool.model_dump()),
        str(toolkit.model_dump()),
    ]
    shown += [repr(t) for t in toolkit.get_tools()]
    client = tool._sync_client()
    shown.append(repr(client))
    assert all(SECRET not in text for text in shown)
    tool.close()


@pytest.mark.parallel_emulator(api_keys=["the-right-key"])
async def test_the_key_is_not_in_auth_errors(parallel_emulator: EmulatorServer) -> None:
    tool = ParallelTaskTool.from_task(PROFILE, api_key=SECRET, base_url=parallel_emulator.base_url)
    sync_message = tool.invoke(tool_call(tool, {"company_name": "Acme"}))
    async_message = await tool.ainvoke(tool_call(tool, {"company_name": "Acme"}))
    for message in (sync_message, async_message):
        assert message.status == "error" and "HTTP 401" in message.text
        assert SECRET not in message.text
    await tool.aclose()


# --- Follow-ups --------------------------------------------------------------------------------


def test_a_follow_up_continues_the_interaction(
    parallel_emulator: EmulatorServer, closing: list[BaseTool]
) -> None:
    tool = ParallelResearchTool(**on(parallel_emulator))
    closing.append(tool)
    first = tool.invoke(tool_call(tool, {"question": "Who founded Parallel?"}))
    interaction = first.artifact.interaction_id
    second = tool.invoke(
        tool_call(
            tool, {"question": "And when?", "previous_interaction_id": interaction}, call_id="c2"
        )
    )
    with TaskClient(**on(parallel_emulator)) as client:
        sent = client.get_run_input(second.artifact.run_id)
    assert sent["previous_interaction_id"] == interaction


# --- Batches: one task group --------------------------------------------------------------------


def test_batch_runs_every_call_through_one_group_in_input_order(
    parallel_emulator: EmulatorServer, closing: list[BaseTool]
) -> None:
    tool = ParallelTaskTool.from_task(PROFILE, **on(parallel_emulator), processor="lite")
    closing.append(tool)
    names = ["Acme", "Globex", "Initech", "Umbrella", "Hooli"]
    calls: list[Any] = [
        tool_call(tool, {"company_name": n}, call_id=f"c{i}") for i, n in enumerate(names)
    ]
    calls.insert(2, tool_call(tool, {"company": "nobody"}, call_id="bad"))
    messages = tool.batch(calls)

    counts = parallel_emulator.emulator.request_counts
    assert counts["group_create"] == 1 and counts["group_add_runs"] == 1
    assert counts["create"] == 0
    assert [m.tool_call_id for m in messages] == [c["id"] for c in calls]
    bad = messages.pop(2)
    assert bad.status == "error" and "company_name" in bad.text
    for name, message in zip(names, messages, strict=True):
        assert message.status == "success"
        assert isinstance(message.artifact.parsed, CompanyProfile)
        assert name in message.artifact.parsed.ceo  # the emulator echoes the subject
    assert len({m.artifact.run.taskgroup_id for m in messages}) == 1


async def test_abatch_with_plain_arguments_returns_contents_in_order(
    parallel_emulator: EmulatorServer,
) -> None:
    tool = ParallelTaskTool.from_task(PROFILE, **on(parallel_emulator), processor="lite")
    names = ["Acme", "Globex", "Initech"]
    contents = await tool.abatch([{"company_name": n} for n in names])

    assert all(isinstance(c, str) for c in contents)
    assert [n in c for n, c in zip(names, contents, strict=True)] == [True, True, True]
    assert parallel_emulator.emulator.request_counts["group_create"] == 1
    assert parallel_emulator.emulator.request_counts["create"] == 0
    await tool.aclose()


def test_batch_handles_a_failed_run_per_item(
    parallel_emulator: EmulatorServer, closing: list[BaseTool]
) -> None:
    parallel_emulator.emulator.add_fault(
        Fault(endpoint="group_add_runs", fail_run="Blocked", times=1)
    )
    tool = ParallelResearchTool(**on(parallel_emulator), processor="lite")
    closing.append(tool)
    messages = tool.batch(
        [tool_call(tool, {"question": q}, call_id=q) for q in ("one?", "two?", "three?")]
    )
    statuses = [m.status for m in messages]
    assert statuses.count("error") == 1 and statuses.count("success") == 2
    failed = messages[statuses.index("error")]
    assert "failed: Blocked" in failed.text


def test_batch_respects_return_exceptions(
    parallel_emulator: EmulatorServer, closing: list[BaseTool]
) -> None:
    tool = ParallelResearchTool(**on(parallel_emulator), processor="lite", handle_tool_error=False)
    closing.append(tool)
    inputs: list[Any] = [{"question": "one?"}, {"question": "two?"}]

    parallel_emulator.emulator.add_fault(Fault(endpoint="group_add_runs", fail_run="X", times=1))
    outputs = tool.batch(inputs, return_exceptions=True)
    assert sum(isinstance(o, ParallelToolError) for o in outputs) == 1
    assert sum(isinstance(o, str) for o in outputs) == 1

    parallel_emulator.emulator.add_fault(Fault(endpoint="group_add_runs", fail_run="X", times=1))
    with pytest.raises(ParallelToolError, match="failed: X"):
        tool.batch(inputs)


async def test_a_batch_with_different_follow_ups_and_outputs_still_uses_one_group(
    parallel_emulator: EmulatorServer,
) -> None:
    typed = ParallelTaskTool.from_task(PROFILE, **on(parallel_emulator), processor="lite")
    messages = await typed.abatch(
        [
            tool_call(typed, {"company_name": "Acme", "previous_interaction_id": "trun_a"}, "1"),
            tool_call(typed, {"company_name": "Globex"}, "2"),
        ]
    )
    assert all(isinstance(m.artifact.parsed, CompanyProfile) for m in messages)
    async with AsyncTaskClient(**on(parallel_emulator)) as client:
        first = await client.get_run_input(messages[0].artifact.run_id)
        second = await client.get_run_input(messages[1].artifact.run_id)
    assert first["previous_interaction_id"] == "trun_a"
    assert "previous_interaction_id" not in second

    research = ParallelResearchTool(**on(parallel_emulator), processor="lite")
    answers = await research.abatch(
        [
            {"question": "Who?", "output_description": "A name"},
            {"question": "When?", "output_description": "A date"},
        ]
    )
    assert len(answers) == 2
    assert parallel_emulator.emulator.request_counts["group_create"] == 2
    assert parallel_emulator.emulator.request_counts["create"] == 0
    await typed.aclose()
    await research.aclose()


def test_a_batch_whose_group_cannot_be_created_fails_each_item_readably(
    parallel_emulator: EmulatorServer,
) -> None:
    parallel_emulator.emulator.add_fault(Fault(endpoint="group_create", status=402))
    client = no_retries(parallel_emulator)
    tool = ParallelResearchTool(client=client)
    messages = tool.batch([tool_call(tool, {"question": q}, q) for q in ("a?", "b?")])
    assert [m.status for m in messages] == ["error", "error"]
    assert all("run out of credit" in m.text for m in messages)
    client.close()


def test_a_single_input_batch_is_a_plain_run(
    parallel_emulator: EmulatorServer, closing: list[BaseTool]
) -> None:
    tool = ParallelResearchTool(**on(parallel_emulator))
    closing.append(tool)
    (content,) = tool.batch([{"question": "Who?"}])
    assert "Sources:" in content
    assert parallel_emulator.emulator.request_counts["create"] == 1
    assert parallel_emulator.emulator.request_counts["group_create"] == 0


# --- Start and get-result ----------------------------------------------------------------------


@pytest.mark.parallel_emulator(time_scale=0.02, max_result_hold=0.1)
async def test_get_result_gives_the_status_then_the_typed_answer(
    parallel_emulator: EmulatorServer,
) -> None:
    start = ParallelStartTool.from_task(PROFILE, **on(parallel_emulator), processor="lite")
    check = ParallelGetResultTool(**on(parallel_emulator), tasks=[PROFILE], wait=0)
    collect = ParallelGetResultTool(**on(parallel_emulator), tasks=[PROFILE], wait=10)
    untyped = ParallelGetResultTool(**on(parallel_emulator), wait=10)

    started = await start.ainvoke(tool_call(start, {"company_name": "Acme"}))
    run_id = started.artifact.run_id
    assert isinstance(started.artifact, TaskRun)
    assert f'Call parallel_get_result with run_id "{run_id}"' in started.text
    assert "10-60 seconds" in started.text  # lite's documented latency

    pending = await check.ainvoke(tool_call(check, {"run_id": run_id}))
    assert pending.status == "success" and isinstance(pending.artifact, TaskRun)
    assert f"Research run {run_id} is still" in pending.text

    done = await collect.ainvoke(tool_call(collect, {"run_id": run_id}))
    assert isinstance(done.artifact.parsed, CompanyProfile)
    raw = untyped.invoke(tool_call(untyped, {"run_id": run_id}))
    assert isinstance(raw.artifact.parsed, dict)
    for tool in (start, check, collect, untyped):
        await tool.aclose()


async def test_get_result_reports_failed_and_unknown_runs(
    parallel_emulator: EmulatorServer,
) -> None:
    parallel_emulator.emulator.add_fault(Fault(endpoint="create", fail_run="Gone"))
    start = ParallelStartTool(**on(parallel_emulator))
    get = ParallelGetResultTool(**on(parallel_emulator), wait=5)
    run_id = (await start.ainvoke(tool_call(start, {"question": "Who?"}))).artifact.run_id

    failed = await get.ainvoke(tool_call(get, {"run_id": run_id}))
    assert failed.status == "error" and "failed: Gone" in failed.text
    unknown = get.invoke(tool_call(get, {"run_id": "trun_" + "0" * 32}))
    assert unknown.status == "error" and unknown.text.startswith("Parallel has no such run")
    for tool in (start, get):
        await tool.aclose()


# --- Progress ----------------------------------------------------------------------------------


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.events.append((name, data))


@pytest.mark.parallel_emulator(time_scale=0.015, max_result_hold=0.1)
def test_sync_waits_send_progress_to_callbacks(
    parallel_emulator: EmulatorServer, closing: list[BaseTool]
) -> None:
    tool = ParallelResearchTool(**on(parallel_emulator), processor="lite", heartbeat=1)
    closing.append(tool)
    recorder = Recorder()
    tool.invoke(tool_call(tool, {"question": "Who?"}), {"callbacks": [recorder]})

    assert recorder.events and {name for name, _ in recorder.events} == {PROGRESS_EVENT}
    data = [d for _, d in recorder.events]
    assert any(d["message"] for d in data)
    assert all(d["text"] and d["elapsed"] >= 0 for d in data)


@pytest.mark.parallel_emulator(time_scale=0.015, max_result_hold=0.1)
async def test_async_waits_send_progress_to_astream_events(
    parallel_emulator: EmulatorServer,
) -> None:
    tool = ParallelResearchTool(**on(parallel_emulator), processor="lite")
    events = [
        e
        async for e in tool.astream_events(tool_call(tool, {"question": "Who?"}), version="v2")
        if e["event"] == "on_custom_event"
    ]
    kinds = {e["data"]["kind"] for e in events}
    assert {"plan", "search"} <= kinds
    assert any(e["data"]["meter"] for e in events)
    await tool.aclose()


@pytest.mark.parallel_emulator(time_scale=0.015, max_result_hold=0.1)
async def test_progress_can_be_turned_off(parallel_emulator: EmulatorServer) -> None:
    tool = ParallelResearchTool(**on(parallel_emulator), processor="lite", progress=False)
    events = [
        e
        async for e in tool.astream_events(tool_call(tool, {"question": "Who?"}), version="v2")
        if e["event"] == "on_custom_event"
    ]
    assert events == []
    assert parallel_emulator.emulator.request_counts["events"] == 0
    await tool.aclose()


# --- Toolkit -------------------------------------------------------------------------------------


def test_the_toolkit_shares_its_settings() -> None:
    client = TaskClient(api_key="k", base_url="http://127.0.0.1:9")
    toolkit = ParallelToolkit(
        tasks=[PROFILE, SUMMARY], client=client, processor="core", wait=42, result_wait=7
    )
    tools = toolkit.get_tools()
    assert [t.name for t in tools] == [
        "company_profile",
        "summarize_topic",
        "parallel_research",
        "start_company_profile",
        "start_summarize_topic",
        "parallel_start_research",
        "parallel_get_result",
    ]
    assert all(t.client is client for t in tools)  # type: ignore[attr-defined]
    assert all(t.processor == "core" for t in tools[:-1])  # type: ignore[attr-defined]
    assert [t.wait for t in tools[:3]] == [42, 42, 42]  # type: ignore[attr-defined]
    get = tools[-1]
    assert (
        isinstance(get, ParallelGetResultTool) and get.wait == 7 and get.tasks == [PROFILE, SUMMARY]
    )
    only_get = ParallelToolkit(research=False, blocking=False, start=False).get_tools()
    assert [t.name for t in only_get] == ["parallel_get_result"]
    client.close()


def test_the_toolkit_rejects_duplicate_task_names_and_unknown_processors() -> None:
    with pytest.raises(ValidationError, match="repeated: company_profile"):
        ParallelToolkit(tasks=[PROFILE, PROFILE])
    with pytest.raises(ValidationError, match="Unknown processor"):
        ParallelToolkit(processor="fastest")


def test_error_bodies_from_fake_api_are_redacted_of_the_key() -> None:
    # A server that echoes the key back in its error must not leak it into the tool message.
    api = FakeAPI()
    api.on(
        "POST",
        "/v1/tasks/runs",
        httpx.Response(400, json=error_body(f"Bad request from key {SECRET}")),
    )
    client = TaskClient(api_key=SECRET, transport=api.transport(), retry=RetryPolicy(max_retries=0))
    tool = ParallelResearchTool(client=client, progress=False)
    message = tool.invoke(tool_call(tool, {"question": "Who?"}))
    assert message.status == "error" and "HTTP 400" in message.text
    assert SECRET not in message.text
    client.close()


def test_text_results_render_with_their_markers() -> None:
    api = FakeAPI()
    api.on("POST", "/v1/tasks/runs", httpx.Response(200, json=run_json("trun_1")))
    api.on("GET", "/v1/tasks/runs/trun_1/result", httpx.Response(200, json=text_result()))
    client = TaskClient(api_key="k", transport=api.transport())
    tool = ParallelResearchTool(client=client, progress=False, follow_ups=False)
    text = tool.invoke({"question": "When was the UN founded?"})
    assert text.startswith("10-1945 [1]\n(confidence: high)")
    assert "previous_interaction_id" not in text
    client.close()


def test_a_tool_used_from_a_new_event_loop_gets_a_new_async_client(
    parallel_emulator: EmulatorServer,
) -> None:
    tool = ParallelResearchTool(**on(parallel_emulator))
    clients: list[Any] = []

    async def ask() -> str:
        content = await tool.ainvoke({"question": "Who?"})
        clients.append(tool._own_async)
        await clients[-1].aclose()  # as a loop's owner would at its end
        return str(content)

    assert "Sources:" in asyncio.run(ask())
    assert "Sources:" in asyncio.run(ask())  # the first loop is closed by now
    assert clients[0] is not clients[1]


def test_a_very_long_answer_is_cut_to_the_budget_but_kept_whole_in_the_artifact() -> None:
    from parallel_tools import TaskResult
    from parallel_tools.langchain._content import result_content

    data = {
        "run": {"run_id": "trun_1", "status": "completed", "is_active": False},
        "output": {"type": "text", "content": "word " * 50_000, "basis": []},
    }
    result = TaskResult.from_run_result(data)
    content = result_content(result, max_tokens=1_000)
    assert len(content) < 3_500
    assert "the full answer and sources are in the tool message's artifact" in content
    assert "Run: trun_1" in content  # the lines after the answer survive
    assert len(result.content) == 250_000
