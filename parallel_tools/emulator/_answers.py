"""What an emulated run answers: a registered fixture, or a deterministic synthetic output.

Fixtures are looked up by input (strings compare without surrounding whitespace and case;
objects compare by value). A text fixture answers text output schemas; an object fixture answers
JSON schemas it fits and auto schemas. Anything else gets a synthetic answer that is valid
against the output schema, with a basis entry per top-level field (and one per list element,
``people.0``), citing pages on reserved example domains so nobody mistakes it for research.
The same seed, input and schema always give the same answer.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeAlias

__all__ = ["Fixture", "FixtureStore", "OutputKind", "build_output", "fits_schema", "infer_schema"]

OutputKind: TypeAlias = Literal["text", "json", "auto"]
JSONInput: TypeAlias = str | dict[str, Any]

_DOMAINS = ("www.example.com", "www.example.org", "www.example.net", "docs.example.com")
_CONFIDENCE = ("high", "medium", "low")


@dataclass(frozen=True, slots=True, eq=False)
class Fixture:
    """A canned answer for an input.

    Attributes:
        output: Text content (a str) or JSON content (a dict), returned verbatim.
        basis: The basis entries, returned verbatim; None to generate them for the content.
        processor: Only answer runs on this processor.
        description_contains: Only answer when the task's output description (for text) or
            JSON schema contains this text, case-insensitively.
        output_schema: The schema reported for auto runs; inferred from the content if None.
    """

    output: str | dict[str, Any]
    basis: tuple[dict[str, Any], ...] | None = None
    processor: str | None = None
    description_contains: str | None = None
    output_schema: dict[str, Any] | None = None


def input_key(value: Any) -> str:
    """The lookup key of a run input."""
    if isinstance(value, str):
        return "s:" + value.strip().casefold()
    return "j:" + json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class FixtureStore:
    """Fixtures by input; the latest added wins when several fit."""

    def __init__(self) -> None:
        self._by_input: dict[str, list[Fixture]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_input.values())

    def add(self, inputs: Iterable[JSONInput], fixture: Fixture) -> None:
        """Register ``fixture`` for each of ``inputs``."""
        for value in inputs:
            self._by_input.setdefault(input_key(value), []).append(fixture)

    def clear(self) -> None:
        """Forget every fixture."""
        self._by_input = {}

    def find(
        self,
        value: Any,
        kind: OutputKind,
        json_schema: Mapping[str, Any] | None,
        description: str | None,
        processor: str,
    ) -> Fixture | None:
        """The fixture that answers this run, or None."""
        candidates = self._by_input.get(input_key(value))
        if not candidates:
            return None
        for fixture in reversed(candidates):
            if fixture.processor is not None and fixture.processor != processor:
                continue
            if fixture.description_contains is not None:
                haystack = description or ""
                if json_schema is not None:
                    haystack = json.dumps(json_schema)
                if fixture.description_contains.casefold() not in haystack.casefold():
                    continue
            if kind == "text" and isinstance(fixture.output, str):
                return fixture
            if kind == "auto" and isinstance(fixture.output, dict):
                return fixture
            if (
                kind == "json"
                and isinstance(fixture.output, dict)
                and json_schema is not None
                and fits_schema(fixture.output, json_schema)
            ):
                return fixture
        return None


def load_fixture_file(
    source: str | Path | Mapping[str, Any] | Sequence[Any],
) -> list[tuple[list[JSONInput], Fixture]]:
    """Read fixtures from a JSON file (or already parsed data).

    The file holds a list of fixtures, or ``{"fixtures": [...]}``. Each fixture is an object with
    ``input`` (or ``inputs``, a list), ``output`` (a string or an object), and optionally
    ``basis``, ``processor``, ``description_contains`` and ``output_schema``.

    Raises:
        ValueError: the file is not valid JSON or a fixture is malformed (the message says which).
    """
    if isinstance(source, str | Path):
        try:
            data: Any = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"Cannot read fixtures from {source}: {exc}") from None
    else:
        data = source
    if isinstance(data, Mapping):
        data = data.get("fixtures")
    if not isinstance(data, list):
        raise ValueError('Fixtures must be a JSON list, or an object with a "fixtures" list.')
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise ValueError(f"Fixture {i} is not an object.")
        unknown = set(item) - {
            "input",
            "inputs",
            "output",
            "basis",
            "processor",
            "description_contains",
            "output_schema",
        }
        if unknown:
            raise ValueError(f"Fixture {i} has unknown key(s): {', '.join(sorted(unknown))}.")
        inputs = item["inputs"] if "inputs" in item else [item.get("input")]
        try:
            out.append(
                (
                    check_inputs(inputs),
                    make_fixture(
                        item.get("output"),
                        item.get("basis"),
                        processor=item.get("processor"),
                        description_contains=item.get("description_contains"),
                        output_schema=item.get("output_schema"),
                    ),
                )
            )
        except ValueError as exc:
            raise ValueError(f"Fixture {i}: {exc}") from None
    return out


def check_inputs(inputs: Any) -> list[JSONInput]:
    """Validate fixture inputs: each a non-empty string or a JSON object."""
    if not isinstance(inputs, list) or not inputs:
        raise ValueError("inputs must be a non-empty list of strings or objects.")
    for value in inputs:
        if not isinstance(value, str | dict):
            raise ValueError(f"an input must be a string or an object, not {value!r}.")
    return inputs


def make_fixture(
    output: Any,
    basis: Any = None,
    *,
    processor: str | None = None,
    description_contains: str | None = None,
    output_schema: Any = None,
) -> Fixture:
    """Validate the parts of a fixture and build it."""
    if not isinstance(output, str | dict):
        raise ValueError("output must be a string (text answer) or an object (JSON answer).")
    parsed_basis: tuple[dict[str, Any], ...] | None = None
    if basis is not None:
        if not isinstance(basis, list) or not all(
            isinstance(b, dict) and isinstance(b.get("field"), str) for b in basis
        ):
            raise ValueError('basis must be a list of objects, each with a "field" string.')
        parsed_basis = tuple(basis)
    if output_schema is not None and not isinstance(output_schema, dict):
        raise ValueError("output_schema must be a JSON schema object.")
    return Fixture(output, parsed_basis, processor, description_contains, output_schema)


def builtin_fixtures() -> list[tuple[list[JSONInput], Fixture]]:
    """The answers shipped with the emulator (the quickstart's United Nations examples)."""
    text = resources.files(__package__).joinpath("fixtures", "builtin.json").read_text("utf-8")
    return load_fixture_file(json.loads(text))


# --- Checking values against schemas ------------------------------------------------------------

_TYPE_CHECKS: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def fits_schema(value: Any, schema: Any) -> bool:
    """Whether ``value`` is valid against the subset of JSON Schema Parallel accepts."""
    if not isinstance(schema, Mapping):
        return True
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return any(fits_schema(value, branch) for branch in schema[key])
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "const" in schema and value != schema["const"]:
        return False
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_TYPE_CHECKS.get(k, lambda v: True)(value) for k in kinds):
            return False
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        if any(name not in value for name in schema.get("required") or ()):
            return False
        if schema.get("additionalProperties") is False and set(value) - set(props):
            return False
        return all(fits_schema(value[k], props[k]) for k in value if k in props)
    if isinstance(value, list) and "items" in schema:
        return all(fits_schema(item, schema["items"]) for item in value)
    return True


def infer_schema(value: Any) -> dict[str, Any]:
    """A JSON schema describing ``value`` (what an auto run reports as its ``output_schema``)."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if value is None:
        return {"type": "null"}
    if isinstance(value, list):
        return {"type": "array", "items": infer_schema(value[0]) if value else {}}
    props = {k: infer_schema(v) for k, v in value.items()}
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


# --- Building outputs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerRequest:
    """Everything an answer depends on."""

    input: Any
    kind: OutputKind
    json_schema: Mapping[str, Any] | None
    description: str | None
    processor: str
    mcp_servers: Sequence[Mapping[str, Any]] | None
    seed: int


def build_output(request: AnswerRequest, fixture: Fixture | None) -> dict[str, Any]:
    """The run's ``output`` object (``TaskRunTextOutput`` or ``TaskRunJsonOutput`` on the wire)."""
    writer = _Writer(request)
    if fixture is not None:
        output = _from_fixture(writer, request, fixture)
    elif request.kind == "text":
        output = writer.text_output()
    else:
        schema = request.json_schema if request.kind == "json" else _AUTO_SCHEMA
        content = writer.value(schema or {}, "", 0)
        output = {"type": "json", "content": content, "basis": writer.basis_for(content)}
        if request.kind == "auto":
            output["output_schema"] = _AUTO_SCHEMA  # shared: outputs are only ever serialised
    if request.mcp_servers:
        output["mcp_tool_calls"] = writer.tool_calls(request.mcp_servers)
    return output


def _from_fixture(writer: _Writer, request: AnswerRequest, fixture: Fixture) -> dict[str, Any]:
    content = json.loads(json.dumps(fixture.output))  # callers may mutate what they get
    if isinstance(content, str):
        basis = list(fixture.basis) if fixture.basis is not None else writer.text_basis(content)
        return {"type": "text", "content": content, "basis": json.loads(json.dumps(basis))}
    basis = list(fixture.basis) if fixture.basis is not None else writer.basis_for(content)
    output: dict[str, Any] = {
        "type": "json",
        "content": content,
        "basis": json.loads(json.dumps(basis)),
    }
    if request.kind == "auto":
        output["output_schema"] = fixture.output_schema or infer_schema(content)
    return output


_AUTO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Research summary chosen by the processor for the question.",
    "properties": {
        "summary": {"type": "string", "description": "A short answer to the question."},
        "key_facts": {
            "type": "array",
            "description": "The facts the answer rests on.",
            "items": {
                "type": "object",
                "properties": {
                    "fact": {"type": "string", "description": "One fact."},
                    "detail": {"type": "string", "description": "Context for the fact."},
                },
                "required": ["fact", "detail"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["summary", "key_facts"],
    "additionalProperties": False,
}

_WORDS = re.compile(r"[a-z0-9]+")


class _Writer:
    """Deterministic prose, values and citations for one run."""

    def __init__(self, request: AnswerRequest) -> None:
        self.request = request
        canon = json.dumps(
            [request.seed, request.input, request.kind, request.json_schema, request.description],
            sort_keys=True,
            default=str,
        )
        digest = hashlib.blake2b(canon.encode(), digest_size=8).digest()
        self.rng = random.Random(int.from_bytes(digest, "big"))
        self.subject = subject_of(request.input)
        self.slug = "-".join(_WORDS.findall(self.subject.lower())[:6]) or "topic"
        self._cite_count = 0

    # values

    def value(self, schema: Any, path: str, depth: int) -> Any:
        if not isinstance(schema, Mapping):
            return self._string(path, "")
        branches = schema.get("anyOf") or schema.get("oneOf")
        if branches:
            non_null = [
                b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")
            ]
            return self.value(
                self.rng.choice(non_null) if non_null else {"type": "null"}, path, depth
            )
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            choices = [v for v in enum if v is not None] or enum
            return self.rng.choice(choices)
        kind = schema.get("type")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            kind = self.rng.choice(non_null) if non_null else "null"
        if kind is None:  # untyped: infer from the keywords, else a string
            kind = "string"
            if "properties" in schema:
                kind = "object"
            elif "items" in schema:
                kind = "array"
        description = str(schema.get("description") or "")
        if kind == "object":
            props = schema.get("properties") or {}
            return {
                name: self.value(sub, _join(path, name), depth + 1) for name, sub in props.items()
            }
        if kind == "array":
            count = 2 if depth < 3 else 1
            return [
                self.value(schema.get("items", {}), _join(path, str(i)), depth + 1)
                for i in range(count)
            ]
        if kind == "integer":
            return self._integer(path, description)
        if kind == "number":
            return round(self.rng.uniform(1, 1000), 2)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(path, description)

    def _integer(self, path: str, description: str) -> int:
        hint = f"{path} {description}".lower()
        if "year" in hint or "founded" in hint:
            return self.rng.randint(1950, 2024)
        return self.rng.randint(1, 5000)

    def _string(self, path: str, description: str) -> str:
        name = path.rsplit(".", 1)[-1]
        hint = f"{path} {description}".lower()
        words = " ".join(_WORDS.findall(name.lower())) or "value"
        year, month, day = (
            self.rng.randint(1950, 2024),
            self.rng.randint(1, 12),
            self.rng.randint(1, 28),
        )
        if any(w in hint for w in ("url", "website", "homepage", "link")):
            return f"https://{self.rng.choice(_DOMAINS)}/{self.slug}"
        if "email" in hint:
            return f"contact@{self.slug or 'info'}.example.com"
        if "phone" in hint:
            return f"+1-555-01{self.rng.randint(0, 99):02d}"
        if "mm-yyyy" in hint:
            return f"{month:02d}-{year}"
        if "yyyy-mm-dd" in hint or "date" in hint:
            return f"{year}-{month:02d}-{day:02d}"
        if "year" in hint:
            return str(year)
        if name.endswith("name") or name == "title":
            return f"Example {words.title()} {self.rng.randint(1, 99)}"
        return f"Emulated {words} for {self.subject}."

    # basis

    def citation(self, topic: str) -> dict[str, Any]:
        self._cite_count += 1
        n = self._cite_count
        domain = _DOMAINS[(n - 1) % len(_DOMAINS)]
        slug = "-".join(_WORDS.findall(topic.lower())) or "source"
        return {
            "url": f"https://{domain}/{self.slug}/{slug}-{n}",
            "title": f"Example source {n}: {topic} ({self.subject})",
            "excerpts": [
                f"Placeholder excerpt about {topic} for {self.subject}; the emulator wrote it "
                "and no page was read."
            ],
        }

    def field_basis(self, field: str, value: Any) -> dict[str, Any]:
        label = field.replace("_", " ")
        count = 1 + self.rng.randint(0, 1)
        return {
            "field": field,
            "citations": [self.citation(label) for _ in range(count)],
            "reasoning": f"Emulated basis: the value of {label} was generated for "
            f"{self.subject} by the parallel-tools emulator, not found by web research.",
            "confidence": self.rng.choice(_CONFIDENCE),
        }

    def basis_for(self, content: Any) -> list[dict[str, Any]]:
        if not isinstance(content, dict):
            return [self.field_basis("output", content)]
        basis = []
        for name, value in content.items():
            basis.append(self.field_basis(name, value))
            if isinstance(value, list):
                basis.extend(self.field_basis(f"{name}.{i}", item) for i, item in enumerate(value))
        return basis

    def text_basis(self, content: str) -> list[dict[str, Any]]:
        return [self.field_basis("output", content)]

    def text_output(self) -> dict[str, Any]:
        task = self.request.description or "Answer the question about the input."
        citations = [self.citation("overview"), self.citation("background")]
        first, second = citations
        content = (
            f"# {self.subject}\n\n"
            f"**Task:** {task}\n\n"
            f"This report was written by the parallel-tools emulator: it has the shape of a "
            f"research answer but no web research was done [1]({first['url']}). Replace it "
            f"with a real run before relying on any of it [2]({second['url']}).\n\n"
            "## Sources\n\n"
            f"1. [{first['title']}]({first['url']})\n"
            f"2. [{second['title']}]({second['url']})\n"
        )
        basis = {
            "field": "output",
            "citations": citations,
            "reasoning": f"Emulated report about {self.subject}; the citations are placeholders.",
            "confidence": self.rng.choice(_CONFIDENCE),
        }
        return {"type": "text", "content": content, "basis": [basis]}

    def tool_calls(self, servers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        calls = []
        # Parallel documents that lite and core make at most one tool call in a run.
        limit = 1 if self.request.processor.removesuffix("-fast") in ("lite", "core") else 3
        for server in list(servers)[:limit]:
            allowed = server.get("allowed_tools") or ["search"]
            calls.append(
                {
                    "tool_call_id": f"call_{self.rng.getrandbits(64):016x}",
                    "server_name": str(server.get("name", "")),
                    "tool_name": str(allowed[0]),
                    "arguments": json.dumps({"query": self.subject}),
                    "content": f"Emulated result from {server.get('name')} for {self.subject}.",
                    "error": "",
                }
            )
        return calls


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def subject_of(value: Any) -> str:
    """A short human label for an input, used in generated prose."""
    if isinstance(value, str):
        text = " ".join(value.split())
    elif isinstance(value, dict):
        strings = [v for v in value.values() if isinstance(v, str) and v.strip()]
        text = " ".join(strings[0].split()) if strings else "the input"
    else:
        text = "the input"
    return text if len(text) <= 60 else text[:57].rstrip() + "..."
