"""LangChain's standard tool suites (langchain-tests) for every Parallel tool.

The unit suites construct each tool and check its schema; the integration suites invoke each
tool end to end against the emulator (the tools find it through PARALLEL_API_KEY and
PARALLEL_BASE_URL, which is also what the env-init unit test covers). No standard test is
skipped or overridden.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests
from pydantic import BaseModel, Field

from parallel_tools import Task, TaskClient
from parallel_tools.langchain import (
    ParallelGetResultTool,
    ParallelResearchTool,
    ParallelStartTool,
    ParallelTaskTool,
)

if TYPE_CHECKING:
    from parallel_tools.emulator import EmulatorServer


class CompanyInput(BaseModel):
    """A company to profile."""

    company_name: str = Field(description="The company's legal or common name.")
    company_website: str = Field(default="", description="Its website, if known.")


class CompanyProfile(BaseModel):
    """What we want to know about a company."""

    founding_year: str = Field(description="The year it was founded, YYYY.")
    ceo: str = Field(description="The current CEO's full name.")


PROFILE = Task(
    "company_profile",
    "Profile a company: the year it was founded and its current CEO.",
    input=CompanyInput,
    output=CompanyProfile,
)
SUMMARY = Task("summarize_topic", "Summarize what is known about a topic.", output="A summary")


class _ToolFixture:
    """Closes the clients each test's tool created, so no connection outlives its test's
    event loop (the fixture is async so that it tears down on the loop the test used)."""

    @pytest.fixture
    async def tool(self) -> AsyncIterator[BaseTool]:
        constructor: Any = self.tool_constructor  # type: ignore[attr-defined]
        tool = constructor(**self.tool_constructor_params)  # type: ignore[attr-defined]
        yield tool
        await tool.aclose()


class _OnEmulator(_ToolFixture):
    """Points the tools at the test's emulator through the environment."""

    server: EmulatorServer

    @pytest.fixture(autouse=True)
    def _use_emulator(
        self, parallel_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name, value in parallel_emulator.env.items():
            monkeypatch.setenv(name, value)
        self.server = parallel_emulator


class _Case:
    """One tool configuration, written once; the suites read it through their properties."""

    TOOL: ClassVar[type[BaseTool]]
    PARAMS: ClassVar[dict[str, Any]] = {}
    EXAMPLE: ClassVar[dict[str, Any]]

    @property
    def tool_constructor(self) -> type[BaseTool]:
        return self.TOOL

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return dict(self.PARAMS)

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return dict(self.EXAMPLE)


class _Unit(_Case, _ToolFixture, ToolsUnitTests):
    """The unit suite: a literal key, and the same tool built from PARALLEL_API_KEY."""

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {**self.PARAMS, "api_key": "test-key"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        params = {"task": self.PARAMS["task"]} if "task" in self.PARAMS else {}
        return {"PARALLEL_API_KEY": "key-from-env"}, params, {"api_key": "key-from-env"}


class _Integration(_Case, _OnEmulator, ToolsIntegrationTests):
    """The integration suite, end to end against the emulator."""


# --- ParallelTaskTool with an input model ----------------------------------------------------


class TestTypedTaskToolUnit(_Unit):
    TOOL = ParallelTaskTool
    PARAMS = {"task": PROFILE}
    EXAMPLE = {"company_name": "Parallel Web Systems"}


class TestTypedTaskToolIntegration(_Integration):
    TOOL = ParallelTaskTool
    PARAMS = {"task": PROFILE}
    EXAMPLE = {"company_name": "Parallel Web Systems", "previous_interaction_id": ""}


# --- ParallelTaskTool with free-text input ---------------------------------------------------


class TestTextTaskToolUnit(_Unit):
    TOOL = ParallelTaskTool
    PARAMS = {"task": SUMMARY, "processor": "lite"}
    EXAMPLE = {"input": "The history of the Eiffel Tower"}


class TestTextTaskToolIntegration(_Integration):
    TOOL = ParallelTaskTool
    PARAMS = {"task": SUMMARY, "processor": "lite"}
    EXAMPLE = {"input": "The history of the Eiffel Tower"}


# --- ParallelResearchTool ----------------------------------------------------------------------


class TestResearchToolUnit(_Unit):
    TOOL = ParallelResearchTool
    EXAMPLE = {"question": "When was the United Nations founded?", "output_description": ""}


class TestResearchToolIntegration(_Integration):
    TOOL = ParallelResearchTool
    EXAMPLE = {
        "question": "When was the United Nations founded?",
        "output_description": "The founding date, MM-YYYY",
    }


# --- ParallelStartTool (for a task, and for free-form research) --------------------------------


class TestStartTaskToolUnit(_Unit):
    TOOL = ParallelStartTool
    PARAMS = {"task": PROFILE}
    EXAMPLE = {"company_name": "Parallel Web Systems"}


class TestStartTaskToolIntegration(_Integration):
    TOOL = ParallelStartTool
    PARAMS = {"task": PROFILE}
    EXAMPLE = {"company_name": "Parallel Web Systems"}


class TestStartResearchToolUnit(_Unit):
    TOOL = ParallelStartTool
    EXAMPLE = {"question": "Who founded Parallel Web Systems?"}


class TestStartResearchToolIntegration(_Integration):
    TOOL = ParallelStartTool
    EXAMPLE = {"question": "Who founded Parallel Web Systems?", "output_description": ""}


# --- ParallelGetResultTool ---------------------------------------------------------------------


class TestGetResultToolUnit(_Unit):
    TOOL = ParallelGetResultTool
    PARAMS = {"tasks": [PROFILE]}
    EXAMPLE = {"run_id": "trun_0123456789abcdef"}


class TestGetResultToolIntegration(_Integration):
    TOOL = ParallelGetResultTool
    PARAMS = {"tasks": [PROFILE], "wait": 30}
    run_id: str

    @pytest.fixture(autouse=True)
    def _started_run(self, _use_emulator: None) -> None:
        # The example call needs a run that exists: start one the way an agent would.
        with TaskClient(api_key=self.server.api_key, base_url=self.server.base_url) as client:
            self.run_id = client.create_run(
                PROFILE.prepare_input({"company_name": "Parallel Web Systems"}),
                task_spec=PROFILE.spec,
                metadata={"pt_task": PROFILE.name},
            ).run_id

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"run_id": self.run_id}
