"""`ParallelToolkit`: the tools an agent needs for Parallel research, configured once."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool, BaseToolkit
from langchain_core.utils import secret_from_env
from pydantic import ConfigDict, Field, SecretStr, field_validator

from .._client import AsyncTaskClient, TaskClient
from .._config import API_KEY_ENV, get_processor
from .._tasks import Task
from ._content import ContentFormat
from ._tools import (
    DEFAULT_RESULT_TOOL,
    ParallelGetResultTool,
    ParallelResearchTool,
    ParallelStartTool,
    ParallelTaskTool,
)

__all__ = ["ParallelToolkit"]


class ParallelToolkit(BaseToolkit):
    """Research tools for an agent: wait for answers, or start runs and collect them later.

    `get_tools()` returns, for each task in `tasks` and (with `research`) for free-form
    questions:

    - with `blocking`: a tool that waits up to `wait` seconds for the cited answer
      (`ParallelTaskTool` named after the task, `ParallelResearchTool` named
      `parallel_research`); a longer run ends with its run id and a pointer to the result tool;
    - with `start`: a tool that starts the run and returns its id at once
      (`start_<task name>`, `parallel_start_research`);

    and always `parallel_get_result` (`ParallelGetResultTool`), which returns a run's status
    or cited answer, waiting up to `result_wait` seconds. Every tool shares the settings below.

    Example:
        >>> toolkit = ParallelToolkit(tasks=[company_profile], processor="base", wait=60)
        >>> agent = create_agent(model, tools=toolkit.get_tools())
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    tasks: list[Task[Any, Any]] = Field(default_factory=list)
    """Typed tasks to offer, each as its own tools."""
    research: bool = True
    """Offer the generic research tools (question + output description)."""
    blocking: bool = True
    """Offer tools that wait for the answer."""
    start: bool = True
    """Offer tools that start a run and return its id at once."""
    wait: float | None = Field(default=300.0, ge=0)
    """Seconds the waiting tools wait before handing over the run id; None: no limit."""
    result_wait: float = Field(default=60.0, ge=0)
    """Seconds `parallel_get_result` waits for an unfinished run before giving its status."""
    processor: str | None = None
    """The processor for every tool (default: each task's own, "base" for free-form research)."""
    run_options: dict[str, Any] = Field(default_factory=dict)
    """Other fields for every run (`metadata`, `source_policy`, `mcp_servers`, ...)."""
    api_key: SecretStr = Field(default_factory=secret_from_env(API_KEY_ENV, default=""))
    """The Parallel API key (default: `PARALLEL_API_KEY`)."""
    base_url: str | None = None
    """The API's URL (default: `PARALLEL_BASE_URL`, else the public API)."""
    client: TaskClient | None = Field(default=None, exclude=True)
    """A sync client shared by every tool (else each tool creates its own on first use)."""
    async_client: AsyncTaskClient | None = Field(default=None, exclude=True)
    """An async client shared by every tool (else each tool creates its own on first use)."""
    progress: bool = True
    """Relay runs' progress to LangChain custom events and the LangGraph stream."""
    follow_ups: bool = True
    """Let the model pass `previous_interaction_id` for follow-ups."""
    content_format: ContentFormat = "markdown"
    """What the model reads: `"markdown"` or `"json"` (see `ParallelTaskTool`)."""

    @field_validator("processor")
    @classmethod
    def _known_processor(cls, value: str | None) -> str | None:
        if value is not None:
            get_processor(value)
        return value

    @field_validator("tasks")
    @classmethod
    def _unique_names(cls, value: list[Task[Any, Any]]) -> list[Task[Any, Any]]:
        names = [task.name for task in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Task names must be unique; repeated: {', '.join(duplicates)}.")
        return value

    def _shared(self) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "client": self.client,
            "async_client": self.async_client,
            "progress": self.progress,
            "content_format": self.content_format,
            "follow_ups": self.follow_ups,
        }

    def get_tools(self) -> list[BaseTool]:
        """The configured tools: waiting tools, then start tools, then the result tool."""
        shared = self._shared()
        running = {
            **shared,
            "processor": self.processor,
            "run_options": self.run_options,
            "result_tool_name": DEFAULT_RESULT_TOOL,
        }
        tools: list[BaseTool] = []
        if self.blocking:
            tools += [ParallelTaskTool(task=t, wait=self.wait, **running) for t in self.tasks]
            if self.research:
                tools.append(ParallelResearchTool(wait=self.wait, **running))
        if self.start:
            tools += [ParallelStartTool(task=t, **running) for t in self.tasks]
            if self.research:
                tools.append(ParallelStartTool(**running))
        tools.append(ParallelGetResultTool(tasks=list(self.tasks), wait=self.result_wait, **shared))
        return tools
