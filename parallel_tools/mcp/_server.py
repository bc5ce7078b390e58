"""The MCP server itself: `create_server()` binds the manifest's tools to the Task API.

Every tool call follows the same rules:

* it never waits longer than `ServerSettings.max_wait` (45 s at most), sending progress
  notifications meanwhile; a run that needs longer comes back as its run id plus instructions;
* a run, once started, is never lost: its id is reported the moment it exists (as progress),
  identical requests within `reuse_window` reuse it, and an interrupted call leaves it running;
* failures come back as `isError` results with text the model can act on, never as crashes,
  and never with the API key in them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import CallToolResult, ResourceLink, TextContent, ToolAnnotations
from pydantic import BaseModel

from .. import __version__
from .._client import AsyncTaskClient
from .._config import API_KEY_ENV
from .._exceptions import (
    InvalidInputError,
    NotFoundError,
    ParallelError,
    TaskFailedError,
    TaskTimeoutError,
)
from .._models import RunStateEvent, TaskRun, TaskRunResult
from .._progress import Progress
from .._results import TaskResult
from .._retry import RetryPolicy
from .._schema import task_spec
from .._tasks import TASK_METADATA_KEY, Task
from . import _render
from ._manifest import (
    DEFAULT_TEXT_OUTPUT,
    GROUP_URI,
    RUN_URI,
    SERVER_NAME,
    ResearchResult,
    ToolSpec,
    build_manifest,
    instructions,
    price_note,
)
from ._settings import ServerSettings

__all__ = ["create_server"]

logger = logging.getLogger("parallel_tools.mcp")

_CONTEXT_KEY = "__mcp_context__"
# Run metadata keys (at most 16 characters): which tool started a run, and an item's position.
_TOOL_KEY = TASK_METADATA_KEY  # tagged with the tool's name: a typed tool's is its task's
_ITEM_KEY = "mcp_item"
_GROUP_POLL = 2.0
_MIN_PROGRESS_GAP = 0.5
_RECENT_PRUNE_AT = 1024


class _Runtime:
    """What one server lifespan owns: the Task API client, made when first needed.

    Made lazily so a server without an API key still starts, lists its tools and explains the
    problem in each tool result, instead of dying where the host shows nothing.
    """

    def __init__(self, factory: Callable[[], AsyncTaskClient]) -> None:
        self._factory = factory
        self._client: AsyncTaskClient | None = None

    def client(self) -> AsyncTaskClient:
        """The client, made on first use.

        Raises:
            ConfigurationError: there is no API key (or a bad base URL).
        """
        if self._client is None:
            self._client = self._factory()
        return self._client

    async def aclose(self) -> None:
        """Close the client's connections, if one was made."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class _RecentRuns:
    """Runs started recently, by request fingerprint, so a repeated request reuses its run."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._by_key: dict[str, tuple[str, float]] = {}

    def get(self, key: str) -> str | None:
        """The id started for this fingerprint within the window, if any."""
        entry = self._by_key.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry[1] > self._window:
            del self._by_key[key]
            return None
        return entry[0]

    def put(self, key: str, run_id: str) -> None:
        """Remember the id started for this fingerprint."""
        if self._window <= 0:
            return
        now = time.monotonic()
        if len(self._by_key) >= _RECENT_PRUNE_AT:
            self._by_key = {
                k: entry for k, entry in self._by_key.items() if now - entry[1] <= self._window
            }
        self._by_key[key] = (run_id, now)

    def forget(self, run_id: str) -> None:
        """Stop reusing this id (its run failed)."""
        for key in [k for k, (v, _) in self._by_key.items() if v == run_id]:
            del self._by_key[key]


class _Progress:
    """Progress notifications for one call: increasing values, never an error for the call.

    Bursts are thinned (hosts choke on floods of notifications); the heartbeat that keeps
    hosts' idle timers happy comes well apart, so it is never dropped.
    """

    def __init__(self, ctx: Context[Any, Any]) -> None:
        self._ctx = ctx
        self._started = time.monotonic()
        self._last = -1.0
        self._sent_at = -_MIN_PROGRESS_GAP

    async def __call__(self, message: str, *, force: bool = False) -> None:
        """Send `message` unless one went out very recently (`force` sends it anyway)."""
        now = time.monotonic()
        if not force and now - self._sent_at < _MIN_PROGRESS_GAP:
            return
        self._sent_at = now
        value = round(now - self._started, 3)
        value = max(value, round(self._last + 0.001, 3))
        self._last = value
        try:
            await self._ctx.report_progress(value, None, message)
        except Exception as exc:  # a notification that cannot be sent must not fail the call
            logger.debug("progress notification not sent: %s", exc)


def _fingerprint(tool: str, body: Mapping[str, Any]) -> str:
    raw = json.dumps({"tool": tool, **body}, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


class _Service:
    """The tools' behaviour, shared by every connection to one server."""

    def __init__(
        self,
        settings: ServerSettings,
        specs: list[ToolSpec],
    ) -> None:
        self.settings = settings
        self.specs = {spec.name: spec for spec in specs}
        self.recent = _RecentRuns(settings.reuse_window)

    # --- dispatch -------------------------------------------------------------------------

    async def call(self, spec: ToolSpec, ctx: Context[Any, Any], raw: dict[str, Any]) -> Any:
        """Run one tool call; every failure becomes an `isError` result."""
        try:
            args = spec.arguments.model_validate(raw)
            runtime = cast(_Runtime, ctx.request_context.lifespan_context)
            progress = _Progress(ctx)
            if spec.kind in ("research", "task"):
                rendered = await self._research(spec, args, runtime, progress, wait=True)
            elif spec.kind == "start":
                rendered = await self._research(spec, args, runtime, progress, wait=False)
            elif spec.kind == "result":
                rendered = await self._get_result(args, runtime, progress)
            elif spec.kind == "enrich":
                rendered = await self._enrich(spec, args, runtime, progress)
            else:
                rendered = await self._enrichment_results(args, runtime, progress)
        except Exception as exc:
            return self._error(spec, exc)
        return CallToolResult(
            content=[
                TextContent(type="text", text=rendered.markdown),
                ResourceLink(
                    type="resource_link",
                    uri=rendered.resource_uri,
                    name=rendered.resource_name,
                    description="The full result as JSON, with every citation and excerpt.",
                    mime_type="application/json",
                ),
            ],
            structured_content=rendered.structured,
        )

    def _error(self, spec: ToolSpec, exc: Exception) -> CallToolResult:
        if isinstance(exc, ParallelError):
            logger.info("%s failed: %s", spec.name, type(exc).__name__)
            if isinstance(exc, TaskFailedError) and exc.run_id:
                self.recent.forget(exc.run_id)
        else:
            logger.exception("%s failed unexpectedly", spec.name)
        key = self.settings.api_key or os.environ.get(API_KEY_ENV)
        text = _render.error_text(exc, tool=spec.name, api_key=key)
        # An error can quote a whole raw answer (an output that did not fit its model).
        text = _render.clip_to_tokens(text, self.settings.max_output_tokens)
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)

    def _processor(self, requested: str | None) -> str:
        name = requested or self.settings.default_processor
        if name not in self.settings.processors:
            # The schema's enum already says so; this guards callers that skip validation.
            raise InvalidInputError(
                f"Processor {name!r} is not allowed on this server. Use one of: "
                + ", ".join(price_note(p) for p in self.settings.processors)
                + "."
            )
        return name

    # --- single runs ----------------------------------------------------------------------

    async def _research(
        self,
        spec: ToolSpec,
        args: BaseModel,
        runtime: _Runtime,
        progress: _Progress,
        *,
        wait: bool,
    ) -> _render.Rendered:
        started = time.monotonic()
        client = runtime.client()
        task = spec.task
        model: type[ResearchResult] = ResearchResult
        if task is not None:
            value = getattr(args, "input") if task.input_model is None else args  # noqa: B009
            body: dict[str, Any] = {
                "input": task.prepare_input(value),
                "task_spec": task.spec,
                "processor": self._processor(task.processor),
            }
            model = cast(type[ResearchResult], spec.result)
        else:
            fields = cast(Any, args)
            body = {
                "input": fields.question,
                "output": fields.output or DEFAULT_TEXT_OUTPUT,
                "processor": self._processor(fields.processor),
            }
        # research and start_research share runs: the same question is the same run.
        key = _fingerprint(spec.name if task is not None else "research", body)
        run, note = await self._start_run(client, key, spec.name, body)
        await progress(
            f"Parallel run {run.run_id} started on {run.processor}; if this call is interrupted, "
            f"get_research_result(run_id={run.run_id!r}) collects it.",
            force=True,
        )
        if not wait:
            return _render.pending(run, max_wait=self.settings.max_wait, model=model, note=note)
        budget = self.settings.max_wait - (time.monotonic() - started)
        return await self._collect(
            client, run, progress, budget, task=task, model=model, note=note, started=started
        )

    async def _start_run(
        self, client: AsyncTaskClient, key: str, tool: str, body: dict[str, Any]
    ) -> tuple[TaskRun, str | None]:
        known = self.recent.get(key)
        if known is not None:
            try:
                run = await client.get_run(known)
            except NotFoundError:
                run = None
            if run is not None and run.status not in ("failed", "cancelled"):
                note = (
                    f"An identical request already started run {run.run_id}; it is reused "
                    "rather than paying for a new run."
                )
                return run, note
            self.recent.forget(known)
        # Shielded: a call cancelled while the create is in flight would otherwise leave a paid
        # run nobody knows the id of. Finished and recorded, a retry of the call reuses it.
        with anyio.CancelScope(shield=True):
            created = await client.create_run(**body, metadata={_TOOL_KEY: tool})
            self.recent.put(key, created.run_id)
        logger.info("started run %s (%s, %s)", created.run_id, tool, created.processor)
        return created, None

    async def _collect(
        self,
        client: AsyncTaskClient,
        run: TaskRun,
        progress: _Progress,
        budget: float,
        *,
        task: Task[Any, Any] | None,
        model: type[ResearchResult],
        note: str | None = None,
        started: float,
    ) -> _render.Rendered:
        """Wait up to `budget` seconds for the run, then render its result or its status."""
        run_id = run.run_id

        async def report(snapshot: Progress) -> None:
            await progress(f"{run_id}: {snapshot.describe()}")

        raw: TaskRunResult | None = None
        if budget >= 1:
            try:
                raw = await client.wait_with_progress(
                    run_id,
                    report,
                    timeout=budget,
                    heartbeat=self.settings.progress_interval,
                )
            except TaskTimeoutError:
                raw = None
        else:
            raw = await client.result(run_id)
        if raw is None:
            run = await client.get_run(run_id)
            if run.status in ("failed", "cancelled"):
                raw = await client.result(run_id)  # raises TaskFailedError with the reason
            elif run.status == "completed":
                raw = await client.result(run_id)
        if raw is None:
            return _render.pending(
                run,
                waited=time.monotonic() - started,
                max_wait=self.settings.max_wait,
                model=model,
                note=note,
            )
        output_model = task.output_model if task is not None else None
        result = TaskResult.from_run_result(raw, output_model)
        return _render.completed(
            result, model=model, max_tokens=self.settings.max_output_tokens, note=note
        )

    async def _get_result(
        self, args: BaseModel, runtime: _Runtime, progress: _Progress
    ) -> _render.Rendered:
        started = time.monotonic()
        fields = cast(Any, args)
        run_id = fields.run_id.strip()
        if run_id.startswith("tgrp_"):
            raise InvalidInputError(
                f"{run_id} is an enrichment (task group) id; call get_enrichment_results with "
                "group_id instead."
            )
        client = runtime.client()
        run = await client.get_run(run_id)
        tool = (run.metadata or {}).get(_TOOL_KEY)
        spec = self.specs.get(tool) if isinstance(tool, str) else None
        task = spec.task if spec is not None else None
        if run.status in ("failed", "cancelled"):
            self.recent.forget(run_id)
            await client.result(run_id)  # raises TaskFailedError with the run's reason
        wait = min(float(fields.wait_seconds), self.settings.max_wait)
        budget = wait - (time.monotonic() - started) if run.is_active else 0.0
        return await self._collect(
            client, run, progress, budget, task=task, model=ResearchResult, started=started
        )

    # --- enrichment -----------------------------------------------------------------------

    async def _enrich(
        self, spec: ToolSpec, args: BaseModel, runtime: _Runtime, progress: _Progress
    ) -> _render.Rendered:
        fields = cast(Any, args)
        processor = self._processor(fields.processor)
        columns: dict[str, str] | None = fields.fields
        text: str | None = fields.output
        if columns and text:
            raise InvalidInputError("Pass either fields or output, not both.")
        if not columns and not text:
            raise InvalidInputError(
                "Say what to find for each item: fields (column name -> what to find) or "
                "output (a text description)."
            )
        output: dict[str, Any] | str
        if columns:
            output = {
                "type": "object",
                "properties": {
                    name: {"type": "string", "description": description}
                    for name, description in columns.items()
                },
                "required": list(columns),
                "additionalProperties": False,
            }
            if fields.instructions:
                output["description"] = fields.instructions
        else:
            output = cast(str, text)
            if fields.instructions:
                output += f"\n\n{fields.instructions}"
        spec_body = task_spec(output=output)
        items: list[Any] = list(fields.items)
        key = _fingerprint(spec.name, {"items": items, "spec": spec_body, "processor": processor})
        client = runtime.client()
        known = self.recent.get(key)
        note = None
        if known is not None:
            group_id = known
            note = (
                f"An identical request already started enrichment {group_id}; it is reused "
                "rather than paying for new runs."
            )
        else:
            with anyio.CancelScope(shield=True):  # as for single runs: never an unknown group
                group = await client.create_group(metadata={_TOOL_KEY: spec.name})
                group_id = group.taskgroup_id
                await client.add_runs(
                    group_id,
                    [{"input": item, "metadata": {_ITEM_KEY: i}} for i, item in enumerate(items)],
                    default_task_spec=spec_body,
                    processor=processor,
                    metadata={_TOOL_KEY: spec.name},
                )
                self.recent.put(key, group_id)
            logger.info("started enrichment %s (%d items, %s)", group_id, len(items), processor)
        await progress(
            f"Enrichment {group_id} started ({len(items)} items on {processor}); "
            f"get_enrichment_results(group_id={group_id!r}) collects it.",
            force=True,
        )
        return _render.enrichment_started(
            group_id,
            len(items),
            processor=processor,
            max_wait=self.settings.max_wait,
            note=note,
        )

    async def _enrichment_results(
        self, args: BaseModel, runtime: _Runtime, progress: _Progress
    ) -> _render.Rendered:
        started = time.monotonic()
        fields = cast(Any, args)
        group_id = fields.group_id.strip()
        if group_id.startswith("trun_"):
            raise InvalidInputError(
                f"{group_id} is a run id; call get_research_result with run_id instead."
            )
        client = runtime.client()
        deadline = started + min(float(fields.wait_seconds), self.settings.max_wait)
        group = await client.get_group(group_id)
        while group.status.is_active and time.monotonic() < deadline:
            status = group.status
            finished = sum(
                n
                for s, n in status.task_run_status_counts.items()
                if s not in ("queued", "running")
            )
            await progress(f"{group_id}: {finished} of {status.num_task_runs} items finished")
            await anyio.sleep(max(0.0, min(_GROUP_POLL, deadline - time.monotonic())))
            group = await client.get_group(group_id)
        rows, processor = await self._rows(client, group_id)
        waited = time.monotonic() - started
        return _render.enrichment(
            group_id,
            rows,
            processor=processor,
            counts=dict(group.status.task_run_status_counts),
            active=group.status.is_active,
            offset=fields.offset,
            limit=fields.limit,
            max_tokens=self.settings.max_output_tokens,
            max_wait=self.settings.max_wait,
            waited=waited if group.status.is_active and fields.wait_seconds else None,
        )

    async def _rows(self, client: AsyncTaskClient, group_id: str) -> tuple[list[_render.Row], str]:
        """Every run of a group with its input and, when completed, its result, in item order."""
        found: dict[str, _render.Row] = {}
        async for event in client.group_runs(group_id, include_input=True, include_output=True):
            if not isinstance(event, RunStateEvent):
                continue
            run = event.run
            position = (run.metadata or {}).get(_ITEM_KEY)
            index = position if isinstance(position, int) else len(found)
            value = (event.input or {}).get("input")
            result = None
            if run.status == "completed" and event.output is not None:
                result = TaskResult.from_run_result({"run": run, "output": event.output})
            found[run.run_id] = _render.Row(index=index, input=value, run=run, result=result)
        rows = sorted(found.values(), key=lambda row: row.index)
        processor = rows[0].run.processor if rows else self.settings.default_processor
        return rows, processor

    # --- resources ------------------------------------------------------------------------

    async def run_resource(self, run_id: str, runtime: _Runtime) -> str:
        """A run's full result as JSON (or its status while it is going)."""
        client = runtime.client()
        try:
            raw = await client.result(run_id)
        except TaskFailedError as exc:
            return json.dumps({"run": exc.run.model_dump(mode="json"), "output": None}, indent=1)
        if raw is None:
            run = await client.get_run(run_id)
            return json.dumps(
                {"run": run.model_dump(mode="json"), "output": None, "note": "not finished yet"},
                indent=1,
            )
        return raw.model_dump_json(indent=1)

    async def group_resource(self, group_id: str, runtime: _Runtime) -> str:
        """Every row of an enrichment as JSON."""
        client = runtime.client()
        group = await client.get_group(group_id)
        rows, _ = await self._rows(client, group_id)
        return json.dumps(
            {
                "group": group.model_dump(mode="json"),
                "rows": [
                    {
                        "index": row.index,
                        "input": row.input,
                        "run": row.run.model_dump(mode="json"),
                        "output": row.result.output.model_dump(mode="json") if row.result else None,
                    }
                    for row in rows
                ],
            },
            indent=1,
        )


def _tool(spec: ToolSpec, service: _Service) -> Tool:
    """An SDK tool whose schemas come from the spec, exactly as the stdio front door lists them."""

    async def call(**arguments: Any) -> Any:
        ctx = arguments.pop(_CONTEXT_KEY)
        return await service.call(spec, ctx, arguments)

    # The SDK validates arguments with this model (and reads them back one level deep) before
    # the call; building it from the spec, not from a signature, keeps the input model intact.
    arg_model = type(
        spec.arguments.__name__, (spec.arguments, ArgModelBase), {"__module__": __name__}
    )
    return Tool(
        fn=call,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        parameters=spec.input_schema,
        fn_metadata=FuncMetadata(
            arg_model=arg_model, output_model=spec.result, output_schema=spec.output_schema
        ),
        is_async=True,
        context_kwarg=_CONTEXT_KEY,
        annotations=ToolAnnotations(
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=spec.idempotent,
            open_world_hint=True,
        ),
    )


def _default_client(settings: ServerSettings) -> Callable[[], AsyncTaskClient]:
    def make() -> AsyncTaskClient:
        # Short requests and few retries: a tool call has under a minute in all.
        return AsyncTaskClient(
            api_key=settings.api_key,
            base_url=settings.base_url,
            timeout=15.0,
            retry=RetryPolicy(max_retries=2, max_delay=4.0, max_retry_after=5.0),
        )

    return make


def create_server(
    tasks: Iterable[Task[Any, Any]] = (),
    *,
    settings: ServerSettings | None = None,
    client_factory: Callable[[], AsyncTaskClient] | None = None,
    log_level: str = "WARNING",
) -> MCPServer[Any]:
    """An MCP server offering Parallel research as tools.

    Args:
        tasks: `Task` definitions to offer as typed tools, one each (input schema from the
            task's input model, output schema from its output model plus citations).
        settings: What the model may spend and how long calls wait; see `ServerSettings`.
            Defaults to `ServerSettings.from_env()`.
        client_factory: Makes the `AsyncTaskClient` the server uses (for a custom httpx client
            or transport); by default one is made from the settings and environment when the
            first tool call needs it, so a server without an API key still starts.
        log_level: The MCP SDK's log level.

    Returns:
        An `MCPServer`: run it with `.run()` (stdio), serve `create_http_app(server, ...)`, or
        test it in process with `mcp.Client(server)`.

    Raises:
        ValueError: a task clashes with a built-in tool or uses a processor that is not allowed.
    """
    settings = settings if settings is not None else ServerSettings.from_env()
    specs = build_manifest(list(tasks), settings)
    service = _Service(settings, specs)
    factory = client_factory or _default_client(settings)

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[_Runtime]:
        runtime = _Runtime(factory)
        try:
            yield runtime
        finally:
            with anyio.CancelScope(shield=True):
                await runtime.aclose()

    server: MCPServer[Any] = MCPServer(
        SERVER_NAME,
        version=__version__,
        instructions=instructions(settings, specs),
        tools=[_tool(spec, service) for spec in specs],
        lifespan=lifespan,
        log_level=log_level,  # type: ignore[arg-type]
    )

    @server.resource(
        RUN_URI,
        name="parallel_run",
        title="Parallel run result",
        description="A research run's full result (JSON): the answer and every citation.",
        mime_type="application/json",
    )
    async def run_resource(run_id: str, ctx: Context[Any, Any]) -> str:
        return await _read(service.run_resource, run_id, ctx)

    @server.resource(
        GROUP_URI,
        name="parallel_enrichment",
        title="Parallel enrichment rows",
        description="Every row of an enrichment (JSON): inputs, answers and citations.",
        mime_type="application/json",
    )
    async def group_resource(group_id: str, ctx: Context[Any, Any]) -> str:
        return await _read(service.group_resource, group_id, ctx)

    return server


async def _read(reader: Callable[[str, _Runtime], Any], ident: str, ctx: Context[Any, Any]) -> str:
    runtime = cast(_Runtime, ctx.request_context.lifespan_context)
    try:
        text: str = await reader(ident, runtime)
    except ParallelError as exc:
        key = os.environ.get(API_KEY_ENV)
        raise ResourceError(
            _render.error_text(exc, tool="get_research_result", api_key=key)
        ) from None
    return text
