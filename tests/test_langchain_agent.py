"""The tools inside a real LangChain agent loop (`create_agent`) against the emulator.

No LLM is available offline, so a scripted chat model plays the model's part: each turn is a
function of the conversation so far, which lets it read a run id out of an earlier tool message
the way a real model would.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from parallel_tools import Task, TaskResult, TaskRun
from parallel_tools.emulator import Fault
from parallel_tools.langchain import (
    PROGRESS_EVENT,
    ParallelResearchTool,
    ParallelTaskTool,
    ParallelToolkit,
)

if TYPE_CHECKING:
    from parallel_tools.emulator import EmulatorServer

Turn = Callable[[list[BaseMessage]], AIMessage]


class ScriptedChatModel(BaseChatModel):
    """A chat model that plays a script; turn N answers the conversation after N AI turns."""

    turns: list[Turn]
    bound_tools: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        self.bound_tools = [convert_to_openai_tool(t)["function"]["name"] for t in tools]
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        step = sum(isinstance(m, AIMessage) for m in messages)
        return ChatResult(generations=[ChatGeneration(message=self.turns[step](messages))])


def call(name: str, args: dict[str, Any], call_id: str) -> Turn:
    """A turn that calls one tool."""
    return lambda _: AIMessage("", tool_calls=[ToolCall(name=name, args=args, id=call_id)])


def answer(text: str = "Done.") -> Turn:
    return lambda _: AIMessage(text)


def last_tool_message(messages: list[BaseMessage]) -> ToolMessage:
    message = messages[-1]
    assert isinstance(message, ToolMessage)
    return message


def run_id_in(text: Any) -> str:
    found = re.search(r"trun_[0-9a-f]+", str(text))
    assert found, text
    return found.group(0)


def tool_messages(messages: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


class CompanyInput(BaseModel):
    """A company to profile."""

    company_name: str = Field(description="The company's name.")


class CompanyProfile(BaseModel):
    founding_year: str = Field(description="The year it was founded, YYYY.")
    ceo: str = Field(description="The current CEO's full name.")


PROFILE = Task(
    "company_profile",
    "Profile a company: founding year and CEO.",
    input=CompanyInput,
    output=CompanyProfile,
)


def kw(server: EmulatorServer, **extra: Any) -> dict[str, Any]:
    return {"api_key": server.api_key, "base_url": server.base_url, **extra}


# --- End to end --------------------------------------------------------------------------------


def test_sync_agent_researches_and_gets_the_result_as_artifact(
    parallel_emulator: EmulatorServer,
) -> None:
    research = ParallelResearchTool(**kw(parallel_emulator))
    model = ScriptedChatModel(
        turns=[
            call("parallel_research", {"question": "When was the UN founded?"}, "c1"),
            lambda messages: AIMessage(f"Per source [1]: {last_tool_message(messages).text[:40]}"),
        ]
    )
    agent = create_agent(model, tools=[research])
    out = agent.invoke({"messages": [HumanMessage("When was the UN founded?")]})

    assert model.bound_tools == ["parallel_research"]
    (message,) = tool_messages(out["messages"])
    assert message.status == "success" and message.tool_call_id == "c1"
    assert isinstance(message.artifact, TaskResult)
    assert message.artifact.run_id in message.text
    assert "[1]" in message.text and "Sources:" in message.text
    assert isinstance(out["messages"][-1], AIMessage)
    assert parallel_emulator.emulator.request_counts["create"] == 1
    research.close()


async def test_async_agent_gets_a_typed_result(parallel_emulator: EmulatorServer) -> None:
    tool = ParallelTaskTool.from_task(PROFILE, **kw(parallel_emulator))
    model = ScriptedChatModel(
        turns=[call("company_profile", {"company_name": "Acme Corp"}, "c1"), answer()]
    )
    agent = create_agent(model, tools=[tool])
    out = await agent.ainvoke({"messages": [HumanMessage("Profile Acme Corp")]})

    (message,) = tool_messages(out["messages"])
    assert message.status == "success"
    assert isinstance(message.artifact, TaskResult)
    assert isinstance(message.artifact.parsed, CompanyProfile)
    assert message.artifact.parsed.ceo in message.text
    assert message.artifact.citations("ceo")
    await tool.aclose()


# --- Failures keep the loop going ----------------------------------------------------------------


async def test_a_failed_run_becomes_an_error_message_and_the_loop_goes_on(
    parallel_emulator: EmulatorServer,
) -> None:
    parallel_emulator.emulator.add_fault(Fault(endpoint="create", fail_run="Upstream timeout"))
    research = ParallelResearchTool(**kw(parallel_emulator))
    model = ScriptedChatModel(
        turns=[
            call("parallel_research", {"question": "Who?"}, "c1"),
            call("parallel_research", {"question": "Who, rephrased?"}, "c2"),
            answer("Recovered."),
        ]
    )
    agent = create_agent(model, tools=[research])
    out = await agent.ainvoke({"messages": [HumanMessage("Who?")]})

    failed, retried = tool_messages(out["messages"])
    assert failed.status == "error" and failed.artifact is None
    assert "failed" in failed.text and "Upstream timeout" in failed.text
    assert retried.status == "success"
    assert out["messages"][-1].text == "Recovered."
    await research.aclose()


@pytest.mark.parallel_emulator(api_keys=["the-right-key"])
def test_an_auth_error_becomes_an_error_message_without_the_key(
    parallel_emulator: EmulatorServer,
) -> None:
    research = ParallelResearchTool(
        api_key="sk-wrong-SECRET-4242", base_url=parallel_emulator.base_url
    )
    model = ScriptedChatModel(
        turns=[call("parallel_research", {"question": "Who?"}, "c1"), answer("I could not.")]
    )
    agent = create_agent(model, tools=[research])
    out = agent.invoke({"messages": [HumanMessage("Who?")]})

    (message,) = tool_messages(out["messages"])
    assert message.status == "error"
    assert "401" in message.text and "tell the user" in message.text
    assert all("SECRET-4242" not in str(m.content) for m in out["messages"])
    assert out["messages"][-1].text == "I could not."
    research.close()


def test_bad_arguments_from_the_model_come_back_as_a_readable_error(
    parallel_emulator: EmulatorServer,
) -> None:
    tool = ParallelTaskTool.from_task(PROFILE, **kw(parallel_emulator))
    model = ScriptedChatModel(
        turns=[call("company_profile", {"company": "Acme"}, "c1"), answer("Oops.")]
    )
    agent = create_agent(model, tools=[tool])
    out = agent.invoke({"messages": [HumanMessage("Profile Acme")]})

    (message,) = tool_messages(out["messages"])
    assert message.status == "error"
    assert "company_name" in message.text
    assert parallel_emulator.emulator.request_counts["create"] == 0
    tool.close()


# --- Runs longer than the wait budget ------------------------------------------------------------


@pytest.mark.parallel_emulator(time_scale=0.02, max_result_hold=0.1)
async def test_a_run_past_the_wait_budget_is_collected_with_the_result_tool(
    parallel_emulator: EmulatorServer,
) -> None:
    # A lite run takes 0.2-1.2 s here; the research tool gives up after 0.1 s.
    toolkit = ParallelToolkit(
        **kw(parallel_emulator), processor="lite", wait=0.1, result_wait=10, start=False
    )
    tools = toolkit.get_tools()
    model = ScriptedChatModel(
        turns=[
            call("parallel_research", {"question": "Who won?"}, "c1"),
            lambda m: call(
                "parallel_get_result", {"run_id": run_id_in(last_tool_message(m).content)}, "c2"
            )(m),
            answer(),
        ]
    )
    agent = create_agent(model, tools=tools)
    out = await agent.ainvoke({"messages": [HumanMessage("Who won?")]})

    waited, collected = tool_messages(out["messages"])
    assert waited.status == "error"
    assert "still running" in waited.text and "parallel_get_result" in waited.text
    assert collected.status == "success"
    assert isinstance(collected.artifact, TaskResult)
    assert collected.artifact.run_id == run_id_in(waited.text)
    # One run only: the agent collected it instead of starting the research again.
    assert parallel_emulator.emulator.request_counts["create"] == 1
    for tool in tools:
        await tool.aclose()  # type: ignore[attr-defined]


@pytest.mark.parallel_emulator(time_scale=0.02, max_result_hold=0.1)
def test_the_start_and_get_pair_polls_until_the_typed_answer_is_ready(
    parallel_emulator: EmulatorServer,
) -> None:
    toolkit = ParallelToolkit(
        tasks=[PROFILE], **kw(parallel_emulator), processor="lite", result_wait=0.1, blocking=False
    )
    tools = toolkit.get_tools()
    assert [t.name for t in tools] == [
        "start_company_profile",
        "parallel_start_research",
        "parallel_get_result",
    ]

    def poll(messages: list[BaseMessage]) -> AIMessage:
        last = last_tool_message(messages)
        if isinstance(last.artifact, TaskResult):
            return AIMessage("Here is the profile.")
        turn = sum(isinstance(m, AIMessage) for m in messages)
        return AIMessage(
            "",
            tool_calls=[
                ToolCall(
                    name="parallel_get_result", args={"run_id": run_id_in(last.text)}, id=f"g{turn}"
                )
            ],
        )

    model = ScriptedChatModel(
        turns=[call("start_company_profile", {"company_name": "Acme"}, "s1")] + [poll] * 40
    )
    agent = create_agent(model, tools=tools)
    out = agent.invoke({"messages": [HumanMessage("Profile Acme")]}, {"recursion_limit": 100})

    started, *polled = tool_messages(out["messages"])
    assert isinstance(started.artifact, TaskRun) and started.artifact.run_id in started.text
    assert len(polled) >= 2, "the run should outlast the first poll"
    assert all(p.status == "success" for p in polled)
    assert "still" in polled[0].text and isinstance(polled[0].artifact, TaskRun)
    final = polled[-1].artifact
    assert isinstance(final, TaskResult) and isinstance(final.parsed, CompanyProfile)
    assert parallel_emulator.emulator.request_counts["create"] == 1
    for tool in tools:
        tool.close()  # type: ignore[attr-defined]


# --- Progress while waiting ----------------------------------------------------------------------


@pytest.mark.parallel_emulator(time_scale=0.015, max_result_hold=0.1)
async def test_progress_reaches_astream_events_as_custom_events(
    parallel_emulator: EmulatorServer,
) -> None:
    research = ParallelResearchTool(**kw(parallel_emulator), processor="lite")
    model = ScriptedChatModel(
        turns=[call("parallel_research", {"question": "Who?"}, "c1"), answer()]
    )
    agent = create_agent(model, tools=[research])
    custom = [
        event
        async for event in agent.astream_events({"messages": [HumanMessage("Who?")]}, version="v2")
        if event["event"] == "on_custom_event"
    ]

    assert custom and all(e["name"] == PROGRESS_EVENT for e in custom)
    data = [e["data"] for e in custom]
    assert all(d["tool"] == "parallel_research" and d["run_id"].startswith("trun_") for d in data)
    assert any(d["message"] for d in data), data
    await research.aclose()


@pytest.mark.parallel_emulator(time_scale=0.015, max_result_hold=0.1)
def test_progress_reaches_the_langgraph_stream_writer(parallel_emulator: EmulatorServer) -> None:
    research = ParallelResearchTool(**kw(parallel_emulator), processor="lite", heartbeat=1)
    model = ScriptedChatModel(
        turns=[call("parallel_research", {"question": "Who?"}, "c1"), answer()]
    )
    agent = create_agent(model, tools=[research])
    chunks = list(agent.stream({"messages": [HumanMessage("Who?")]}, stream_mode="custom"))

    assert chunks and all(c["event"] == PROGRESS_EVENT for c in chunks)
    assert {c["run_id"] for c in chunks} == {chunks[0]["run_id"]}
    research.close()
