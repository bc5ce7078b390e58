"""Task specs from pydantic models, JSON schemas or plain descriptions, checked locally.

Parallel accepts a subset of JSON Schema for structured outputs. `task_spec()` turns whatever the
caller has into a spec that obeys those rules, so a bad schema fails here, for free, rather than
after a paid run starts:

* `$defs`/`$ref` are inlined and titles dropped;
* every object gets `additionalProperties: false` and lists every property as required
  (Parallel's rule); `Optional[...]` fields keep accepting null (`["string", "null"]`), fields
  with a default keep their type (so the original model validates whatever the schema
  allows), and optional fields of a plain JSON schema become nullable;
* keywords Parallel rejects (`format`, `maxLength`, `minimum`, `pattern`, `maxItems`, ...) are
  removed, and their meaning is written into the field's description ("format: date",
  "at most 5 items") so the processor still follows them; the original pydantic model, which
  keeps the real constraints, validates the result.

`check_output_schema()` holds the rules themselves. The emulator uses the same function to decide
what the API rejects (422) and what it only warns about, so client and emulator cannot disagree.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel

from ._config import (
    LARGE_ENUM_MAX_CHARS,
    LARGE_ENUM_THRESHOLD,
    MAX_ENUM_VALUES,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_PROPERTIES,
    MAX_SCHEMA_STRING_CHARS,
    MAX_SPEC_AND_INPUT_CHARS,
    MAX_SPEC_CHARS,
)
from ._exceptions import SchemaError

__all__ = [
    "OutputSpec",
    "SchemaIssue",
    "SchemaWarning",
    "check_output_schema",
    "check_request_size",
    "compile_json_schema",
    "inline_refs",
    "schema_shape_issues",
    "task_spec",
]

OutputSpec: TypeAlias = type[BaseModel] | Mapping[str, Any] | str | None
"""What `output=` accepts: a pydantic model, a JSON schema (raw or wrapped), a text description,
`"auto"`, or None."""

UNSUPPORTED_KEYWORDS: frozenset[str] = frozenset(
    {
        "contains",
        "format",
        "maxContains",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minContains",
        "minItems",
        "minLength",
        "minimum",
        "minProperties",
        "multipleOf",
        "pattern",
        "patternProperties",
        "propertyNames",
        "uniqueItems",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
# Field names Parallel warns about because the basis already carries that information.
RESERVED_FIELD_NAMES: frozenset[str] = frozenset(
    {"citations", "confidence", "evidence", "reasoning", "source", "sources", "source_urls"}
)
# Keywords that carry no meaning for the processor and only cost spec characters.
_DROPPED = frozenset(
    {
        "title",
        "default",
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "definitions",
        "discriminator",
        "readOnly",
        "writeOnly",
        "deprecated",
    }
)
_FORMAT_HINTS = {
    "date": "format: date (YYYY-MM-DD)",
    "date-time": "format: date-time (ISO 8601, e.g. 2025-04-23T20:21:48Z)",
    "time": "format: time (HH:MM:SS)",
    "duration": "format: duration (ISO 8601, e.g. P3D)",
    "uri": "format: URL",
    "email": "format: email address",
    "uuid": "format: UUID",
}


_NOTE_ORDER = {
    key: i + 1
    for i, key in enumerate(
        [
            "format",
            "pattern",
            "minLength",
            "maxLength",
            "minimum",
            "exclusiveMinimum",
            "maximum",
            "exclusiveMaximum",
            "multipleOf",
            "minItems",
            "maxItems",
            "uniqueItems",
            "minProperties",
            "maxProperties",
            "examples",
        ]
    )
}


class SchemaWarning(UserWarning):
    """A schema Parallel accepts but warns about (e.g. a field named `sources`)."""


@dataclass(frozen=True, slots=True)
class SchemaIssue:
    """One broken rule in a schema.

    Attributes:
        path: Where, as a JSON path (`$.properties.people.items`).
        message: What is wrong and how to fix it.
        severity: `"error"` (the API rejects the spec) or `"warning"` (accepted, with a warning).
    """

    path: str
    message: str
    severity: Literal["error", "warning"]

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


# --- Compilation ---------------------------------------------------------------------------------


def task_spec(input: OutputSpec = None, output: OutputSpec = None) -> dict[str, Any] | None:
    """Build the wire `task_spec` for a run.

    Args:
        input: The input's shape: a pydantic model, a JSON schema, a text description or None.
        output: The output's shape: a pydantic model, a JSON schema (raw, or wrapped as
            `{"type": "json", "json_schema": ...}`), a text description, `"auto"` (the processor
            designs the schema), or None (auto when nothing at all is given).

    Returns:
        The task spec, or None when neither is given (the API then picks an auto schema).

    Raises:
        SchemaError: the output schema breaks one of Parallel's rules; `problems` lists them.
    """
    if input is None and output is None:
        return None
    spec: dict[str, Any] = {"output_schema": _output_schema(output)}
    if input is not None:
        spec["input_schema"] = _input_schema(input)
    size = len(_dumps(spec))
    if size > MAX_SPEC_CHARS:
        raise SchemaError(
            f"The task spec is {size:,} characters; Parallel accepts at most {MAX_SPEC_CHARS:,}. "
            "Shorten field descriptions or split the task into smaller ones."
        )
    return spec


def _output_schema(output: OutputSpec) -> dict[str, Any]:
    if output is None or output == "auto":
        return {"type": "auto"}
    if isinstance(output, str):
        return {"type": "text", "description": output}
    if isinstance(output, type) and issubclass(output, BaseModel):
        return {"type": "json", "json_schema": compile_json_schema(output)}
    if isinstance(output, Mapping):
        kind = output.get("type")
        if kind in ("text", "auto"):
            return dict(output)
        if kind == "json" and "json_schema" in output:
            return {**output, "json_schema": compile_json_schema(output["json_schema"])}
        return {"type": "json", "json_schema": compile_json_schema(output)}
    raise TypeError(
        "output must be a pydantic model class, a JSON schema dict, a text description, "
        f"'auto' or None, not {type(output).__name__}."
    )


def _input_schema(input: OutputSpec) -> dict[str, Any]:
    if isinstance(input, str):
        return {"type": "text", "description": input}
    if isinstance(input, type) and issubclass(input, BaseModel):
        return {"type": "json", "json_schema": compile_json_schema(input, strict=False)}
    if isinstance(input, Mapping):
        if input.get("type") == "text":
            return dict(input)
        if input.get("type") == "json" and "json_schema" in input:
            inner = compile_json_schema(input["json_schema"], strict=False)
            return {**input, "json_schema": inner}
        return {"type": "json", "json_schema": compile_json_schema(input, strict=False)}
    raise TypeError(
        "input must be a pydantic model class, a JSON schema dict, a text description or None, "
        f"not {type(input).__name__}."
    )


def compile_json_schema(
    schema: type[BaseModel] | Mapping[str, Any], *, strict: bool = True
) -> dict[str, Any]:
    """Turn a pydantic model or JSON schema into one Parallel accepts.

    Args:
        schema: A pydantic model class or a JSON schema dict.
        strict: Apply the output rules (every property required, optional ones nullable,
            `additionalProperties: false`). Input schemas are compiled with `strict=False`.

    Raises:
        SchemaError: with `strict`, when the result breaks one of Parallel's output rules.
    """
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        source: dict[str, Any] = schema.model_json_schema(mode="validation")
        name = schema.__name__
    elif isinstance(schema, Mapping):
        source = dict(schema)
        name = "schema"
    else:
        raise TypeError(f"Expected a pydantic model class or a dict, not {type(schema).__name__}.")
    problems: list[str] = []
    defs = {**source.get("definitions", {}), **source.get("$defs", {})}
    from_model = not isinstance(schema, Mapping)
    compiled = _Compiler(defs, strict, problems, not from_model).node(source, "$", ())
    if strict and not problems:
        issues = check_output_schema(compiled)
        problems.extend(str(i) for i in issues if i.severity == "error")
        for issue in issues:
            if issue.severity == "warning":
                warnings.warn(f"{name}: {issue}", SchemaWarning, stacklevel=3)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise SchemaError(
            f"The output schema of {name} cannot be used with Parallel:\n{listing}",
            problems=problems,
        )
    return compiled


class _Compiler:
    def __init__(
        self, defs: dict[str, Any], strict: bool, problems: list[str], nullable_optionals: bool
    ) -> None:
        self.defs = defs
        self.strict = strict
        self.problems = problems
        self.nullable_optionals = nullable_optionals

    def node(self, schema: Any, path: str, seen: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(schema, Mapping):
            self.problems.append(f"{path}: expected a schema object, got {schema!r}")
            return {}
        schema = dict(schema)
        if "$ref" in schema:
            schema = self._resolve(schema, path, seen)
            if "$ref" in schema:
                return {}
            seen = (*seen, schema.pop("__ref__"))
        # pydantic < 2.? wraps a described $ref as allOf: [ref]; a single allOf is a plain merge.
        if "allOf" in schema and len(schema["allOf"]) == 1:
            inner = self.node(schema.pop("allOf")[0], path, seen)
            schema = {**inner, **{k: v for k, v in schema.items() if k != "allOf"}}
        if "oneOf" in schema:
            schema["anyOf"] = schema.pop("oneOf")

        notes: list[str] = []
        out: dict[str, Any] = {}
        # Constraints read best in a fixed order (lower bounds before upper bounds).
        for key, value in sorted(schema.items(), key=lambda item: _NOTE_ORDER.get(item[0], 0)):
            if key in _DROPPED:
                continue
            if key in UNSUPPORTED_KEYWORDS or key in ("exclusiveMinimum", "exclusiveMaximum"):
                note = _constraint_note(key, value)
                if note:
                    notes.append(note)
                continue
            if key == "examples":
                if isinstance(value, list) and value:
                    notes.append("for example: " + ", ".join(_short(v) for v in value[:3]))
                continue
            if key == "const":
                out["enum"] = [value]
                continue
            if key == "prefixItems":
                self.problems.append(
                    f"{path}: tuples (prefixItems) are not supported; use a list or a nested model"
                )
                continue
            out[key] = value

        if "anyOf" in out:
            branches = [
                self.node(b, f"{path}.anyOf[{i}]", seen) for i, b in enumerate(out["anyOf"])
            ]
            out.update(_simplify_union(branches, out))
        if out.get("type") == "object" or "properties" in out:
            self._object(out, path, seen)
        elif "items" in out:
            out["items"] = self.node(out["items"], f"{path}.items", seen)
        if notes:
            description = str(out.get("description", "")).strip()
            joined = "; ".join(notes)
            out["description"] = f"{description} ({joined})" if description else joined
        return out

    def _resolve(self, schema: dict[str, Any], path: str, seen: tuple[str, ...]) -> dict[str, Any]:
        ref = schema["$ref"]
        name = ref.rsplit("/", 1)[-1]
        if not re.match(r"^#/(\$defs|definitions)/", ref) or name not in self.defs:
            self.problems.append(f"{path}: cannot resolve reference {ref!r}")
            return schema
        if name in seen:
            self.problems.append(
                f"{path}: {name} refers to itself; Parallel needs a finite schema, so replace the "
                "recursion with a fixed number of levels"
            )
            return schema
        merged = {**self.defs[name], **{k: v for k, v in schema.items() if k != "$ref"}}
        merged["__ref__"] = name
        return merged

    def _object(self, out: dict[str, Any], path: str, seen: tuple[str, ...]) -> None:
        props = out.get("properties")
        extra = out.get("additionalProperties")
        if not props:
            if isinstance(extra, Mapping) or extra is True or extra is None:
                self.problems.append(
                    f"{path}: a free-form mapping (dict) has no named properties; Parallel needs "
                    "them. Use a nested model, or a list of items with key and value fields"
                )
            return
        required = set(out.get("required", list(props)))
        new_props: dict[str, Any] = {}
        for name, sub in props.items():
            compiled = self.node(sub, f"{path}.properties.{name}", seen)
            # Every field becomes required. In a plain JSON schema a field that was optional
            # becomes nullable ("absent" turns into null). A pydantic field keeps its own type:
            # Optional[...] already accepts null, and a field with a default must not, or the
            # model would reject a null the processor was allowed to send.
            if self.strict and self.nullable_optionals and name not in required:
                compiled = _nullable(compiled)
            new_props[name] = compiled
        out["properties"] = new_props
        out["type"] = "object"
        if self.strict:
            out["required"] = list(new_props)
            out["additionalProperties"] = False
        elif "required" in out:
            out["required"] = [n for n in out["required"] if n in new_props]


def _simplify_union(branches: list[dict[str, Any]], parent: dict[str, Any]) -> dict[str, Any]:
    """`anyOf` of bare types becomes a `type` list, the form Parallel documents for optionals."""
    simple = all(
        set(b) <= {"type", "description"} and isinstance(b.get("type"), str) for b in branches
    )
    if simple and branches:
        types: list[str] = []
        notes: list[str] = []
        for b in branches:
            if b["type"] not in types:
                types.append(b["type"])
            if b.get("description"):
                notes.append(str(b["description"]))
        parent.pop("anyOf", None)
        merged: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
        own = str(parent.get("description") or "")
        if own and notes:
            merged["description"] = f"{own} ({'; '.join(notes)})"
        elif notes:
            merged["description"] = "; ".join(notes)
        return merged
    # A nullable enum or object: keep the union, but a lone enum branch merges cleanly.
    non_null = [b for b in branches if b.get("type") != "null"]
    if len(non_null) == 1 and len(branches) == 2 and "enum" in non_null[0]:
        merged = dict(non_null[0])
        parent.pop("anyOf", None)
        return _nullable(merged)
    return {"anyOf": branches}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    kind = out.get("type")
    if "anyOf" in out:
        if not any(b.get("type") == "null" for b in out["anyOf"]):
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
        return out
    if isinstance(kind, str):
        if kind != "null":
            out["type"] = [kind, "null"]
    elif isinstance(kind, list):
        if "null" not in kind:
            out["type"] = [*kind, "null"]
    else:
        return {"anyOf": [out, {"type": "null"}]}
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def _constraint_note(key: str, value: Any) -> str | None:
    v = _short(value)
    match key:
        case "format":
            return _FORMAT_HINTS.get(str(value), f"format: {value}")
        case "minLength":
            return f"at least {_plural(value, 'character')}"
        case "maxLength":
            return f"at most {_plural(value, 'character')}"
        case "pattern":
            return f"must match the regular expression {value}"
        case "minimum":
            return f"at least {v}"
        case "maximum":
            return f"at most {v}"
        case "exclusiveMinimum":
            return f"greater than {v}"
        case "exclusiveMaximum":
            return f"less than {v}"
        case "multipleOf":
            return f"a multiple of {v}"
        case "minItems":
            return f"at least {_plural(value, 'item')}"
        case "maxItems":
            return f"at most {_plural(value, 'item')}"
        case "uniqueItems":
            return "no duplicate items" if value else None
        case "minProperties":
            return f"at least {_plural(value, 'property', 'properties')}"
        case "maxProperties":
            return f"at most {_plural(value, 'property', 'properties')}"
        case _:
            return None


def _plural(count: Any, one: str, many: str | None = None) -> str:
    return f"{_short(count)} {one if count == 1 else (many or one + 's')}"


def _short(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else json.dumps(value)


# --- The rules -----------------------------------------------------------------------------------


def check_output_schema(schema: Any) -> list[SchemaIssue]:
    """Check a JSON schema against Parallel's output-schema rules.

    Args:
        schema: The JSON schema (the `json_schema` of a `{"type": "json"}` output schema).

    Returns:
        Every issue found; those with severity `"error"` make the API reject the spec.
    """
    issues: list[SchemaIssue] = []

    def error(path: str, message: str) -> None:
        issues.append(SchemaIssue(path, message, "error"))

    def warn(path: str, message: str) -> None:
        issues.append(SchemaIssue(path, message, "warning"))

    malformed = schema_shape_issues(schema)
    if malformed:
        return malformed
    if "anyOf" in schema or "oneOf" in schema:
        error("$", "the root cannot be a union (anyOf); make it an object with properties")
    if schema.get("type") != "object" or not schema.get("properties"):
        error("$", 'the root must be {"type": "object"} with at least one property')

    counts = {"properties": 0, "enum_values": 0, "chars": 0}
    max_depth = 0

    def walk(node: Any, path: str, depth: int, in_union: bool) -> None:
        nonlocal max_depth
        if not isinstance(node, Mapping):
            return
        for key in node:
            if key in UNSUPPORTED_KEYWORDS:
                error(f"{path}.{key}", f"the keyword {key!r} is not supported; describe it instead")
        if "$ref" in node:
            # Undocumented by Parallel (parallel-tools' compiler inlines references); the limits
            # below do not follow them.
            warn(path, "references ($ref) are not documented by Parallel; inline the definition")
        kind = node.get("type")
        types = kind if isinstance(kind, list) else [kind]
        if kind == "null" and not in_union:
            error(
                path, 'a lone "null" type is only allowed inside a union, e.g. ["string", "null"]'
            )
        is_object = "object" in types or "properties" in node
        is_array = "array" in types or "items" in node
        if is_object or is_array:
            depth += 1
            max_depth = max(max_depth, depth)
        enum = node.get("enum")
        if isinstance(enum, list):
            counts["enum_values"] += len(enum)
            chars = sum(len(str(v)) for v in enum)
            counts["chars"] += chars
            if len(enum) > LARGE_ENUM_THRESHOLD and chars > LARGE_ENUM_MAX_CHARS:
                error(
                    path,
                    f"an enum of more than {LARGE_ENUM_THRESHOLD} values must stay under "
                    f"{LARGE_ENUM_MAX_CHARS:,} characters (this one has {chars:,})",
                )
        props = node.get("properties")
        if isinstance(props, Mapping):
            counts["properties"] += len(props)
            for name, sub in props.items():
                counts["chars"] += len(name)
                if name in RESERVED_FIELD_NAMES:
                    warn(
                        f"{path}.properties.{name}",
                        f"the field name {name!r} duplicates the basis Parallel returns with "
                        "every field (citations, reasoning, confidence); rename it",
                    )
                walk(sub, f"{path}.properties.{name}", depth, False)
            required = node.get("required") or []
            missing = [n for n in props if n not in required]
            if missing:
                warn(path, f"all fields must be required; not required: {', '.join(missing)}")
            if node.get("additionalProperties") is not False:
                warn(path, "objects should set additionalProperties to false")
        if "items" in node:
            walk(node["items"], f"{path}.items", depth, False)
        for union_key in ("anyOf", "oneOf"):
            for i, branch in enumerate(node.get(union_key) or []):
                walk(branch, f"{path}.{union_key}[{i}]", depth, True)

    walk(schema, "$", 0, False)
    if max_depth > MAX_SCHEMA_DEPTH:
        error(
            "$",
            f"the schema nests {max_depth} levels of objects and arrays; at most "
            f"{MAX_SCHEMA_DEPTH} are allowed. Flatten it",
        )
    if counts["properties"] > MAX_SCHEMA_PROPERTIES:
        error(
            "$",
            f"the schema has {counts['properties']} properties in all; at most "
            f"{MAX_SCHEMA_PROPERTIES} are allowed. Split the task",
        )
    if counts["enum_values"] > MAX_ENUM_VALUES:
        error(
            "$",
            f"the enums hold {counts['enum_values']} values in all; at most {MAX_ENUM_VALUES} "
            "are allowed",
        )
    if counts["chars"] > MAX_SCHEMA_STRING_CHARS:
        error(
            "$",
            f"property names and enum values total {counts['chars']:,} characters; at most "
            f"{MAX_SCHEMA_STRING_CHARS:,} are allowed",
        )
    return issues


_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


def schema_shape_issues(schema: Any, path: str = "$") -> list[SchemaIssue]:
    """Where a schema is not well-formed JSON Schema (a keyword holding the wrong kind of value).

    Parallel's rules (`check_output_schema`) read these keywords, so a malformed schema is
    reported here, as errors, instead of crashing them or slipping past them. It applies to
    input schemas too, which the output rules do not.
    """
    if not isinstance(schema, Mapping):
        return [SchemaIssue(path, f"a schema must be a JSON object, not {_short(schema)}", "error")]
    issues: list[SchemaIssue] = []

    def bad(where: str, message: str) -> None:
        issues.append(SchemaIssue(f"{path}.{where}", message, "error"))

    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not kinds or not all(isinstance(k, str) and k in _JSON_TYPES for k in kinds):
            bad("type", f"{_short(kind)} is not a JSON schema type")
    props = schema.get("properties")
    if props is not None:
        if not isinstance(props, Mapping):
            bad("properties", f"properties must map field names to schemas, not {_short(props)}")
        else:
            for name, sub in props.items():
                issues.extend(schema_shape_issues(sub, f"{path}.properties.{name}"))
    items = schema.get("items")
    if items is not None and not isinstance(items, bool):
        if isinstance(items, list):
            bad("items", "items must be one schema object (tuples are not supported)")
        else:
            issues.extend(schema_shape_issues(items, f"{path}.items"))
    extra = schema.get("additionalProperties")
    if extra is not None and not isinstance(extra, bool):
        issues.extend(schema_shape_issues(extra, f"{path}.additionalProperties"))
    for key in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(key)
        if branches is None:
            continue
        if not isinstance(branches, list) or not branches:
            bad(key, f"{key} must be a non-empty list of schemas")
            continue
        for i, branch in enumerate(branches):
            issues.extend(schema_shape_issues(branch, f"{path}.{key}[{i}]"))
    required = schema.get("required")
    if required is not None and not (
        isinstance(required, list) and all(isinstance(r, str) for r in required)
    ):
        bad("required", "required must be a list of field names")
    enum = schema.get("enum")
    if enum is not None and not (isinstance(enum, list) and enum):
        bad("enum", "enum must be a non-empty list of values")
    description = schema.get("description")
    if description is not None and not isinstance(description, str):
        bad("description", "description must be a string")
    return issues


def inline_refs(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a schema with its local references (`#/$defs/X`, `#/definitions/X`) replaced
    by the definitions, and the definitions dropped. A reference back into itself becomes `{}`.
    """
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        if not isinstance(node, Mapping):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and re.match(r"^#/(\$defs|definitions)/", ref):
            name = ref.rsplit("/", 1)[-1]
            if name in seen or name not in defs:
                return {}
            merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
            return resolve(merged, (*seen, name))
        return {
            key: resolve(value, seen)
            for key, value in node.items()
            if key not in ("$defs", "definitions")
        }

    resolved: dict[str, Any] = resolve(schema, ())
    return resolved


def check_request_size(spec: Mapping[str, Any] | None, input: Any) -> str | None:
    """Check the spec and input against Parallel's size limits.

    Returns:
        None when within limits, otherwise a message saying which limit is exceeded and by how much.
    """
    spec_chars = _spec_chars(spec) if spec else 0
    if spec_chars > MAX_SPEC_CHARS:
        return f"the task spec is {spec_chars:,} characters; at most {MAX_SPEC_CHARS:,} are allowed"
    input_chars = len(input) if isinstance(input, str) else len(_dumps(input))
    total = spec_chars + input_chars
    if total > MAX_SPEC_AND_INPUT_CHARS:
        return (
            f"the task spec and input total {total:,} characters; at most "
            f"{MAX_SPEC_AND_INPUT_CHARS:,} are allowed. Shorten the input"
        )
    return None


_last_spec: tuple[Any, int] | None = None


def _spec_chars(spec: Mapping[str, Any]) -> int:
    # Batches check thousands of inputs against one spec: serialise it once, not per input.
    global _last_spec
    cached = _last_spec
    if cached is not None and cached[0] is spec:
        return cached[1]
    chars = len(_dumps(spec))
    _last_spec = (spec, chars)
    return chars


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
