"""The server's tools as data: names, descriptions, argument models, result models, annotations.

This module does not import the MCP SDK. The SDK-backed server registers tools from these
specs, and the stdio front door (`_stdio`) answers `initialize` and `tools/list` from the very
same specs while the SDK is still loading, so both always advertise identical tools.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, create_model

from .. import __version__
from .._config import PROCESSORS
from .._results import CitedAnswer
from .._tasks import Task
from ._settings import ServerSettings

__all__ = [
    "GENERIC_TOOL_NAMES",
    "SERVER_NAME",
    "EnrichmentResult",
    "EnrichmentRow",
    "ResearchResult",
    "RowAnswer",
    "ToolKind",
    "ToolSpec",
    "build_manifest",
    "initialize_result",
    "instructions",
    "price_note",
]

SERVER_NAME: Final = "parallel-tools"
RUN_URI: Final = "parallel://runs/{run_id}"
GROUP_URI: Final = "parallel://groups/{group_id}"

ToolKind = Literal["research", "start", "result", "enrich", "enrich_result", "task"]

GENERIC_TOOL_NAMES: Final = (
    "research",
    "start_research",
    "get_research_result",
    "start_enrichment",
    "get_enrichment_results",
)

DEFAULT_TEXT_OUTPUT: Final = (
    "A direct, well-sourced answer to the question: lead with the answer itself, then the key "
    "supporting facts. Say so plainly when the evidence is thin or conflicting."
)


# --- Result models (structuredContent) -----------------------------------------------------------


class ResearchResult(CitedAnswer):
    """A research run: while it is queued or running, answer is null and next_step says what
    to call; once completed, answer holds the answer and sources the numbered citations that
    the [n] markers refer to.

    This is the shared `CitedAnswer` (what LangChain tools return too) plus where the run
    stands.
    """

    answer: str | dict[str, Any] | None = Field(
        description="The answer once completed (text, or an object for structured outputs); "
        "null while the run is going"
    )
    status: str = Field(description="completed, queued or running")
    price_usd: float | None = Field(
        default=None, description="List price of this run's processor, in US dollars per run"
    )
    resource_uri: str = Field(description="Resource holding the full, untruncated result")
    next_step: str | None = Field(default=None, description="What to do next, when not done")
    truncated: bool = Field(
        default=False, description="True when parts were cut to fit; the resource has it all"
    )


class RowAnswer(CitedAnswer):
    """The cited answer for one item of an enrichment (numbers refer to its own sources)."""

    answer: str | dict[str, Any] | None = Field(
        description="The item's answer: an object with the requested fields, or text"
    )


class EnrichmentRow(BaseModel):
    """One item of an enrichment: its input, status and, once done, its cited answer."""

    index: int = Field(description="Position of the item in the list given, from 0")
    input: str | dict[str, Any] | None = Field(description="The item as given")
    run_id: str
    status: str = Field(description="queued, running, completed or failed")
    result: RowAnswer | None = Field(default=None, description="The cited answer, when done")
    error: str | None = Field(default=None, description="Why the run failed, when it did")


class EnrichmentResult(BaseModel):
    """An enrichment (one task group): progress counts and a page of rows in item order."""

    group_id: str
    status: str = Field(description="running while any item is unfinished, else completed")
    processor: str
    price_usd: float | None = Field(
        default=None, description="List price per item (one run each), in US dollars"
    )
    total_items: int
    counts: dict[str, int] = Field(
        default_factory=dict, description="Runs by status (queued, running, completed, failed)"
    )
    rows: list[EnrichmentRow] = Field(default_factory=list)
    offset: int = 0
    next_offset: int | None = Field(
        default=None, description="Pass as offset to get the next page of rows, when there is one"
    )
    resource_uri: str = Field(description="Resource holding every row in full")
    next_step: str | None = None
    truncated: bool = False


# --- Tool specs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolSpec:
    """One tool: everything `tools/list` says about it and what its call does.

    Attributes:
        name: The tool name.
        title: A short human title.
        description: What the model reads to decide when to call it.
        kind: Which behaviour the server binds to it.
        arguments: The arguments' model (its JSON schema is the `inputSchema`).
        result: The structured result's model (its JSON schema is the `outputSchema`).
        idempotent: Whether repeating a call has no further effect (reads are; starting a
            paid run is not).
        task: The task definition behind a typed tool.
    """

    name: str
    title: str
    description: str
    kind: ToolKind
    arguments: type[BaseModel]
    result: type[BaseModel]
    idempotent: bool
    task: Task[Any, Any] | None = None

    @property
    def input_schema(self) -> dict[str, Any]:
        """The tool's `inputSchema`."""
        schema: dict[str, Any] = _untitled(self.arguments.model_json_schema(by_alias=True))
        return schema

    @property
    def output_schema(self) -> dict[str, Any]:
        """The tool's `outputSchema`."""
        schema: dict[str, Any] = _untitled(self.result.model_json_schema(by_alias=True))
        return schema

    @property
    def annotations(self) -> dict[str, bool]:
        """Behaviour hints, in wire (camelCase) form.

        Research reads the web and changes nothing of the user's, so every tool is read-only
        and open-world; starting a run is not idempotent because each call is a paid run.
        """
        return {
            "readOnlyHint": True,
            "destructiveHint": False,
            "idempotentHint": self.idempotent,
            "openWorldHint": True,
        }

    def wire(self) -> dict[str, Any]:
        """The tool as `tools/list` sends it."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
            "annotations": self.annotations,
        }


def _untitled(schema: Any) -> Any:
    """The schema without pydantic's generated `title`s and with one-paragraph descriptions.

    Hosts put tool schemas in the model's context. The titles only restate property names
    ("Run Id" for `run_id`) and class docstrings bring their "Attributes:" sections along;
    without them the listing is about a third smaller.
    """
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "description" and isinstance(value, str):
            out[key] = " ".join(value.split("\n\n")[0].split())
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            # Keys here are names (a property may well be called "title"), values are schemas.
            out[key] = {name: _untitled(sub) for name, sub in value.items()}
        else:
            out[key] = _untitled(value)
    return out


def price_note(name: str) -> str:
    """`base ($0.010/run, 15-100 s)`: a processor with its list price and typical latency."""
    processor = PROCESSORS[name]
    low, high = processor.min_seconds, processor.max_seconds
    span = f"{low:.0f}-{high:.0f} s" if high < 120 else f"{_duration(low)} to {_duration(high)}"
    return f"{name} (${processor.price_per_run:.3f}/run, {span})"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def _processor_field(settings: ServerSettings) -> Any:
    choices: Any = Literal[settings.processors]
    listing = "; ".join(price_note(name) for name in settings.processors)
    return (
        choices | None,
        Field(
            default=None,
            description=(
                f"Processor (depth, price and speed of the research). Default "
                f"{settings.default_processor}. Allowed: {listing}. Higher tiers find more and "
                "take longer; '-fast' variants cost the same and finish sooner with slightly "
                "less fresh data."
            ),
        ),
    )


def _wait_field(settings: ServerSettings) -> Any:
    limit = int(settings.max_wait)
    return (
        int,
        Field(
            default=min(30, limit),
            ge=0,
            le=limit,
            description=f"Seconds to wait for the run to finish before answering (0 to {limit}); "
            "0 only checks the status.",
        ),
    )


class _Arguments(BaseModel):
    # Unknown arguments are an error the model can read, not something silently ignored.
    model_config = ConfigDict(extra="forbid")


def _generic_specs(settings: ServerSettings) -> list[ToolSpec]:
    wait = int(settings.max_wait)
    default = price_note(settings.default_processor)
    question: Any = (
        str,
        Field(
            min_length=1,
            description="The research question or objective, with any context that matters "
            "(names, dates, places, what to include or exclude).",
        ),
    )
    output: Any = (
        str | None,
        Field(
            default=None,
            description="What the answer should contain and how it should be shaped, e.g. "
            "'A one-paragraph summary with the founding year'. Default: a direct answer with "
            "the supporting facts.",
        ),
    )
    research_args = create_model(
        "ResearchArguments",
        __base__=_Arguments,
        question=question,
        output=output,
        processor=_processor_field(settings),
    )
    start_args = create_model(
        "StartResearchArguments",
        __base__=_Arguments,
        question=question,
        output=output,
        processor=_processor_field(settings),
    )
    result_args = create_model(
        "GetResearchResultArguments",
        __base__=_Arguments,
        run_id=(
            str,
            Field(
                min_length=1,
                description="The run_id returned by research, start_research or a task tool "
                "(it starts with 'trun_').",
            ),
        ),
        wait_seconds=_wait_field(settings),
    )
    enrich_args = create_model(
        "StartEnrichmentArguments",
        __base__=_Arguments,
        items=(
            list[str | dict[str, Any]],
            Field(
                min_length=1,
                max_length=settings.max_batch_items,
                description="The items to research, one run each: names (e.g. company names) "
                "or small objects (e.g. {'company': 'Acme', 'website': 'acme.com'}).",
            ),
        ),
        fields=(
            dict[str, str] | None,
            Field(
                default=None,
                description="What to find for every item, as column name -> what to put in it, "
                "e.g. {'ceo': 'Full name of the current CEO', 'founded': 'Year founded, "
                "YYYY'}. Names: letters, digits and underscores.",
            ),
        ),
        output=(
            str | None,
            Field(
                default=None,
                description="Instead of fields: a text description of what to write about "
                "each item.",
            ),
        ),
        instructions=(
            str | None,
            Field(
                default=None,
                description="Guidance that applies to every item (sources to prefer, time "
                "frame, what to do when something is unknown).",
            ),
        ),
        processor=_processor_field(settings),
    )
    enrich_result_args = create_model(
        "GetEnrichmentResultsArguments",
        __base__=_Arguments,
        group_id=(
            str,
            Field(
                min_length=1,
                description="The group_id returned by start_enrichment (it starts with 'tgrp_').",
            ),
        ),
        wait_seconds=_wait_field(settings),
        offset=(int, Field(default=0, ge=0, description="Index of the first row to return")),
        limit=(
            int,
            Field(default=25, ge=1, le=100, description="How many rows to return at most"),
        ),
    )
    reuse = (
        "Repeating an identical call within an hour reuses the same run instead of paying again."
    )
    return [
        ToolSpec(
            name="research",
            title="Research the web (cited answer)",
            description=(
                "Research a question on the web with Parallel and get back an answer with "
                "numbered citations (URL, title, excerpt) and a confidence per field. Waits up "
                f"to {wait} s. If the run needs longer, the result has status 'running' and a "
                "run_id: call get_research_result with it to collect the answer; the run goes "
                f"on meanwhile and nothing is lost. {reuse} Each call is a paid run; the "
                f"default processor is {default}."
            ),
            kind="research",
            arguments=research_args,
            result=ResearchResult,
            idempotent=False,
        ),
        ToolSpec(
            name="start_research",
            title="Start web research (returns a run_id)",
            description=(
                "Start a web research run with Parallel and get its run_id back at once, "
                "without waiting. Use it for deep research on higher processors, which can take "
                "minutes, then call get_research_result with the run_id (as often as needed) to "
                f"collect the cited answer. {reuse} Each call is a paid run; the default "
                f"processor is {default}."
            ),
            kind="start",
            arguments=start_args,
            result=ResearchResult,
            idempotent=False,
        ),
        ToolSpec(
            name="get_research_result",
            title="Get a research result",
            description=(
                "Get the status or the cited answer of a research run by its run_id (from "
                "research, start_research or a task tool). Waits up to wait_seconds (at most "
                f"{wait}) for the run to finish; if it is still running, the status says so: "
                "call again later. Reading a result is free."
            ),
            kind="result",
            arguments=result_args,
            result=ResearchResult,
            idempotent=True,
        ),
        ToolSpec(
            name="start_enrichment",
            title="Enrich a list of items (returns a group_id)",
            description=(
                "Research every item of a list (companies, people, products, ...) in one "
                "Parallel task group: one paid run per item. Say what to find with fields "
                "(column name -> what to find) or output (a text description). Returns a "
                "group_id at once; collect the cited rows with get_enrichment_results. At most "
                f"{settings.max_batch_items} items per call; each item costs one run on the "
                f"processor (default {default}). {reuse}"
            ),
            kind="enrich",
            arguments=enrich_args,
            result=EnrichmentResult,
            idempotent=False,
        ),
        ToolSpec(
            name="get_enrichment_results",
            title="Get enrichment results",
            description=(
                "Get the progress and the finished rows of an enrichment by its group_id. "
                f"Waits up to wait_seconds (at most {wait}) for unfinished items. Rows come in "
                "item order with their cited answers; use offset and limit to page through "
                "long lists. Reading results is free."
            ),
            kind="enrich_result",
            arguments=enrich_result_args,
            result=EnrichmentResult,
            idempotent=True,
        ),
    ]


def _result_tool_only(specs: list[ToolSpec]) -> list[ToolSpec]:
    return [spec for spec in specs if spec.kind == "result"]


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-]+", name) if part)


def task_spec_for(task: Task[Any, Any], settings: ServerSettings) -> ToolSpec:
    """The typed tool for one `Task`: its input model as arguments, its output in the result.

    Raises:
        ValueError: the task's name is taken by a generic tool, or its processor is not allowed.
    """
    if task.name in GENERIC_TOOL_NAMES:
        raise ValueError(f"Task {task.name!r} has the name of a built-in tool; rename the task.")
    if task.processor not in settings.processors:
        raise ValueError(
            f"Task {task.name!r} runs on processor {task.processor!r}, which this server does "
            f"not allow (allowed: {', '.join(settings.processors)}). Allow it with --processors "
            "or PARALLEL_MCP_PROCESSORS, or give the task a cheaper processor."
        )
    base = _pascal(task.name)
    input_model = task.input_model
    if input_model is None:
        arguments = create_model(
            f"{base}Arguments",
            __base__=_Arguments,
            input=(str, Field(min_length=1, description="What to research")),
        )
    else:
        # The arguments are the input model itself, so its validators and field descriptions
        # apply unchanged; only unknown arguments are refused.
        config = ConfigDict(**{**input_model.model_config, "extra": "forbid"})
        arguments = type(
            f"{base}Arguments",
            (input_model,),
            {"model_config": config, "__doc__": input_model.__doc__, "__module__": __name__},
        )
    output_model = task.output_model
    if output_model is None:
        result = ResearchResult
    else:
        result = create_model(
            f"{base}Result",
            __base__=ResearchResult,
            __doc__=ResearchResult.__doc__,
            answer=(
                cast(Any, output_model | None),
                Field(description="The answer, once completed (null while running)"),
            ),
        )
    wait = int(settings.max_wait)
    description = (
        f"{task.description.strip()}\n\nReturns the answer with numbered citations (URL, "
        f"title, excerpt) and a confidence per field. Waits up to {wait} s; if the run needs "
        "longer, returns a run_id to pass to get_research_result (nothing is lost). Each call "
        f"is a paid run on {price_note(task.processor)}."
    )
    return ToolSpec(
        name=task.name,
        title=task.name.replace("_", " ").replace("-", " ").capitalize(),
        description=description,
        kind="task",
        arguments=arguments,
        result=result,
        idempotent=False,
        task=task,
    )


def build_manifest(
    tasks: list[Task[Any, Any]] | tuple[Task[Any, Any], ...], settings: ServerSettings
) -> list[ToolSpec]:
    """Every tool the server offers, in `tools/list` order.

    Raises:
        ValueError: a task clashes with another tool or uses a processor not allowed.
    """
    generic = _generic_specs(settings)
    specs = generic if settings.generic_tools else _result_tool_only(generic)
    typed = [task_spec_for(task, settings) for task in tasks]
    names = [spec.name for spec in typed]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"Several tasks are named {', '.join(duplicates)}; rename them.")
    return typed + specs


def instructions(settings: ServerSettings, specs: list[ToolSpec]) -> str:
    """The server's instructions: how to use the tools well and what they cost."""
    names = {spec.name for spec in specs}
    lines = ["Web research with citations, powered by Parallel's Task API."]
    typed = [spec.name for spec in specs if spec.kind == "task"]
    if typed:
        lines.append(
            f"Task tools ({', '.join(typed)}) return typed, cited answers for their inputs."
        )
    if "research" in names:
        lines.append(
            "Use research for a question that needs current, sourced facts; for deep research "
            "use start_research and then get_research_result."
        )
    if "start_enrichment" in names:
        lines.append(
            "To research many similar items, use start_enrichment once rather than many "
            "research calls, then get_enrichment_results."
        )
    lines.append(
        f"No call waits more than {int(settings.max_wait)} s: a run that needs longer hands "
        "back its run_id, and get_research_result collects it later. Cite sources by their "
        "[n] numbers. Every new run is billed; allowed processors: "
        + ", ".join(price_note(name) for name in settings.processors)
        + "."
    )
    return " ".join(lines)


def initialize_result(
    protocol_version: str, settings: ServerSettings, specs: list[ToolSpec]
) -> dict[str, Any]:
    """The `initialize` result the SDK gives for this server (checked against it in tests)."""
    return {
        "protocolVersion": protocol_version,
        "capabilities": {
            "prompts": {"listChanged": False},
            "resources": {"listChanged": False, "subscribe": False},
            "tools": {"listChanged": False},
        },
        "serverInfo": {"name": SERVER_NAME, "version": __version__},
        "instructions": instructions(settings, specs),
    }
