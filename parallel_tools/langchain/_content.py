"""What the model reads in a tool message: compact, numbered, citable text."""

from __future__ import annotations

from typing import Any, Literal

from .._models import TaskRun
from .._progress import Progress
from .._results import TaskResult, cited_answer, clip_to_tokens

__all__ = ["ContentFormat", "pending_content", "result_content", "started_content"]

ContentFormat = Literal["markdown", "json"]


def result_content(
    result: TaskResult[Any],
    *,
    content_format: ContentFormat = "markdown",
    follow_ups: bool = True,
    note: str | None = None,
    max_tokens: int | None = None,
) -> str:
    """The content of a successful tool message.

    `markdown` is the answer with numbered citation markers and the numbered sources (what
    `TaskResult.to_markdown()` renders), then the run's ids and warnings. `json` is the
    `CitedAnswer` structure that the MCP server returns too, as compact JSON.

    Args:
        result: The run's result.
        content_format: `"markdown"` or `"json"`.
        follow_ups: Tell the model how to ask a follow-up in the same context.
        note: A line to put first, e.g. why the answer is not in the expected shape.
        max_tokens: Cut the answer (not the run id and follow-up lines) to about this many
            tokens; the full result stays in the tool message's artifact.
    """
    if content_format == "json":
        body = cited_answer(result).model_dump_json(exclude_defaults=True)
        return f"{note}\n{body}" if note else body
    lines = [note] if note else []
    answer = result.to_markdown()
    if max_tokens is not None:
        answer = clip_to_tokens(
            answer,
            max_tokens,
            "[Cut here to fit the tool output limit; the full answer and "
            "sources are in the tool message's artifact.]",
        )
    lines.append(answer)
    lines.append("")
    lines.append(f"Run: {result.run_id}")
    if follow_ups:
        lines.append(
            "For a follow-up in the context of this answer, pass "
            f'previous_interaction_id="{result.interaction_id}".'
        )
    lines.extend(f"Warning: {w.message}" for w in result.warnings)
    return "\n".join(lines)


def started_content(run: TaskRun, *, result_tool: str, typical: str | None) -> str:
    """The content of a start tool's message: the run id and what to do with it."""
    duration = f" It typically takes {typical}." if typical else ""
    return (
        f"Started research run {run.run_id} (processor {run.processor or 'default'}).{duration} "
        f'Call {result_tool} with run_id "{run.run_id}" to collect the cited answer; '
        "meanwhile you can do other work."
    )


def pending_content(run: TaskRun, *, tool: str, progress: Progress | None) -> str:
    """The content of a get-result message for a run that has not finished yet."""
    seen = f" Latest progress: {progress.describe()}." if progress and progress.messages else ""
    return (
        f"Research run {run.run_id} is still {run.status}; its answer is not ready yet.{seen} "
        f'Call {tool} with run_id "{run.run_id}" again later.'
    )
