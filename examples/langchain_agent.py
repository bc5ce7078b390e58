"""A LangChain agent that researches with Parallel: a typed task and free-form research.

Run it with `python examples/langchain_agent.py`. It needs the `[langchain]` and `[emulator]`
extras plus `langchain` (for `create_agent`):

    pip install "parallel-tools[langchain,emulator]" langchain

Without PARALLEL_API_KEY it starts the emulator in-process and works offline (answers are
emulated). With a key it uses Parallel's API: two `lite` runs, about a cent.

No LLM is needed: a scripted chat model plays the model's part, calling the two tools and then
answering from their cited results. To use a real model, replace `ScriptedModel(...)` with one,
e.g. `init_chat_model("openai:gpt-5-mini")`, and drop the script.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, Field

from parallel_tools import PROCESSORS, Task, TaskResult
from parallel_tools.langchain import ParallelResearchTool, ParallelTaskTool

PROCESSOR = "lite"


class CompanyInput(BaseModel):
    """The company to profile."""

    company_name: str = Field(description="The company's name.")
    company_website: str = Field(default="", description="Its website, if known.")


class CompanyProfile(BaseModel):
    """A short company profile."""

    founding_year: str = Field(description="The year it was founded, YYYY; 'unknown' if unsure.")
    headquarters: str = Field(description="The city and country of its headquarters.")


company_profile = Task(
    "company_profile",
    "Profile a company: the year it was founded and where it is headquartered.",
    input=CompanyInput,
    output=CompanyProfile,
    processor=PROCESSOR,
)


class ScriptedModel(BaseChatModel):
    """Stands in for an LLM: calls the profile tool, then the research tool, then answers."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        turn = sum(isinstance(m, AIMessage) for m in messages)
        if turn == 0:
            reply = AIMessage(
                "",
                tool_calls=[
                    {
                        "name": "company_profile",
                        "args": {"company_name": "Parallel Web Systems"},
                        "id": "call_profile",
                    }
                ],
            )
        elif turn == 1:
            reply = AIMessage(
                "",
                tool_calls=[
                    {
                        "name": "parallel_research",
                        "args": {
                            "question": "What does Parallel Web Systems' Task API do?",
                            "output_description": "Two sentences for a developer.",
                        },
                        "id": "call_research",
                    }
                ],
            )
        else:
            cited = [m for m in messages if isinstance(m, ToolMessage) and m.status == "success"]
            reply = AIMessage(f"Done: {len(cited)} cited answers above, sources numbered [n].")
        return ChatResult(generations=[ChatGeneration(message=reply)])


@contextlib.contextmanager
def parallel_api() -> Iterator[dict[str, Any]]:
    """Settings for the tools: the real API with a key, else an in-process emulator."""
    if os.environ.get("PARALLEL_API_KEY"):
        cost = 2 * PROCESSORS[PROCESSOR].price_per_run
        print(f"Using Parallel's API (two {PROCESSOR} runs, about ${cost:.3f}).")
        yield {}
        return
    from parallel_tools.emulator import Emulator

    with Emulator(time_scale=0.001).serve(port=0) as server:
        print(f"Using the local emulator at {server.base_url}: no PARALLEL_API_KEY is set, so")
        print("the answers below are emulated, not researched.")
        yield {"api_key": server.api_key, "base_url": server.base_url}


def main() -> None:
    with parallel_api() as settings:
        tools = [
            ParallelTaskTool.from_task(company_profile, wait=120, **settings),
            ParallelResearchTool(processor=PROCESSOR, wait=120, **settings),
        ]
        agent = create_agent(ScriptedModel(), tools=tools)
        question = "Tell me about Parallel Web Systems and its Task API."
        out = agent.invoke({"messages": [HumanMessage(question)]})
        for message in out["messages"]:
            if isinstance(message, ToolMessage):
                print(f"\n--- {message.name} ({message.status}) " + "-" * 40)
                print(message.text)
                if isinstance(message.artifact, TaskResult):
                    print(f"(artifact: TaskResult, parsed = {message.artifact.parsed!r:.100})")
        print(f"\nAgent: {out['messages'][-1].text}")
        for tool in tools:
            tool.close()


if __name__ == "__main__":
    main()
