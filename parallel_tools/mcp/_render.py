"""Tool results for agents: structured content, markdown with numbered citations, a size budget.

The structured half is the core's `CitedAnswer` (the same object LangChain tools return) plus
where the run stands; the markdown half is `TaskResult.to_markdown()`, whose `[n]` markers use
the same numbers as `sources`. Both halves together stay under the operator's token budget:
excerpts and reasoning go first, then long values are cut, and the text says where the full
result is (a resource) whenever anything was cut.

No MCP SDK here: this module turns core objects into plain data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from .._agent import agent_error_text
from .._config import PROCESSORS
from .._exceptions import (
    AuthenticationError,
    ConfigurationError,
    ParallelError,
)
from .._models import TaskRun
from .._results import CHARS_PER_TOKEN, TaskResult, cited_answer, clip_to_tokens, estimate_tokens
from ._manifest import (
    GROUP_URI,
    RUN_URI,
    EnrichmentResult,
    EnrichmentRow,
    ResearchResult,
    RowAnswer,
)

__all__ = [
    "Rendered",
    "Row",
    "clip_to_tokens",
    "completed",
    "enrichment",
    "enrichment_started",
    "error_text",
    "estimate_tokens",
    "group_uri",
    "pending",
    "price_of",
    "run_uri",
]

# Characters per token, on the low side for JSON-heavy text, so estimates err towards too many.

# How hard to squeeze, in order: (excerpts per source, excerpt chars, reasoning, excerpts in the
# text, longest answer string, most sources). None means "no limit".
_LEVELS: Final[tuple[tuple[int, int, bool, bool, int | None, int | None], ...]] = (
    (2, 240, True, True, None, None),
    (1, 160, False, False, None, None),
    (1, 120, False, False, 12_000, 40),
    (1, 80, False, False, 3_000, 20),
    (0, 0, False, False, 600, 10),
)


def run_uri(run_id: str) -> str:
    """The resource holding a run's full result."""
    return RUN_URI.format(run_id=run_id)


def group_uri(group_id: str) -> str:
    """The resource holding every row of an enrichment."""
    return GROUP_URI.format(group_id=group_id)


def price_of(processor: str) -> float | None:
    """The list price of one run on `processor`, if it is a known processor."""
    known = PROCESSORS.get(processor)
    return known.price_per_run if known else None


def _price_text(processor: str, unit: str = "run") -> str:
    price = price_of(processor)
    return f"{processor}, list price ${price:.3f} per {unit}" if price is not None else processor


@dataclass(frozen=True)
class Rendered:
    """A tool result before it becomes MCP content.

    Attributes:
        structured: The `structuredContent` object.
        markdown: The text content.
        resource_uri: The resource with the full result.
        resource_name: A name for the resource link.
    """

    structured: dict[str, Any]
    markdown: str
    resource_uri: str
    resource_name: str


# --- Single runs ---------------------------------------------------------------------------------


def completed(
    result: TaskResult[Any],
    *,
    model: type[ResearchResult] = ResearchResult,
    max_tokens: int,
    note: str | None = None,
) -> Rendered:
    """A completed run: the cited answer, cut down until both halves fit `max_tokens`.

    Args:
        result: The run's result.
        model: The structured result model (a typed task's model checks the answer's shape).
        max_tokens: The budget for text and structured content together.
        note: A line to put above the answer (e.g. that an earlier run was reused).
    """
    run_id = result.run_id
    uri = run_uri(run_id)
    name = f"Parallel run {run_id}"
    for level, (excerpts, excerpt_chars, reasoning, md_excerpts, longest, most) in enumerate(
        _LEVELS
    ):
        cut = level >= 2
        shown = _clip_result(result, longest) if longest is not None else result
        structured = _structured(
            shown, model, excerpts, excerpt_chars, reasoning, most, truncated=cut, uri=uri
        )
        markdown = _completed_markdown(shown, md_excerpts, uri, note, truncated=cut)
        if _fits(structured, markdown, max_tokens):
            return Rendered(structured, markdown, uri, name)
    # Whatever the answer looks like, this always fits: the resource has the rest.
    structured = _structured(result, model, 0, 0, False, 0, truncated=True, uri=uri, answer=False)
    budget = max_tokens - estimate_tokens(json.dumps(structured)) - 50
    markdown = _completed_markdown(_clip_result(result, 600), False, uri, note, truncated=True)
    markdown = _clip_text(markdown, max(200, budget * CHARS_PER_TOKEN), uri)
    return Rendered(structured, markdown, uri, name)


def _structured(
    result: TaskResult[Any],
    model: type[ResearchResult],
    excerpts: int,
    excerpt_chars: int,
    reasoning: bool,
    most_sources: int | None,
    *,
    truncated: bool,
    uri: str,
    answer: bool = True,
) -> dict[str, Any]:
    cited = cited_answer(
        result, max_excerpts=excerpts, max_excerpt_chars=max(excerpt_chars, 1), reasoning=reasoning
    )
    if most_sources is not None and len(cited.sources) > most_sources:
        cited.sources = cited.sources[:most_sources]
        truncated = True
    fields = cited.model_dump(mode="json")
    if not answer:
        fields.update(answer=None, sources=[], basis=[])
    values = {
        **fields,
        "status": "completed",
        "price_usd": price_of(cited.processor),
        "resource_uri": uri,
        "truncated": truncated,
    }
    try:
        built = model.model_validate(values)
    except ValidationError:
        # A cut answer may no longer fit a typed model (a cut string breaks a pattern): send
        # no answer rather than a wrong one; the text half and the resource carry it.
        values.update(answer=None, truncated=True)
        built = model.model_validate(values)
    return built.model_dump(mode="json", by_alias=True)


def _completed_markdown(
    result: TaskResult[Any], excerpts: bool, uri: str, note: str | None, *, truncated: bool
) -> str:
    lines = []
    if note:
        lines += [note, ""]
    lines += [
        f"Research result of Parallel run {result.run_id} ({_price_text(result.run.processor)}):",
        "",
        result.to_markdown(excerpts=excerpts),
    ]
    warnings = [w.message for w in result.warnings if w.message]
    if warnings:
        lines += ["", "Warnings: " + " | ".join(warnings)]
    lines.append("")
    if truncated:
        lines.append(
            f"[Truncated to fit the tool output limit. The full result is in the resource {uri}.]"
        )
    else:
        lines.append(f"Full result (JSON with every citation): {uri}")
    return "\n".join(lines)


def _fits(structured: dict[str, Any], markdown: str, max_tokens: int) -> bool:
    return estimate_tokens(json.dumps(structured)) + estimate_tokens(markdown) <= max_tokens


def _clip_result(result: TaskResult[Any], longest: int | None) -> TaskResult[Any]:
    if longest is None:
        return result
    content = result.content
    strings = _count_strings(content)
    limit = longest if strings <= 1 else max(120, longest // strings)
    clipped = _clip_value(content, limit)
    copy = result.model_copy(deep=True)
    copy.output.content = clipped
    copy.parsed = clipped if not isinstance(result.parsed, BaseModel) else None
    return copy


def _count_strings(value: Any) -> int:
    if isinstance(value, str):
        return 1
    if isinstance(value, dict):
        return sum(_count_strings(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_strings(v) for v in value)
    return 0


def _clip_value(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit].rstrip() + " …[cut]"
    if isinstance(value, dict):
        return {k: _clip_value(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip_value(v, limit) for v in value[:50]]
    return value


def _clip_text(text: str, limit: int, uri: str) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + f"\n\n[Cut here to fit the tool output limit; see {uri}.]"


def pending(
    run: TaskRun,
    *,
    tool: str = "get_research_result",
    waited: float | None = None,
    max_wait: float,
    model: type[ResearchResult] = ResearchResult,
    note: str | None = None,
) -> Rendered:
    """A run that is not done yet: its id, status and how to collect it."""
    run_id = run.run_id
    uri = run_uri(run_id)
    processor = PROCESSORS.get(run.processor)
    typical = (
        f" On {run.processor}, runs typically take {processor.min_seconds:.0f}-"
        f"{processor.max_seconds:.0f} s."
        if processor
        else ""
    )
    next_step = (
        f'Call {tool} with run_id="{run_id}" to collect the answer (each call waits up to '
        f"{max_wait:.0f} s).{typical}"
    )
    if waited is None:
        head = (
            f"Started Parallel run {run_id} ({_price_text(run.processor)}); status: {run.status}."
        )
    else:
        head = (
            f"Parallel run {run_id} is still {run.status} after {waited:.0f} s of waiting. "
            "Nothing is lost: the run goes on at Parallel."
        )
    lines = [note, ""] if note else []
    lines += [head, next_step, "", f"Status and, once done, the full result: {uri}"]
    structured = model.model_validate(
        {
            "run_id": run_id,
            "interaction_id": run.interaction_id or run_id,
            "processor": run.processor,
            "answer": None,
            "warnings": [w.message for w in run.warnings or [] if w.message],
            "status": run.status,
            "price_usd": price_of(run.processor),
            "resource_uri": uri,
            "next_step": next_step,
        }
    ).model_dump(mode="json", by_alias=True)
    return Rendered(structured, "\n".join(lines), uri, f"Parallel run {run_id}")


# --- Enrichments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One item of an enrichment, as read from the group."""

    index: int
    input: Any
    run: TaskRun
    result: TaskResult[Any] | None = None


def enrichment(
    group_id: str,
    rows: Sequence[Row],
    *,
    processor: str,
    counts: dict[str, int],
    active: bool,
    offset: int,
    limit: int,
    max_tokens: int,
    max_wait: float,
    waited: float | None = None,
) -> Rendered:
    """A page of an enrichment's rows (in item order) that fits `max_tokens`."""
    uri = group_uri(group_id)
    total = len(rows)
    done = counts.get("completed", 0) + counts.get("failed", 0) + counts.get("cancelled", 0)
    status = "running" if active else "completed"
    next_step = None
    if active:
        next_step = (
            f'Call get_enrichment_results with group_id="{group_id}" again to collect the '
            f"remaining items (each call waits up to {max_wait:.0f} s)."
        )
    head = [
        f"Enrichment {group_id}: {done} of {total} items finished ({_counts_text(counts)}); "
        f"{_price_text(processor, 'item')}."
    ]
    if active and waited is not None:
        head.append(f"Still running after {waited:.0f} s of waiting; nothing is lost.")
    base = EnrichmentResult(
        group_id=group_id,
        status=status,
        processor=processor,
        price_usd=price_of(processor),
        total_items=total,
        counts=counts,
        offset=offset,
        resource_uri=uri,
        next_step=next_step,
    )
    budget = max_tokens - estimate_tokens(json.dumps(base.model_dump(mode="json"))) - 200
    budget -= estimate_tokens("\n".join(head)) + 100
    shown: list[EnrichmentRow] = []
    sections: list[str] = []
    used = 0
    end = min(total, offset + limit)
    truncated = False
    for row in rows[offset:end]:
        entry, section = _row(row)
        cost = estimate_tokens(entry.model_dump_json()) + estimate_tokens(section)
        if used + cost > budget:
            if not shown:
                # A single row larger than the whole budget: send it without its answer.
                entry = entry.model_copy(update={"result": None})
                section = _clip_text(section, max(200, budget * CHARS_PER_TOKEN // 2), uri)
                shown.append(entry)
                sections.append(section)
            truncated = True
            break
        used += cost
        shown.append(entry)
        sections.append(section)
    next_offset = offset + len(shown) if offset + len(shown) < total else None
    if next_offset is not None:
        head.append(
            f"Showing items {offset}-{offset + len(shown) - 1}; call get_enrichment_results with "
            f"offset={next_offset} for more."
        )
    structured = base.model_copy(
        update={"rows": shown, "next_offset": next_offset, "truncated": truncated}
    ).model_dump(mode="json")
    lines = [*head]
    if next_step:
        lines.append(next_step)
    for section in sections:
        lines += ["", section]
    lines += ["", f"Every row in full: {uri}"]
    return Rendered(structured, "\n".join(lines), uri, f"Parallel enrichment {group_id}")


def enrichment_started(
    group_id: str, items: int, *, processor: str, max_wait: float, note: str | None = None
) -> Rendered:
    """A freshly started enrichment: its group id, what it costs, how to collect it."""
    uri = group_uri(group_id)
    price = price_of(processor)
    total = f" (list price ${price * items:.3f} in all)" if price is not None else ""
    next_step = (
        f'Call get_enrichment_results with group_id="{group_id}" to collect the rows (each call '
        f"waits up to {max_wait:.0f} s)."
    )
    structured = EnrichmentResult(
        group_id=group_id,
        status="running",
        processor=processor,
        price_usd=price,
        total_items=items,
        counts={"queued": items},
        resource_uri=uri,
        next_step=next_step,
    ).model_dump(mode="json")
    lines = [note, ""] if note else []
    lines += [
        f"Started enrichment {group_id}: {items} items, one run each on "
        f"{_price_text(processor)}{total}.",
        next_step,
        "",
        f"Every row, once done: {uri}",
    ]
    return Rendered(structured, "\n".join(lines), uri, f"Parallel enrichment {group_id}")


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()) if n) or "none yet"


def _row(row: Row) -> tuple[EnrichmentRow, str]:
    label = row.input if isinstance(row.input, str) else json.dumps(row.input, ensure_ascii=False)
    title = f"### [{row.index}] {_clip_value(label, 200)}"
    if row.result is not None:
        cited = cited_answer(row.result, max_excerpts=1, max_excerpt_chars=160, reasoning=False)
        entry = EnrichmentRow(
            index=row.index,
            input=row.input,
            run_id=row.run.run_id,
            status="completed",
            result=RowAnswer.model_validate(cited.model_dump()),
        )
        return entry, f"{title}\n{row.result.to_markdown(excerpts=False)}"
    error = row.run.error.message if row.run.error and row.run.error.message else None
    if row.run.status in ("failed", "cancelled"):
        error = error or f"The run {row.run.status}."
        text = f"{title}\n(run {row.run.run_id} {row.run.status}: {error})"
    else:
        text = f"{title}\n(run {row.run.run_id}: {row.run.status})"
    entry = EnrichmentRow(
        index=row.index,
        input=row.input,
        run_id=row.run.run_id,
        status=row.run.status,
        error=error,
    )
    return entry, text


# --- Errors --------------------------------------------------------------------------------------


def error_text(exc: BaseException, *, tool: str, api_key: str | None = None) -> str:
    """Actionable text for a failed call: what happened and what the model should do next."""
    if isinstance(exc, ParallelError):
        # Calling a research tool again with the same arguments picks up a recorded run.
        text = agent_error_text(exc, tool=tool, result_tool="get_research_result", reuses_runs=True)
        if isinstance(exc, ConfigurationError | AuthenticationError):
            text += " (The key goes in the MCP server's environment; restart it after changing it.)"
    else:
        text = (
            f"The parallel-tools MCP server failed unexpectedly ({type(exc).__name__}); the "
            "details are in the server's log. Any run already started is safe: call "
            f"{tool} again with the same arguments to pick it up."
        )
    # The core never puts the key in messages; this is a second line of defence. Very short
    # "keys" (test placeholders) would redact ordinary words, so they are left alone.
    if api_key and len(api_key) >= 8 and api_key in text:
        text = text.replace(api_key, "<redacted>")
    return text
