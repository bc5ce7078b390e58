"""`TaskResult`: a completed run's answer, parsed, with its basis arranged for citing."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from ._exceptions import OutputValidationError
from ._models import Citation, FieldBasis, JsonOutput, RunWarning, TaskOutput, TaskRun

__all__ = [
    "CitedAnswer",
    "FieldSummary",
    "Source",
    "TaskResult",
    "cited_answer",
    "clip_to_tokens",
    "estimate_tokens",
]

OutputT = TypeVar("OutputT")

_EXCERPT_CHARS = 240
# Models count about four characters a token in English; three keeps the estimate on the
# high side, so text cut to a budget stays within it.
CHARS_PER_TOKEN = 3


def estimate_tokens(text: str) -> int:
    """A deliberately high estimate of how many tokens a model will count in `text`."""
    return len(text) // CHARS_PER_TOKEN + 1


def clip_to_tokens(
    text: str, max_tokens: int, note: str = "[Cut here to fit the tool output limit.]"
) -> str:
    """`text`, cut (ending with `note`) so that its estimate stays within `max_tokens`."""
    limit = max_tokens * CHARS_PER_TOKEN - len(note) - 4
    if len(text) <= max_tokens * CHARS_PER_TOKEN:
        return text
    return text[: max(limit, 0)].rstrip() + "\n\n" + note


class Source(BaseModel):
    """One numbered source of a result, merged across every field that cites it.

    Attributes:
        number: Its number in `to_markdown()` markers (`[1]`), starting at 1.
        url: The source's URL.
        title: The page title, when Parallel reported one.
        excerpts: The passages quoted from it, without duplicates.
        fields: The fields (or dot paths) it supports.
    """

    number: int
    url: str
    title: str | None = None
    excerpts: list[str] = Field(default_factory=list)
    fields: list[str] = Field(default_factory=list)


class TaskResult(BaseModel, Generic[OutputT]):
    """The answer of a completed run with its basis.

    `parsed` is the output as the caller asked for it: an instance of the output model, the
    text of a text output, or the JSON object of an untyped JSON output.

    Build one with `TaskResult.from_run_result(result, output_model)`; `TaskClient.run()` does.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    run: TaskRun
    output: TaskOutput
    parsed: OutputT | None = None
    _sources: list[Source] | None = PrivateAttr(default=None)

    @classmethod
    def from_run_result(cls, result: Any, output: type[BaseModel] | None = None) -> TaskResult[Any]:
        """Parse a `TaskRunResult` (model or wire dict) and validate it against `output`.

        Raises:
            OutputValidationError: the content does not fit `output`. The error's `result`
                keeps the raw content and basis, so nothing is lost.
        """
        if isinstance(result, BaseModel):
            # Copies, so that parsing a JSON string below never changes the caller's object.
            run, output_data = result.run.model_copy(), result.output.model_copy()  # type: ignore[attr-defined]
        else:
            run, output_data = result["run"], result["output"]
            if isinstance(output_data, BaseModel):
                output_data = output_data.model_copy()
        made: TaskResult[Any] = cls.model_validate({"run": run, "output": output_data})
        content = made.output.content
        if isinstance(made.output, JsonOutput) and isinstance(content, str):
            # Some documented examples send the JSON object as a string.
            try:
                content = json.loads(content)
                made.output.content = content
            except ValueError:
                pass
        if output is None:
            made.parsed = content
            return made
        try:
            made.parsed = output.model_validate(content)
        except ValidationError as exc:
            errors = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
            ]
            summary = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in errors[:5]
            )
            raise OutputValidationError(
                f"Run {made.run_id} completed, but its output does not fit {output.__name__}: "
                f"{summary}. The raw output and its citations are on this error's `result`.",
                result=made,
                errors=errors,
            ) from None
        return made

    # --- Identity ---------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.run.run_id

    @property
    def interaction_id(self) -> str:
        """Pass this as `previous_interaction_id` to ask a follow-up in the same context."""
        return self.run.interaction_id or self.run.run_id

    @property
    def content(self) -> Any:
        """The raw output content: a string for text outputs, an object for JSON outputs."""
        return self.output.content

    @property
    def warnings(self) -> list[RunWarning]:
        """Warnings Parallel attached to the run (schema issues, MCP failures, ...)."""
        return list(self.run.warnings or [])

    # --- Basis ------------------------------------------------------------------------------

    @property
    def basis(self) -> dict[str, FieldBasis]:
        """The basis of every field by name; list elements and nested values by dot path."""
        return {b.field: b for b in self.output.basis}

    def confidence(self, field: str) -> str | None:
        """Parallel's confidence in a field (`"low"`, `"medium"`, `"high"`), if it gave one."""
        entry = self.basis.get(field)
        return entry.confidence or None if entry else None

    @property
    def low_confidence_fields(self) -> list[str]:
        """Fields (and dot paths) Parallel rated `low`: check these before relying on them."""
        return [b.field for b in self.output.basis if (b.confidence or "").lower() == "low"]

    def citations(self, field: str | None = None) -> list[Citation]:
        """Citations without duplicates, in order of appearance.

        Args:
            field: Only those for this field and its nested dot paths (`people` includes
                `people.0`); None for all.

        Citations of the same URL are merged: the first title wins and excerpts are combined.
        """
        merged: dict[str, Citation] = {}
        for entry in self._entries(field):
            for citation in entry.citations:
                known = merged.get(citation.url)
                if known is None:
                    merged[citation.url] = Citation(
                        url=citation.url,
                        title=citation.title,
                        excerpts=list(citation.excerpts or []),
                    )
                    continue
                known.title = known.title or citation.title
                for excerpt in citation.excerpts or []:
                    if excerpt not in (known.excerpts or []):
                        known.excerpts = [*(known.excerpts or []), excerpt]
        return list(merged.values())

    def _entries(self, field: str | None) -> Iterable[FieldBasis]:
        if field is None:
            return self.output.basis
        prefix = field + "."
        return [b for b in self.output.basis if b.field == field or b.field.startswith(prefix)]

    @property
    def sources(self) -> list[Source]:
        """Every cited source, numbered in order of first appearance."""
        if self._sources is None:
            by_url: dict[str, Source] = {}
            for entry in self.output.basis:
                for citation in entry.citations:
                    source = by_url.get(citation.url)
                    if source is None:
                        source = by_url[citation.url] = Source(
                            number=len(by_url) + 1, url=citation.url, title=citation.title
                        )
                    source.title = source.title or citation.title
                    for excerpt in citation.excerpts or []:
                        if excerpt and excerpt not in source.excerpts:
                            source.excerpts.append(excerpt)
                    if entry.field not in source.fields:
                        source.fields.append(entry.field)
            self._sources = list(by_url.values())
        return self._sources

    def source_numbers(self, field: str) -> list[int]:
        """The numbers of the sources cited for exactly this field or dot path."""
        return [s.number for s in self.sources if field in s.fields]

    # --- Rendering --------------------------------------------------------------------------

    def to_markdown(self, *, excerpts: bool = True, max_excerpt_chars: int = _EXCERPT_CHARS) -> str:
        """The answer for an agent: values with numbered citation markers, then the sources.

        Args:
            excerpts: Quote each source's first excerpt under it.
            max_excerpt_chars: Cut quoted excerpts to this length.
        """
        lines: list[str] = []
        if isinstance(self.output, JsonOutput) and isinstance(self.content, dict):
            for name, value in self.content.items():
                lines.extend(self._render_field(name, value, name, 0))
        else:
            lines.append(f"{str(self.content).rstrip()}{self._markers('output')}")
            confidence = self.confidence("output")
            if confidence:
                lines.append(f"(confidence: {confidence})")
        sources = self.sources
        if sources:
            lines += ["", "Sources:"]
            for source in sources:
                label = f"{source.title} - {source.url}" if source.title else source.url
                lines.append(f"[{source.number}] {label}")
                if excerpts and source.excerpts:
                    lines.append(f'    "{_clip(source.excerpts[0], max_excerpt_chars)}"')
        if self.low_confidence_fields:
            lines += ["", "Low confidence: " + ", ".join(self.low_confidence_fields)]
        return "\n".join(lines)

    def _markers(self, path: str) -> str:
        numbers = self.source_numbers(path)
        return " " + "".join(f"[{n}]" for n in numbers) if numbers else ""

    def _render_field(self, label: str, value: Any, path: str, depth: int) -> list[str]:
        indent = "  " * depth
        confidence = self.confidence(path)
        suffix = self._markers(path) + (f" (confidence: {confidence})" if confidence else "")
        if isinstance(value, dict):
            out = [f"{indent}- {label}:{suffix}"]
            for key, sub in value.items():
                out.extend(self._render_field(key, sub, f"{path}.{key}", depth + 1))
            return out
        if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
            out = [f"{indent}- {label}:{suffix}"]
            for i, item in enumerate(value):
                out.extend(self._render_field(f"[{i}]", item, f"{path}.{i}", depth + 1))
            return out
        if isinstance(value, list):
            rendered = ", ".join(_scalar(v) for v in value) if value else "(none)"
        else:
            rendered = _scalar(value)
        return [f"{indent}- {label}: {rendered}{suffix}"]


def _scalar(value: Any) -> str:
    if value is None:
        return "(unknown)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class FieldSummary(BaseModel):
    """The basis of one field, condensed for an agent.

    Attributes:
        field: The field name, dot path, or `"output"` for text answers.
        confidence: `"low"`, `"medium"` or `"high"`, when Parallel rated it.
        sources: The numbers of the sources behind it (see `CitedAnswer.sources`).
        reasoning: Parallel's explanation of how it arrived at the value.
    """

    field: str
    confidence: str | None = None
    sources: list[int] = Field(default_factory=list)
    reasoning: str = ""


class CitedAnswer(BaseModel):
    """A result as an agent should see it: the answer, numbered sources, and per-field basis.

    This is the structured form behind MCP tools' `structuredContent` and LangChain tools'
    content, so every host shows the same answer with the same citation numbers.

    Attributes:
        run_id: The run, for follow-ups and lookups.
        interaction_id: Pass as `previous_interaction_id` to ask a follow-up in context.
        processor: The processor that produced it.
        answer: The text answer, or the JSON object of a structured answer.
        sources: Every cited source, numbered as in `markdown`.
        basis: Confidence, sources and reasoning per field.
        low_confidence_fields: Fields to double-check.
        warnings: Warnings Parallel attached to the run.
    """

    run_id: str
    interaction_id: str
    processor: str
    answer: Any
    sources: list[Source] = Field(default_factory=list)
    basis: list[FieldSummary] = Field(default_factory=list)
    low_confidence_fields: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


def cited_answer(
    result: TaskResult[Any],
    *,
    max_excerpts: int = 2,
    max_excerpt_chars: int = _EXCERPT_CHARS,
    reasoning: bool = True,
) -> CitedAnswer:
    """Condense a result for an agent: excerpts clipped, basis by field, sources numbered."""
    answer = result.content
    if isinstance(result.parsed, BaseModel):
        answer = result.parsed.model_dump(mode="json")
    sources = [
        source.model_copy(
            update={
                "excerpts": [_clip(e, max_excerpt_chars) for e in source.excerpts[:max_excerpts]]
            }
        )
        for source in result.sources
    ]
    basis = [
        FieldSummary(
            field=entry.field,
            confidence=entry.confidence or None,
            sources=result.source_numbers(entry.field),
            reasoning=entry.reasoning if reasoning else "",
        )
        for entry in result.output.basis
    ]
    return CitedAnswer(
        run_id=result.run_id,
        interaction_id=result.interaction_id,
        processor=result.run.processor,
        answer=answer,
        sources=sources,
        basis=basis,
        low_confidence_fields=result.low_confidence_fields,
        warnings=[w.message for w in result.warnings],
    )
