"""LangChain tools over Parallel's Task API.

- `ParallelTaskTool`: runs a `Task` and waits for the cited answer, up to a wait budget.
- `ParallelResearchTool`: the same for free-form questions (question + output description).
- `ParallelStartTool`: starts a run and returns its id at once (the asynchronous pattern).
- `ParallelGetResultTool`: the status of a run, or its cited answer once it has one.

Every tool is native on both paths (`_run` over `TaskClient`, `_arun` over `AsyncTaskClient`),
keeps one lazily created client per tool, turns expected failures into handled tool errors,
and answers with `content_and_artifact`: compact citable text for the model, and the full
`TaskResult` (or `TaskRun`) as the artifact.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, cast

from langchain_core.messages import ToolCall
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_config_list
from langchain_core.tools import BaseTool, ToolException
from langchain_core.tools.base import ArgsSchema, ToolExceptionHandlerOutput
from langchain_core.utils import secret_from_env
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.v1 import ValidationError as ValidationErrorV1

from .._base import CreateOptions, RunOutcome
from .._client import AsyncTaskClient, TaskClient
from .._config import API_KEY_ENV, DEFAULT_PROCESSOR, PROCESSORS, get_processor
from .._exceptions import (
    InvalidInputError,
    OutputValidationError,
    ParallelError,
    TaskTimeoutError,
)
from .._models import TaskRun, TaskRunResult
from .._results import TaskResult
from .._tasks import TASK_METADATA_KEY, Task, task_of
from ._content import ContentFormat, pending_content, result_content, started_content
from ._errors import tool_error, validation_error_message
from ._progress import ProgressRelay

__all__ = [
    "TASK_METADATA_KEY",
    "GetResultInput",
    "ParallelGetResultTool",
    "ParallelResearchTool",
    "ParallelStartTool",
    "ParallelTaskTool",
    "ResearchInput",
    "TextInput",
]


DEFAULT_RESULT_TOOL = "parallel_get_result"

_FOLLOW_UP = "previous_interaction_id"
_FOLLOW_UP_DESCRIPTION = (
    "To ask a follow-up in the context of an earlier answer: the previous_interaction_id that "
    "answer gave. Otherwise an empty string."
)
_DEFAULT_ANSWER = "A concise, factual answer to the question."
# Options the developer may set for every run; the processor and the follow-up id have their
# own settings.
_RUN_OPTIONS = CreateOptions.__optional_keys__ - {"processor", _FOLLOW_UP}


class ResearchInput(BaseModel):
    """The arguments of the generic research tools."""

    question: str = Field(
        description=(
            "The research question, self-contained: include the names, places, dates and "
            "context needed, since the researcher sees nothing else."
        )
    )
    output_description: str = Field(
        default="",
        description=(
            "What the answer should contain and in what form, e.g. \"The CEO's full name and "
            'the year they took office". An empty string asks for a concise answer.'
        ),
    )


class TextInput(BaseModel):
    """The argument of a task tool whose task takes free text."""

    input: str = Field(
        description=(
            "What to research: a question or the subject, in plain language, with the context "
            "needed."
        )
    )


class GetResultInput(BaseModel):
    """The argument of the get-result tool."""

    run_id: str = Field(
        description='The run id a research tool returned, e.g. "trun_..."; exactly as given.'
    )


def _args_schema(task: Task[Any, Any] | None, follow_ups: bool) -> type[BaseModel]:
    """The model-visible arguments: the task's input (or the research question), plus an
    optional follow-up id. The follow-up id is a string defaulting to "" rather than an
    Optional, so it keeps a plain type under OpenAI strict mode and for providers that
    reject `anyOf`."""
    if task is None:
        base: type[BaseModel] = ResearchInput
    elif task.input_model is not None:
        base = task.input_model
    else:
        base = TextInput
    if not follow_ups:
        return base
    if _FOLLOW_UP in base.model_fields:
        raise ValueError(
            f"The input model {base.__name__} has its own {_FOLLOW_UP!r} field; pass "
            "follow_ups=False to keep it as the task's input."
        )
    fields: Any = {_FOLLOW_UP: (str, Field(default="", description=_FOLLOW_UP_DESCRIPTION))}
    # Same name, docstring and module as the input model: the schema the model sees keeps the
    # developer's title, and the subclass still validates like the original.
    return create_model(
        base.__name__,
        __base__=base,
        __module__=base.__module__,
        __doc__=base.__doc__,
        **fields,
    )


def _typical_duration(processor: str) -> str | None:
    spec = PROCESSORS.get(processor)
    if spec is None:
        return None
    if spec.max_seconds < 120:
        return f"{spec.min_seconds:.0f}-{spec.max_seconds:.0f} seconds"
    return f"{spec.min_seconds / 60:.0f}-{spec.max_seconds / 60:.0f} minutes"


def _mismatch_note(exc: OutputValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors[:3]
    )
    return (
        f"Note: the answer does not fit the expected fields ({problems}); it is given as "
        "Parallel returned it."
    )


# --- Shared configuration and clients -----------------------------------------------------------


class _ParallelTool(BaseTool):
    """Settings and clients shared by every Parallel tool."""

    api_key: SecretStr = Field(default_factory=secret_from_env(API_KEY_ENV, default=""))
    """The Parallel API key (default: `PARALLEL_API_KEY`); never shown in reprs or messages."""
    base_url: str | None = None
    """The API's URL (default: `PARALLEL_BASE_URL`, else the public API); e.g. an emulator."""
    client: TaskClient | None = Field(default=None, exclude=True)
    """A sync client to use instead of one built from `api_key` and `base_url`."""
    async_client: AsyncTaskClient | None = Field(default=None, exclude=True)
    """An async client to use instead of one built from `api_key` and `base_url`."""
    progress: bool = True
    """Relay the run's progress to LangChain custom events and the LangGraph stream."""
    heartbeat: float = Field(default=5.0, gt=0)
    """Seconds between progress updates at most (the sync path reports at this pace)."""
    content_format: ContentFormat = "markdown"
    """`"markdown"`: answer with [n] markers and numbered sources; `"json"`: `CitedAnswer`."""
    max_content_tokens: int | None = Field(default=20_000, gt=0)
    """Cut a markdown answer to about this many tokens (long deep-research reports would
    otherwise fill the model's context); the artifact keeps everything. None: no limit."""
    follow_ups: bool = True
    """Let the model pass `previous_interaction_id` to ask follow-ups in context."""

    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | Callable[[ToolException], ToolExceptionHandlerOutput] | None = (
        True
    )
    handle_validation_error: (
        bool | str | Callable[[ValidationError | ValidationErrorV1], str] | None
    ) = validation_error_message

    _own_client: TaskClient | None = PrivateAttr(default=None)
    _own_async: AsyncTaskClient | None = PrivateAttr(default=None)
    _own_async_loop: weakref.ref[asyncio.AbstractEventLoop] | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _sync_client(self) -> TaskClient:
        """The sync client: the injected one, else one created on first use and kept."""
        if self.client is not None:
            return self.client
        with self._lock:
            if self._own_client is None:
                self._own_client = TaskClient(
                    api_key=self.api_key.get_secret_value() or None, base_url=self.base_url
                )
            return self._own_client

    def _async_client(self) -> AsyncTaskClient:
        """The async client: the injected one, else one per event loop, created on first use.

        httpx's async connections belong to the loop that opened them, so a tool used from a
        new loop (e.g. successive `asyncio.run` calls) gets a new client.
        """
        if self.async_client is not None:
            return self.async_client
        loop = asyncio.get_running_loop()
        bound = self._own_async_loop() if self._own_async_loop is not None else None
        if self._own_async is None or bound is not loop:
            self._own_async = AsyncTaskClient(
                api_key=self.api_key.get_secret_value() or None, base_url=self.base_url
            )
            self._own_async_loop = weakref.ref(loop)
        return self._own_async

    def close(self) -> None:
        """Close the sync client this tool created (an injected one is left open)."""
        with self._lock:
            client, self._own_client = self._own_client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the clients this tool created (injected ones are left open)."""
        self.close()
        client, self._own_async = self._own_async, None
        bound = self._own_async_loop() if self._own_async_loop is not None else None
        # A client from another (possibly closed) loop cannot be closed from this one.
        if client is not None and bound is asyncio.get_running_loop():
            await client.aclose()

    def _wait(
        self, client: TaskClient, run_id: str, timeout: float | None, relay: ProgressRelay
    ) -> TaskRunResult:
        if not self.progress:
            return client.wait(run_id, timeout=timeout)
        return client.wait_with_progress(
            run_id, relay.relay, timeout=timeout, heartbeat=self.heartbeat
        )

    async def _await(
        self, client: AsyncTaskClient, run_id: str, timeout: float | None, relay: ProgressRelay
    ) -> TaskRunResult:
        if not self.progress:
            return await client.wait(run_id, timeout=timeout)
        return await client.wait_with_progress(
            run_id, relay.arelay, timeout=timeout, heartbeat=self.heartbeat
        )

    def _content(self, result: TaskResult[Any], note: str | None = None) -> str:
        return result_content(
            result,
            content_format=self.content_format,
            follow_ups=self.follow_ups,
            note=note,
            max_tokens=self.max_content_tokens,
        )


# --- Running tasks --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Request:
    """One tool call, resolved: the task to run, its API input and the follow-up id."""

    task: Task[Any, Any]
    input: str | dict[str, Any]
    previous_interaction_id: str


@dataclass(frozen=True, slots=True)
class _Prefetched:
    """The outcome of one batch item, fetched through a task group before the item's call."""

    owner: int
    outcome: RunOutcome[Any] | None = None
    error: Exception | None = None


# `batch` runs every item through one task group first, then lets each item go through the
# normal `invoke` (callbacks, ToolMessage, error handling) with its outcome waiting here.
_PREFETCHED: ContextVar[_Prefetched | None] = ContextVar("parallel_tools_prefetched", default=None)


class _TaskRunner(_ParallelTool):
    """Turns tool arguments into a run of a task (or of a free-form research question)."""

    task: Task[Any, Any] | None = None
    """The task; None for the generic research tools."""
    processor: str | None = None
    """The processor (default: the task's, else "base"); it sets price and depth."""
    run_options: dict[str, Any] = Field(default_factory=dict)
    """Other fields for every run: `metadata`, `source_policy`, `mcp_servers`, `webhook`, ..."""
    result_tool_name: str = DEFAULT_RESULT_TOOL
    """The tool agents are told to call to collect a run's answer later."""

    @classmethod
    def from_task(
        cls,
        task: Task[Any, Any],
        client: TaskClient | AsyncTaskClient | None = None,
        **kwargs: Any,
    ) -> Self:
        """A tool for `task`.

        Args:
            task: The task definition.
            client: A `TaskClient` or `AsyncTaskClient` to use (else one is created from
                `api_key`/`base_url` or the environment on first use).
            **kwargs: Other fields: `wait` (seconds to wait for the answer; None waits as long
                as the run takes), `processor`, `api_key`, `base_url`, `run_options`,
                `follow_ups`, `progress`, `content_format`, `result_tool_name`, `name`, ...
        """
        if isinstance(client, AsyncTaskClient):
            kwargs["async_client"] = client
        elif client is not None:
            kwargs["client"] = client
        return cls(task=task, **kwargs)

    _generic: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _derive_from_task(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        task = data.get("task")
        if task is None and not cls._generic:
            raise ValueError(
                f"{cls.__name__} needs a task; use ParallelResearchTool for free-form questions."
            )
        if task is not None and not isinstance(task, Task):
            raise ValueError(f"task must be a parallel_tools.Task, not {type(task).__name__}.")
        if "args_schema" in data:
            raise ValueError("The args schema comes from the task; don't pass args_schema.")
        data["args_schema"] = _args_schema(task, data.get("follow_ups", True))
        if task is not None:
            result_tool = data.get("result_tool_name", DEFAULT_RESULT_TOOL)
            data.setdefault("name", cls._task_name(task))
            data.setdefault("description", cls._task_description(task, result_tool))
        return data

    @classmethod
    def _task_name(cls, task: Task[Any, Any]) -> str:
        return task.name

    @classmethod
    def _task_description(cls, task: Task[Any, Any], result_tool: str) -> str:
        return task.description

    @field_validator("processor")
    @classmethod
    def _known_processor(cls, value: str | None) -> str | None:
        if value is not None:
            get_processor(value)
        return value

    @field_validator("run_options")
    @classmethod
    def _known_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - _RUN_OPTIONS)
        if unknown:
            raise ValueError(
                f"Unknown run option(s) {', '.join(unknown)}; use any of "
                f"{', '.join(sorted(_RUN_OPTIONS))} (processor and follow-ups have their own "
                "settings)."
            )
        return value

    def _processor_for(self, task: Task[Any, Any]) -> str:
        return self.processor or task.processor or DEFAULT_PROCESSOR

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        # A plain string input reaches `_run` positionally; it fills the first argument, as
        # LangChain validated it.
        if args:
            schema = cast(type[BaseModel], self.args_schema)
            kwargs = {next(iter(schema.model_fields)): args[0], **kwargs}
        return kwargs

    def _request(self, arguments: dict[str, Any]) -> _Request:
        """Resolve validated tool arguments into a run request.

        Raises:
            InvalidInputError: the input is empty or does not fit the task.
        """
        fields = dict(arguments)
        follow_up = str(fields.pop(_FOLLOW_UP, "") or "").strip()
        if self.task is None:
            description = str(fields.get("output_description") or "").strip()
            task: Task[Any, Any] = Task(
                "research",
                "Research a question on the web.",
                output=description or _DEFAULT_ANSWER,
                processor=self.processor or DEFAULT_PROCESSOR,
            )
            value: Any = str(fields.get("question") or "")
            if not value.strip():
                raise InvalidInputError("The question is empty; say what to research.")
        else:
            task = self.task
            value = fields if task.input_model is not None else fields.get("input", "")
        return _Request(task, task.prepare_input(value), follow_up)

    def _create_options(self, request: _Request, *, follow_up: bool = True) -> CreateOptions:
        options = cast(CreateOptions, dict(self.run_options))
        options["processor"] = self._processor_for(request.task)
        if self.task is not None:
            metadata = dict(options.get("metadata") or {})
            metadata.setdefault(TASK_METADATA_KEY, self.task.name)
            options["metadata"] = metadata
        if self.progress:
            options.setdefault("enable_events", True)
        if follow_up and request.previous_interaction_id:
            options["previous_interaction_id"] = request.previous_interaction_id
        return options

    def _create(self, request: _Request) -> TaskRun:
        return self._sync_client().create_run(
            request.input, task_spec=request.task.spec, **self._create_options(request)
        )

    async def _acreate(self, request: _Request) -> TaskRun:
        return await self._async_client().create_run(
            request.input, task_spec=request.task.spec, **self._create_options(request)
        )


class ParallelTaskTool(_TaskRunner):
    """A tool that runs a `Task` and answers with its cited result.

    The model-visible arguments are the task's input model (a free-text `input` for tasks
    without one) plus `previous_interaction_id` for follow-ups; the name and description come
    from the task. The processor, the wait budget, the key and the URL are the developer's.

    The tool waits up to `wait` seconds. A run that takes longer is not cancelled: the tool
    ends with an error telling the agent to collect the answer with `result_tool_name` (a
    `ParallelGetResultTool`, e.g. from `ParallelToolkit`).

    Content is the answer with numbered citation markers and numbered sources; the artifact is
    the `TaskResult` (parsed output, basis, run and interaction ids). `batch`/`abatch` run all
    inputs through one task group.

    Example:
        >>> tool = ParallelTaskTool.from_task(company_profile, wait=120)
        >>> message = tool.invoke({"type": "tool_call", "id": "1", "name": tool.name,
        ...                        "args": {"company_name": "Parallel Web Systems"}})
        >>> message.artifact.parsed.founding_date
    """

    wait: float | None = Field(default=300.0, ge=0)
    """Seconds to wait for the answer before handing the agent the run id; None: no limit."""

    @classmethod
    def _task_description(cls, task: Task[Any, Any], result_tool: str) -> str:
        return (
            f"{task.description.rstrip()}\n\nReturns the answer with numbered citations [n] "
            "and the numbered sources; cite them."
        )

    # --- One call ------------------------------------------------------------------------------

    def _run(self, *args: Any, **kwargs: Any) -> tuple[str, TaskResult[Any]]:
        prefetched = _claim(self)
        if prefetched is not None:
            return self._settle(prefetched)
        try:
            request = self._request(self._arguments(args, kwargs))
            run = self._create(request)
            relay = ProgressRelay(self.name)
            raw = self._wait(self._sync_client(), run.run_id, self.wait, relay)
            result = TaskResult.from_run_result(raw, request.task.output_model)
        except OutputValidationError as exc:
            return self._content(exc.result, _mismatch_note(exc)), exc.result
        except ParallelError as exc:
            raise tool_error(exc, result_tool=self.result_tool_name) from exc
        return self._content(result), result

    async def _arun(self, *args: Any, **kwargs: Any) -> tuple[str, TaskResult[Any]]:
        prefetched = _claim(self)
        if prefetched is not None:
            return self._settle(prefetched)
        try:
            request = self._request(self._arguments(args, kwargs))
            run = await self._acreate(request)
            relay = ProgressRelay(self.name)
            raw = await self._await(self._async_client(), run.run_id, self.wait, relay)
            result = TaskResult.from_run_result(raw, request.task.output_model)
        except OutputValidationError as exc:
            return self._content(exc.result, _mismatch_note(exc)), exc.result
        except ParallelError as exc:
            raise tool_error(exc, result_tool=self.result_tool_name) from exc
        return self._content(result), result

    def _settle(self, prefetched: _Prefetched) -> tuple[str, TaskResult[Any]]:
        """The tool output for a batch item whose outcome is already known."""
        error = prefetched.error
        outcome = prefetched.outcome
        if error is None and outcome is not None:
            if outcome.result is not None:
                return self._content(outcome.result), outcome.result
            error = outcome.error
        if isinstance(error, OutputValidationError):
            return self._content(error.result, _mismatch_note(error)), error.result
        if isinstance(error, ParallelError):
            raise tool_error(error, result_tool=self.result_tool_name) from error
        if isinstance(error, ValidationError):
            raise ToolException(validation_error_message(error)) from error
        raise AssertionError(f"batch item without an outcome: {prefetched!r}")

    # --- Many calls: one task group ----------------------------------------------------------

    def batch(
        self,
        inputs: list[str | dict[str, Any] | ToolCall],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[Any]:
        """Run many calls through one task group, then answer each as `invoke` would.

        Each output is what `invoke` returns for that input (a `ToolMessage` for tool calls,
        the content for plain arguments), in input order; failures are handled per item.
        """
        if len(inputs) < 2:
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        configs = get_config_list(config, len(inputs))
        plans = [self._plan(item) for item in inputs]
        requests = [p for p in plans if isinstance(p, _Request)]
        outcomes: list[RunOutcome[Any]] | Exception = []
        if requests:
            try:
                outcomes = self._group_sync(requests, configs[0])
            except ParallelError as exc:
                outcomes = exc
        prefetched = self._match(plans, outcomes)
        results: list[Any] = []
        for item, item_config, ready in zip(inputs, configs, prefetched, strict=True):
            token = _PREFETCHED.set(ready)
            try:
                results.append(self.invoke(item, item_config, **kwargs))
            except Exception as exc:
                if not return_exceptions:
                    raise
                results.append(exc)
            finally:
                _PREFETCHED.reset(token)
        return results

    async def abatch(
        self,
        inputs: list[str | dict[str, Any] | ToolCall],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[Any]:
        """The async twin of `batch`: one task group, outputs in input order."""
        if len(inputs) < 2:
            return await super().abatch(
                inputs, config, return_exceptions=return_exceptions, **kwargs
            )
        configs = get_config_list(config, len(inputs))
        plans = [self._plan(item) for item in inputs]
        requests = [p for p in plans if isinstance(p, _Request)]
        outcomes: list[RunOutcome[Any]] | Exception = []
        if requests:
            try:
                outcomes = await self._group_async(requests, configs[0])
            except ParallelError as exc:
                outcomes = exc
        prefetched = self._match(plans, outcomes)
        results: list[Any] = []
        for item, item_config, ready in zip(inputs, configs, prefetched, strict=True):
            token = _PREFETCHED.set(ready)
            try:
                results.append(await self.ainvoke(item, item_config, **kwargs))
            except Exception as exc:
                if not return_exceptions:
                    raise
                results.append(exc)
            finally:
                _PREFETCHED.reset(token)
        return results

    def _plan(self, item: str | dict[str, Any] | ToolCall) -> _Request | Exception:
        """Validate one batch input as `invoke` will, and resolve it; errors are kept."""
        raw: Any = cast(ToolCall, item)["args"] if _is_tool_call(item) else item
        schema = cast(type[BaseModel], self.args_schema)
        if isinstance(raw, str):
            raw = {next(iter(schema.model_fields)): raw}
        try:
            parsed = schema.model_validate(raw)
            return self._request({name: getattr(parsed, name) for name in schema.model_fields})
        except (ValidationError, ParallelError) as exc:
            return exc

    def _group_plan(
        self, requests: Sequence[_Request]
    ) -> tuple[Task[Any, Any] | None, list[Any], CreateOptions]:
        """What to hand `run_batch`: the common task when every request shares its spec and
        follow-up (the usual case), else per-run entries that carry their own spec."""
        first = requests[0]
        uniform = all(
            r.task.spec == first.task.spec
            and r.previous_interaction_id == first.previous_interaction_id
            for r in requests
        )
        if uniform:
            return first.task, [r.input for r in requests], self._create_options(first)
        entries: list[Any] = []
        for r in requests:
            entry: dict[str, Any] = {"input": r.input, "task_spec": r.task.spec}
            if r.previous_interaction_id:
                entry[_FOLLOW_UP] = r.previous_interaction_id
            entries.append(entry)
        return None, entries, self._create_options(first, follow_up=False)

    @staticmethod
    def _typed(requests: Sequence[_Request], outcomes: list[RunOutcome[Any]]) -> None:
        # Runs with their own spec come back unparsed; parse each with its task's model.
        for i, (request, outcome) in enumerate(zip(requests, outcomes, strict=True)):
            model = request.task.output_model
            if model is None or outcome.result is None:
                continue
            try:
                typed = TaskResult.from_run_result(outcome.result, model)
                outcomes[i] = RunOutcome(run=outcome.run, result=typed)
            except OutputValidationError as exc:
                outcomes[i] = RunOutcome(run=outcome.run, error=exc)

    def _group_sync(
        self, requests: Sequence[_Request], config: RunnableConfig
    ) -> list[RunOutcome[Any]]:
        task, items, options = self._group_plan(requests)
        outcomes = self._sync_client().run_batch(
            task, items, timeout=self.wait, concurrency=_concurrency(config), **options
        )
        if task is None:
            self._typed(requests, outcomes)
        return outcomes

    async def _group_async(
        self, requests: Sequence[_Request], config: RunnableConfig
    ) -> list[RunOutcome[Any]]:
        task, items, options = self._group_plan(requests)
        outcomes = await self._async_client().run_batch(
            task, items, timeout=self.wait, concurrency=_concurrency(config), **options
        )
        if task is None:
            self._typed(requests, outcomes)
        return outcomes

    def _match(
        self, plans: list[_Request | Exception], outcomes: list[RunOutcome[Any]] | Exception
    ) -> list[_Prefetched]:
        owner = id(self)
        ready: list[_Prefetched] = []
        found = iter(outcomes) if isinstance(outcomes, list) else None
        for plan in plans:
            if isinstance(plan, Exception):
                ready.append(_Prefetched(owner, error=plan))
            elif found is None:
                ready.append(_Prefetched(owner, error=cast(Exception, outcomes)))
            else:
                ready.append(_Prefetched(owner, outcome=next(found)))
        return ready


class ParallelResearchTool(ParallelTaskTool):
    """Free-form web research: a question and a description of the wanted answer.

    The model sends `question` and `output_description` (plus `previous_interaction_id` for
    follow-ups) and gets a cited text answer. Everything else is as for `ParallelTaskTool`.
    """

    name: str = "parallel_research"
    description: str = (
        "Research a question on the web with Parallel and get an answer with numbered "
        "citations [n] and the numbered sources. Use it for facts that must be current or "
        "verifiable. Say in output_description what the answer should contain. Cite the "
        "sources you use. A run takes from seconds to minutes."
    )
    task: Task[Any, Any] | None = None

    _generic: ClassVar[bool] = True


class ParallelStartTool(_TaskRunner):
    """Starts a run and returns its id at once; `ParallelGetResultTool` collects the answer.

    For research that takes minutes, this keeps the agent free: it starts the run, does other
    work, then fetches the result. With a task, the arguments are the task's input (name
    `start_<task name>`); without one, they are the generic research question (name
    `parallel_start_research`). The artifact is the created `TaskRun`.
    """

    name: str = "parallel_start_research"
    description: str = (
        "Start web research with Parallel in the background and get its run id at once. Use "
        f"it for questions that may take minutes; then call {DEFAULT_RESULT_TOOL} with the "
        "run id to collect the answer with numbered citations. Say in output_description "
        "what the answer should contain."
    )

    _generic: ClassVar[bool] = True

    @classmethod
    def _task_name(cls, task: Task[Any, Any]) -> str:
        name = f"start_{task.name}"
        if len(name) > 64:
            raise ValueError(f"The tool name {name!r} is over 64 characters; pass name=...")
        return name

    @classmethod
    def _task_description(cls, task: Task[Any, Any], result_tool: str) -> str:
        return (
            f"Start this task in the background and get its run id at once: "
            f"{task.description.rstrip()}\n\nThen call {result_tool} with the run id to "
            "collect the answer with numbered citations."
        )

    def _started(self, run: TaskRun) -> tuple[str, TaskRun]:
        typical = _typical_duration(run.processor)
        return started_content(run, result_tool=self.result_tool_name, typical=typical), run

    def _run(self, *args: Any, **kwargs: Any) -> tuple[str, TaskRun]:
        try:
            run = self._create(self._request(self._arguments(args, kwargs)))
        except ParallelError as exc:
            raise tool_error(exc) from exc
        return self._started(run)

    async def _arun(self, *args: Any, **kwargs: Any) -> tuple[str, TaskRun]:
        try:
            run = await self._acreate(self._request(self._arguments(args, kwargs)))
        except ParallelError as exc:
            raise tool_error(exc) from exc
        return self._started(run)


class ParallelGetResultTool(_ParallelTool):
    """The status of a run, or its cited answer once it has one.

    It waits up to `wait` seconds (a developer setting, 0 for a plain status check) for the
    run to finish. A run still going is not an error: the content says so and asks the agent
    to call again later, and the artifact is the `TaskRun`. A finished run gives the same
    content and `TaskResult` artifact as `ParallelTaskTool`; runs started for one of `tasks`
    are parsed with that task's output model.
    """

    name: str = DEFAULT_RESULT_TOOL
    description: str = (
        "Get the answer of a Parallel research run started earlier (by a start tool, or one a "
        "research tool stopped waiting for), by its run id. Returns the answer with numbered "
        "citations [n] and sources once the run has finished, otherwise its status; if it is "
        "still running, call again later."
    )
    args_schema: ArgsSchema | None = GetResultInput
    tasks: list[Task[Any, Any]] = Field(default_factory=list)
    """Tasks whose runs this tool may fetch, to parse their outputs with the task's model."""
    wait: float = Field(default=60.0, ge=0)
    """Seconds to wait for an unfinished run before answering with its status."""

    def _output_model(self, run: TaskRun) -> type[BaseModel] | None:
        task = task_of(run, self.tasks)
        return task.output_model if task is not None else None

    def _finish(self, raw: TaskRunResult) -> tuple[str, Any]:
        try:
            result = TaskResult.from_run_result(raw, self._output_model(raw.run))
        except OutputValidationError as exc:
            return self._content(exc.result, _mismatch_note(exc)), exc.result
        return self._content(result), result

    def _pending(self, run: TaskRun, relay: ProgressRelay | None) -> tuple[str, TaskRun]:
        return pending_content(run, tool=self.name, progress=relay.last if relay else None), run

    def _run(self, *args: Any, **kwargs: Any) -> tuple[str, Any]:
        run_id = str(args[0] if args else kwargs["run_id"]).strip()
        relay = ProgressRelay(self.name)
        try:
            client = self._sync_client()
            if self.wait <= 0:
                run = client.get_run(run_id)
                if run.is_active:
                    return self._pending(run, None)
                return self._finish(client.wait(run_id))
            try:
                raw = self._wait(client, run_id, self.wait, relay)
            except TaskTimeoutError:
                return self._pending(client.get_run(run_id), relay)
            return self._finish(raw)
        except ParallelError as exc:
            raise tool_error(exc) from exc

    async def _arun(self, *args: Any, **kwargs: Any) -> tuple[str, Any]:
        run_id = str(args[0] if args else kwargs["run_id"]).strip()
        relay = ProgressRelay(self.name)
        try:
            client = self._async_client()
            if self.wait <= 0:
                run = await client.get_run(run_id)
                if run.is_active:
                    return self._pending(run, None)
                return self._finish(await client.wait(run_id))
            try:
                raw = await self._await(client, run_id, self.wait, relay)
            except TaskTimeoutError:
                return self._pending(await client.get_run(run_id), relay)
            return self._finish(raw)
        except ParallelError as exc:
            raise tool_error(exc) from exc


# --- Helpers --------------------------------------------------------------------------------------


def _is_tool_call(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "tool_call"


def _claim(tool: BaseTool) -> _Prefetched | None:
    prefetched = _PREFETCHED.get()
    if prefetched is None or prefetched.owner != id(tool):
        return None
    return prefetched


def _concurrency(config: RunnableConfig) -> int:
    value = config.get("max_concurrency")
    return value if isinstance(value, int) and value > 0 else 8
