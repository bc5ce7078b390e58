"""Checking request bodies the way the Task API does: 422 for bad shapes, 403 for processors.

Schema rules and size limits come from :mod:`parallel_tools._schema`, so the client and the
emulator cannot disagree about them. Each problem is reported as ``{"loc", "msg", "type"}``
(FastAPI's shape), collected rather than stopping at the first one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._config import (
    MAX_MCP_SERVERS,
    MAX_METADATA_KEY_CHARS,
    MAX_METADATA_VALUE_CHARS,
    MAX_RUNS_PER_GROUP_REQUEST,
    MAX_SOURCE_POLICY_DOMAINS,
    PROCESSORS,
)
from .._schema import check_output_schema, check_request_size, inline_refs, schema_shape_issues
from ._answers import OutputKind, fits_schema

__all__ = ["ApiError", "RunRequest", "SpecCache", "SpecInfo", "parse_group_runs", "parse_run"]

MSG_422: Final = "Unprocessable content: request validation error"
MSG_403: Final = "Forbidden: invalid processor in request"

Loc = tuple[str | int, ...]


class ApiError(Exception):
    """An error answer: status, message and ``detail`` for the ``ErrorResponse`` body."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = dict(headers or {})


class ValidationFailed(ApiError):
    """A 422 with a list of problems, each ``{"loc", "msg", "type"}``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(422, MSG_422, {"errors": errors})
        self.errors = errors


@dataclass(frozen=True, slots=True, eq=False)
class SpecInfo:
    """A parsed task spec; runs with the same spec share one instance.

    Attributes:
        spec: The ``task_spec`` as sent, or None when it was omitted (auto output).
        kind: The output kind.
        json_schema: The output JSON schema (``kind == "json"``).
        description: The text output's description.
        input_schema: The input JSON schema, when one was given as JSON.
        warnings: Warnings the spec earns on every run that uses it.
    """

    spec: dict[str, Any] | None
    kind: OutputKind
    json_schema: dict[str, Any] | None
    description: str | None
    input_schema: dict[str, Any] | None
    warnings: tuple[dict[str, Any], ...]


class SpecCache:
    """Parsed specs by their canonical JSON, so a spec used by many runs is checked and stored once.

    Bounded: past ``limit`` distinct specs it starts over (runs keep their own reference).
    """

    def __init__(self, limit: int = 1024) -> None:
        self._specs: dict[str, SpecInfo | ValidationFailed] = {}
        self._limit = limit

    def get(self, spec: Any, loc: Loc) -> SpecInfo:
        """Parse ``spec`` (the ``task_spec`` value), raising :class:`ValidationFailed`."""
        key = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        cached = self._specs.get(key)
        if cached is None:
            try:
                cached = _parse_spec(spec, ())
            except ValidationFailed as exc:
                cached = exc
            if len(self._specs) >= self._limit:
                self._specs = {}
            self._specs[key] = cached
        if isinstance(cached, ValidationFailed):
            raise ValidationFailed([{**e, "loc": [*loc, *e["loc"]]} for e in cached.errors])
        return cached


@dataclass(slots=True)
class RunRequest:
    """A valid run request.

    Attributes:
        processor: The processor's wire name.
        input: The run's input.
        spec: The effective task spec (the run's own, else the group default).
        fields: The other documented fields that were sent, as sent (for ``/input``).
        warnings: The run's warnings, besides the emulator's own.
    """

    processor: str
    input: str | dict[str, Any]
    spec: SpecInfo
    fields: dict[str, Any]
    warnings: list[dict[str, Any]]


# Documented request fields besides processor, input and task_spec; anything else is ignored,
# as the API does (the SDK's `extra_body` relies on it).
_OPTIONAL_FIELDS: Final = (
    "metadata",
    "source_policy",
    "advanced_settings",
    "previous_interaction_id",
    "mcp_servers",
    "enable_events",
    "webhook",
    "memory_scope_key",
)


def parse_json(body: bytes) -> Any:
    """Decode a JSON body, or raise a 422 saying where it breaks.

    NaN and infinities are refused (they cannot be written back as JSON), and so is nesting
    deeper than :data:`MAX_JSON_DEPTH`, which keeps every recursive step after this safe.
    """
    try:
        data = json.loads(body, parse_constant=_no_constant, parse_float=_finite_float)
    except UnicodeDecodeError:
        raise ValidationFailed([_err((), "The body is not UTF-8 text.", "json_invalid")]) from None
    except RecursionError:
        data = None
        depth = MAX_JSON_DEPTH + 1
    except ValueError as exc:
        raise ValidationFailed(
            [_err((), f"The body is not valid JSON: {exc}.", "json_invalid")]
        ) from None
    else:
        depth = _depth(data)
    if depth > MAX_JSON_DEPTH:
        raise ValidationFailed(
            [_err((), f"The body nests more than {MAX_JSON_DEPTH} levels deep.", "json_invalid")]
        )
    return data


MAX_JSON_DEPTH: Final = 64
"""How deeply request bodies may nest (Parallel's schemas allow 5 levels)."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is too large for a JSON number")
    return value


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_run(
    data: Any,
    specs: SpecCache,
    *,
    loc: Loc = ("body",),
    default_spec: Any = None,
) -> RunRequest:
    """Validate one run request (a create body, or one of a group's ``inputs``).

    Raises:
        ValidationFailed: 422 with every problem found.
        ApiError: 403 for an unknown processor.
    """
    if not isinstance(data, dict):
        raise ValidationFailed([_err(loc, "Expected a JSON object.", "model_type")])
    errors: list[dict[str, Any]] = []
    processor = data.get("processor")
    if "processor" not in data:
        errors.append(_err((*loc, "processor"), "Field required.", "missing"))
    elif not isinstance(processor, str):
        errors.append(_err((*loc, "processor"), "Input should be a string.", "string_type"))
    value = data.get("input")
    if "input" not in data:
        errors.append(_err((*loc, "input"), "Field required.", "missing"))
    elif not isinstance(value, str | dict):
        errors.append(
            _err((*loc, "input"), "Input should be a string or a JSON object.", "input_type")
        )
    elif not value:
        errors.append(_err((*loc, "input"), "The input must not be empty.", "value_error"))
    fields: dict[str, Any] = {}
    for name in _OPTIONAL_FIELDS:
        if name in data:
            _CHECKS[name](data[name], (*loc, name), errors)
            fields[name] = data[name]
    # A run's own spec overrides the group default; an explicit null means "no override".
    own_spec = data.get("task_spec")
    spec_value = own_spec if own_spec is not None else default_spec
    spec: SpecInfo | None = None
    try:
        spec = specs.get(spec_value, (*loc, "task_spec"))
    except ValidationFailed as exc:
        errors.extend(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    assert isinstance(processor, str) and spec is not None and isinstance(value, str | dict)
    info = PROCESSORS.get(processor)
    if info is None:
        raise ApiError(
            403,
            MSG_403,
            {"processor": processor, "valid_processors": list(PROCESSORS)},
        )
    problem = check_request_size(spec.spec, value)
    if problem:
        raise ValidationFailed([_err(loc, problem[0].upper() + problem[1:] + ".", "too_large")])
    warnings = list(spec.warnings)
    if spec.json_schema is not None:
        count = len(spec.json_schema.get("properties") or {})
        if count > info.max_fields:
            warnings.append(
                {
                    "type": "spec_validation_warning",
                    "message": f"The output schema has {count} top-level fields; the "
                    f"{processor} processor handles about {info.max_fields} well. Use a "
                    "higher processor or split the task.",
                    "detail": {"fields": count, "processor_max_fields": info.max_fields},
                }
            )
    if spec.input_schema is not None and not (
        isinstance(value, dict) and fits_schema(value, spec.input_schema)
    ):
        warnings.append(
            {
                "type": "input_validation_warning",
                "message": "The input does not match the task spec's input schema.",
                "detail": None,
            }
        )
    return RunRequest(processor=info.name, input=value, spec=spec, fields=fields, warnings=warnings)


def parse_group_runs(data: Any, specs: SpecCache) -> list[RunRequest]:
    """Validate a ``POST .../groups/{id}/runs`` body; all runs are valid or none is added.

    Raises:
        ValidationFailed: 422 listing every problem, located by input index.
        ApiError: 403 for an unknown processor.
    """
    loc: Loc = ("body",)
    if not isinstance(data, dict):
        raise ValidationFailed([_err(loc, "Expected a JSON object.", "model_type")])
    inputs = data.get("inputs")
    if not isinstance(inputs, list):
        kind = "missing" if "inputs" not in data else "list_type"
        msg = "Field required." if kind == "missing" else "Input should be a list."
        raise ValidationFailed([_err((*loc, "inputs"), msg, kind)])
    if not inputs:
        raise ValidationFailed(
            [_err((*loc, "inputs"), "Give at least one run to add.", "too_short")]
        )
    if len(inputs) > MAX_RUNS_PER_GROUP_REQUEST:
        raise ValidationFailed(
            [
                _err(
                    (*loc, "inputs"),
                    f"At most {MAX_RUNS_PER_GROUP_REQUEST:,} runs can be added per request; "
                    f"got {len(inputs):,}. Send them in several requests.",
                    "too_long",
                )
            ]
        )
    has_default = data.get("default_task_spec") is not None
    default = data.get("default_task_spec")
    if has_default:
        specs.get(default, (*loc, "default_task_spec"))
    runs: list[RunRequest] = []
    errors: list[dict[str, Any]] = []
    for i, item in enumerate(inputs):
        try:
            runs.append(
                parse_run(
                    item,
                    specs,
                    loc=(*loc, "inputs", i),
                    default_spec=default,
                )
            )
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return runs


def check_metadata(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> None:
    """Metadata: an object of short keys to strings, numbers or booleans."""
    if value is None:
        return
    if not isinstance(value, dict):
        errors.append(_err(loc, "Input should be an object or null.", "dict_type"))
        return
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY_CHARS:
            errors.append(
                _err(
                    (*loc, key),
                    f"Metadata keys may have at most {MAX_METADATA_KEY_CHARS} characters.",
                    "string_too_long",
                )
            )
        if not isinstance(item, str | int | float):  # bool is an int
            errors.append(
                _err(
                    (*loc, key),
                    "Metadata values must be strings, numbers or booleans.",
                    "value_type",
                )
            )
        elif isinstance(item, str) and len(item) > MAX_METADATA_VALUE_CHARS:
            errors.append(
                _err(
                    (*loc, key),
                    f"Metadata values may have at most {MAX_METADATA_VALUE_CHARS} characters.",
                    "string_too_long",
                )
            )


def _check_source_policy(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        errors.append(_err(loc, "Input should be an object or null.", "dict_type"))
        return
    total = 0
    for name in ("include_domains", "exclude_domains"):
        domains = value.get(name)
        if domains is None:
            continue
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            errors.append(_err((*loc, name), "Input should be a list of domains.", "list_type"))
            continue
        total += len(domains)
        for i, domain in enumerate(domains):
            if "://" in domain or not domain.strip():
                errors.append(
                    _err(
                        (*loc, name, i),
                        f"{domain!r} is not a domain: give 'example.com' or '.gov', without "
                        "a scheme.",
                        "value_error",
                    )
                )
    if total > MAX_SOURCE_POLICY_DOMAINS:
        errors.append(
            _err(
                loc,
                f"A source policy may list at most {MAX_SOURCE_POLICY_DOMAINS} domains in all; "
                f"this one lists {total}.",
                "too_long",
            )
        )
    after = value.get("after_date")
    if after is not None and not _is_date(after):
        errors.append(
            _err((*loc, "after_date"), "Give a date as YYYY-MM-DD, or null.", "date_type")
        )


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_webhook(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        errors.append(_err(loc, "Input should be an object or null.", "dict_type"))
        return
    url = value.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        errors.append(_err((*loc, "url"), "Give the webhook's http(s) URL.", "url_type"))
    types = value.get("event_types", [])
    if types is not None and (
        not isinstance(types, list) or any(t != "task_run.status" for t in types)
    ):
        errors.append(
            _err(
                (*loc, "event_types"),
                'The only webhook event type is "task_run.status".',
                "enum",
            )
        )


def _check_mcp_servers(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        errors.append(_err(loc, "Input should be a list of MCP servers.", "list_type"))
        return
    if len(value) > MAX_MCP_SERVERS:
        errors.append(
            _err(loc, f"At most {MAX_MCP_SERVERS} MCP servers are allowed per run.", "too_long")
        )
    for i, server in enumerate(value):
        where = (*loc, i)
        if not isinstance(server, dict):
            errors.append(_err(where, "Each MCP server is an object.", "dict_type"))
            continue
        url = server.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            errors.append(_err((*where, "url"), "Give the server's http(s) URL.", "url_type"))
        if not isinstance(server.get("name"), str) or not server["name"]:
            errors.append(_err((*where, "name"), "Give the server a name.", "missing"))
        if server.get("type", "url") != "url":
            errors.append(_err((*where, "type"), 'The only server type is "url".', "enum"))
        headers = server.get("headers")
        if headers is not None and not (
            isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
        ):
            errors.append(_err((*where, "headers"), "Headers map names to strings.", "dict_type"))
        tools = server.get("allowed_tools")
        if tools is not None and not (
            isinstance(tools, list) and all(isinstance(t, str) for t in tools)
        ):
            errors.append(
                _err((*where, "allowed_tools"), "Give a list of tool names.", "list_type")
            )


def _check_advanced_settings(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        errors.append(_err(loc, "Input should be an object or null.", "dict_type"))
        return
    location = value.get("location")
    if location is not None and not isinstance(location, str):
        errors.append(
            _err((*loc, "location"), "Give an ISO 3166-1 alpha-2 code such as 'us'.", "string_type")
        )


def _optional(kind: type, name: str) -> Any:
    def check(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> None:
        if value is not None and not isinstance(value, kind):
            errors.append(_err(loc, f"Input should be {name} or null.", f"{kind.__name__}_type"))

    return check


_CHECKS: Final[dict[str, Any]] = {
    "metadata": check_metadata,
    "source_policy": _check_source_policy,
    "advanced_settings": _check_advanced_settings,
    "previous_interaction_id": _optional(str, "a string"),
    "mcp_servers": _check_mcp_servers,
    "enable_events": _optional(bool, "a boolean"),
    "webhook": _check_webhook,
    "memory_scope_key": _optional(str, "a string"),
}


# --- Task specs ---------------------------------------------------------------------------------


def _parse_spec(spec: Any, loc: Loc) -> SpecInfo:
    if spec is None:
        return SpecInfo(None, "auto", None, None, None, ())
    if not isinstance(spec, dict):
        raise ValidationFailed([_err(loc, "Input should be an object or null.", "dict_type")])
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    if "output_schema" not in spec:
        raise ValidationFailed(
            [
                _err(
                    (*loc, "output_schema"),
                    "Field required (a description, or a schema "
                    'such as {"type": "json", "json_schema": {...}}).',
                    "missing",
                )
            ]
        )
    kind, json_schema, description = _output_schema(
        spec["output_schema"], (*loc, "output_schema"), errors, warnings
    )
    input_schema = _input_schema(spec.get("input_schema"), (*loc, "input_schema"), errors)
    if errors:
        raise ValidationFailed(errors)
    return SpecInfo(spec, kind, json_schema, description, input_schema, tuple(warnings))


def _schema_kind(value: dict[str, Any]) -> str | None:
    kind = value.get("type")
    if kind is not None:
        return kind if isinstance(kind, str) else None
    # The API defaults `type` per union member: an object with `json_schema` is a JSON schema,
    # one with at most a description is a text schema (the SDK sends `{}` for TextSchemaParam()).
    if "json_schema" in value:
        return "json"
    if set(value) <= {"description"}:
        return "text"
    return None


def _output_schema(
    value: Any, loc: Loc, errors: list[dict[str, Any]], warnings: list[dict[str, Any]]
) -> tuple[OutputKind, dict[str, Any] | None, str | None]:
    if isinstance(value, str):
        return "text", None, value
    if not isinstance(value, dict):
        errors.append(_err(loc, "Give a description string or a schema object.", "union_type"))
        return "text", None, None
    kind = _schema_kind(value)
    if kind == "text":
        description = value.get("description")
        if description is not None and not isinstance(description, str):
            errors.append(_err((*loc, "description"), "Input should be a string.", "string_type"))
        return "text", None, description if isinstance(description, str) else None
    if kind == "auto":
        return "auto", None, None
    if kind == "json":
        schema = value.get("json_schema")
        if not isinstance(schema, dict):
            errors.append(
                _err((*loc, "json_schema"), "Give the JSON schema as an object.", "dict_type")
            )
            return "json", None, None
        issues = check_output_schema(schema)  # well-formedness first, then Parallel's rules
        if any(issue.severity == "error" for issue in issues):
            errors.extend(
                {
                    **_err((*loc, "json_schema"), f"{i.path}: {i.message}.", "schema_error"),
                    "path": i.path,
                }
                for i in issues
                if i.severity == "error"
            )
            return "json", None, None
        for issue in issues:
            warnings.append(
                {
                    "type": "spec_validation_warning",
                    "message": f"{issue.message[0].upper()}{issue.message[1:]}.",
                    "detail": {"path": issue.path},
                }
            )
        # Answers are generated from the resolved schema (the official SDK sends nested
        # pydantic models as $defs/$ref).
        return (
            "json",
            inline_refs(schema) if "$defs" in schema or "definitions" in schema else schema,
            None,
        )
    if "properties" in value or value.get("type") == "object":
        hint = (
            'This looks like a bare JSON schema; wrap it as {"type": "json", "json_schema": ...}.'
        )
    else:
        hint = 'Use "type": "json", "text" or "auto".'
    errors.append(
        _err(
            (*loc, "type"),
            f"Unknown output schema type {value.get('type')!r}. {hint}",
            "union_tag_invalid",
        )
    )
    return "text", None, None


def _input_schema(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> dict[str, Any] | None:
    if value is None or isinstance(value, str):
        return None
    if not isinstance(value, dict):
        errors.append(
            _err(loc, "Give a description string, a schema object or null.", "union_type")
        )
        return None
    kind = _schema_kind(value)
    if kind == "text":
        return None
    if kind == "json":
        schema = value.get("json_schema")
        if isinstance(schema, dict):
            malformed = schema_shape_issues(schema)
            errors.extend(
                {
                    **_err((*loc, "json_schema"), f"{i.path}: {i.message}.", "schema_error"),
                    "path": i.path,
                }
                for i in malformed
            )
            return None if malformed else schema
        errors.append(
            _err((*loc, "json_schema"), "Give the JSON schema as an object.", "dict_type")
        )
        return None
    errors.append(_err((*loc, "type"), 'Use "type": "json" or "text".', "union_tag_invalid"))
    return None


def _err(loc: Loc, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": kind}
