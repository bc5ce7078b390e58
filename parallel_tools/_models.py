"""Wire objects of the Task API, as pydantic models.

They accept unknown fields (kept in `model_extra`) so a newer server never breaks an older
client, and they serialise back to the exact wire shape with `model_dump(mode="json")`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Citation",
    "ErrorEvent",
    "ErrorObject",
    "FieldBasis",
    "GroupEvent",
    "JsonOutput",
    "McpToolCall",
    "ProgressMessageEvent",
    "ProgressStatsEvent",
    "RunEvent",
    "RunStateEvent",
    "RunStatus",
    "RunWarning",
    "SourceStats",
    "TaskGroup",
    "TaskGroupRunResponse",
    "TaskGroupStatus",
    "TaskGroupStatusEvent",
    "TaskOutput",
    "TaskRun",
    "TaskRunResult",
    "TextOutput",
    "UnknownEvent",
]

RunStatus: TypeAlias = Literal[
    "queued", "action_required", "running", "completed", "failed", "cancelling", "cancelled"
]
ACTIVE_STATUSES: frozenset[str] = frozenset({"queued", "running", "cancelling"})
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ErrorObject(_Wire):
    """An error as the API reports it (`ErrorResponse.error`, `TaskRun.error`, SSE `error`)."""

    ref_id: str | None = None
    message: str = ""
    detail: Any = None


class RunWarning(_Wire):
    """A warning attached to a run (e.g. a schema that Parallel accepted with reservations)."""

    type: str = "warning"
    message: str = ""
    detail: Any = None


class TaskRun(_Wire):
    """A task run's status. `is_active` is true while it is queued, running or cancelling."""

    run_id: str
    interaction_id: str | None = None
    status: str
    is_active: bool
    processor: str = ""
    metadata: dict[str, Any] | None = None
    taskgroup_id: str | None = None
    warnings: list[RunWarning] | None = None
    error: ErrorObject | None = None
    created_at: str | None = None
    modified_at: str | None = None


class Citation(_Wire):
    """A source behind a field: its URL, title and the excerpts that support the answer."""

    url: str
    title: str | None = None
    excerpts: list[str] | None = None


class FieldBasis(_Wire):
    """Why a field has its value: citations, the processor's reasoning and its confidence.

    `field` is a top-level field name, a dot path into nested values (`key_people.0.name`), or
    `"output"` for text outputs.
    """

    field: str
    reasoning: str = ""
    citations: list[Citation] = Field(default_factory=list)
    confidence: str | None = None


class McpToolCall(_Wire):
    """One call the processor made to an MCP server given in `mcp_servers`."""

    tool_call_id: str = ""
    server_name: str = ""
    tool_name: str = ""
    arguments: str = ""
    content: str | None = None
    error: str | None = None


class TextOutput(_Wire):
    """A text answer (markdown for deep research), with one basis entry for `"output"`."""

    type: Literal["text"] = "text"
    content: str
    basis: list[FieldBasis] = Field(default_factory=list)
    mcp_tool_calls: list[McpToolCall] | None = None


class JsonOutput(_Wire):
    """A structured answer: `content` holds one key per output-schema property.

    `output_schema` is only set for runs with an auto schema, where the processor chose it.
    """

    type: Literal["json"] = "json"
    content: Any
    basis: list[FieldBasis] = Field(default_factory=list)
    mcp_tool_calls: list[McpToolCall] | None = None
    output_schema: dict[str, Any] | None = None


TaskOutput: TypeAlias = Annotated[TextOutput | JsonOutput, Field(discriminator="type")]


class TaskRunResult(_Wire):
    """What `/result` returns for a completed run: the run and its output."""

    run: TaskRun
    output: TaskOutput


class TaskGroupStatus(_Wire):
    """Counts of a group's runs by status; `is_active` while any run is still going."""

    num_task_runs: int = 0
    task_run_status_counts: dict[str, int] = Field(default_factory=dict)
    is_active: bool = False
    status_message: str | None = None
    modified_at: str | None = None


class TaskGroup(_Wire):
    """A task group: a batch of runs that are tracked and streamed together."""

    taskgroup_id: str
    metadata: dict[str, Any] | None = None
    status: TaskGroupStatus = Field(default_factory=TaskGroupStatus)
    created_at: str | None = None


class TaskGroupRunResponse(_Wire):
    """The answer to adding runs to a group: their ids and cursors for the group's streams."""

    status: TaskGroupStatus = Field(default_factory=TaskGroupStatus)
    run_ids: list[str] = Field(default_factory=list)
    run_cursor: str | None = None
    event_cursor: str | None = None


# --- Server-sent events -------------------------------------------------------------------------


class RunStateEvent(_Wire):
    """`task_run.state`: the run's status; the last one of a completed run carries its output."""

    type: Literal["task_run.state"] = "task_run.state"
    event_id: str | None = None
    run: TaskRun
    input: dict[str, Any] | None = None
    output: TaskOutput | None = None


class ProgressMessageEvent(_Wire):
    """`task_run.progress_msg.*`: a line of the processor's reasoning trace (plan, search, ...)."""

    type: str
    message: str = ""
    timestamp: str | None = None

    @property
    def kind(self) -> str:
        """The message kind after the prefix: `plan`, `search`, `result`, `tool_call`, ..."""
        return self.type.removeprefix("task_run.progress_msg.")


class SourceStats(_Wire):
    """How many sources the run has considered and read so far."""

    num_sources_considered: int | None = None
    num_sources_read: int | None = None
    sources_read_sample: list[str] | None = None


class ProgressStatsEvent(_Wire):
    """`task_run.progress_stats`: source counts and a 0-100 progress meter."""

    type: Literal["task_run.progress_stats"] = "task_run.progress_stats"
    source_stats: SourceStats = Field(default_factory=SourceStats)
    progress_meter: float | None = None


class TaskGroupStatusEvent(_Wire):
    """`task_group_status`: the group's counts changed."""

    type: Literal["task_group_status"] = "task_group_status"
    event_id: str | None = None
    status: TaskGroupStatus


class ErrorEvent(_Wire):
    """`error`: the stream reports an error instead of closing silently."""

    type: Literal["error"] = "error"
    error: ErrorObject = Field(default_factory=ErrorObject)
    event_id: str | None = None


class UnknownEvent(_Wire):
    """An event this version does not know. Kept whole, never forced into another type.

    Attributes:
        type: The event's `type` (from the JSON, else the SSE `event:` field).
        data: The parsed JSON payload, or None when it was not JSON.
        raw: The event's data as sent.
    """

    type: str
    data: Any = None
    raw: str = ""
    event_id: str | None = None


RunEvent: TypeAlias = (
    RunStateEvent | ProgressMessageEvent | ProgressStatsEvent | ErrorEvent | UnknownEvent
)
"""Anything a run's event stream yields."""

GroupEvent: TypeAlias = TaskGroupStatusEvent | RunStateEvent | ErrorEvent | UnknownEvent
"""Anything a group's event stream yields."""
