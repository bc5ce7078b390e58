"""The schema compiler: pydantic models and JSON schemas become specs Parallel accepts, and
specs Parallel would reject fail here, before anything is paid for."""

from __future__ import annotations

import datetime
import enum
import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, HttpUrl

from parallel_tools import SchemaError, SchemaWarning, check_output_schema, task_spec
from parallel_tools._schema import check_request_size, compile_json_schema

EMPLOYEES = Literal[
    "1-10 employees",
    "11-50 employees",
    "51-200 employees",
    "201-500 employees",
    "501-1000 employees",
    "1001-5000 employees",
    "5001-10000 employees",
    "10001+ employees",
]


class CompanyOutput(BaseModel):
    """The quickstart's structured output."""

    founding_date: str = Field(
        description="The official founding date of the company in the format MM-YYYY"
    )
    employee_count: EMPLOYEES = Field(description="The range of employees.")
    funding_sources: str = Field(description="1-4 sentences on the company's funding sources.")


class Person(BaseModel):
    name: str = Field(description="Full name")
    role: str | None = None
    born: datetime.date | None = Field(None, description="Birth date")


class Profile(BaseModel):
    founding_date: str = Field(pattern=r"^\d\d-\d{4}$", description="MM-YYYY")
    people: list[Person] = Field(max_length=5, description="Key people")
    website: HttpUrl
    score: float = Field(ge=0, le=1)
    tier: Literal["a", "b"] | None = None
    tags: list[str] = Field(default_factory=list, min_length=1)


def walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def test_the_quickstart_model_compiles_to_the_quickstart_schema() -> None:
    spec = task_spec(output=CompanyOutput)
    assert spec is not None
    schema = spec["output_schema"]["json_schema"]
    assert spec["output_schema"]["type"] == "json"
    assert schema["type"] == "object"
    assert schema["required"] == ["founding_date", "employee_count", "funding_sources"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["employee_count"]["enum"][-1] == "10001+ employees"
    assert schema["properties"]["employee_count"]["type"] == "string"
    assert schema["description"] == "The quickstart's structured output."
    assert "title" not in json.dumps(schema)
    assert check_output_schema(schema) == []


def test_nested_optional_and_constrained_models_follow_parallels_rules() -> None:
    schema = compile_json_schema(Profile)
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text and '"title"' not in text
    for node in walk(schema):
        if node.get("type") == "object" or "properties" in node:
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])
        for keyword in ("format", "pattern", "maxItems", "minItems", "minimum", "maximum"):
            assert keyword not in node
    person = schema["properties"]["people"]["items"]["properties"]
    assert person["role"]["type"] == ["string", "null"]
    assert person["born"]["type"] == ["string", "null"]
    assert "format: date (YYYY-MM-DD)" in person["born"]["description"]
    assert person["born"]["description"].startswith("Birth date")
    assert "at most 5 items" in schema["properties"]["people"]["description"]
    assert (
        "must match the regular expression" in schema["properties"]["founding_date"]["description"]
    )
    assert schema["properties"]["score"]["description"] == "at least 0; at most 1"
    assert "format: URL" in schema["properties"]["website"]["description"]
    assert schema["properties"]["tier"]["enum"] == ["a", "b", None]
    assert "at least 1 item" in schema["properties"]["tags"]["description"]
    assert check_output_schema(schema) == []


def test_the_original_model_still_validates_what_the_compiled_schema_allows() -> None:
    answer = {
        "founding_date": "10-1945",
        "people": [{"name": "A", "role": None, "born": None}],
        "website": "https://www.un.org",
        "score": 0.5,
        "tier": None,
        "tags": ["x"],
    }
    assert Profile.model_validate(answer).people[0].name == "A"
    with pytest.raises(ValueError):
        Profile.model_validate({**answer, "score": 3})


def test_text_auto_and_none() -> None:
    assert task_spec() is None
    assert task_spec(output="The founding date") == {
        "output_schema": {"type": "text", "description": "The founding date"}
    }
    assert task_spec(output="auto") == {"output_schema": {"type": "auto"}}
    with_input = task_spec(input=Person)
    assert with_input is not None and with_input["output_schema"] == {"type": "auto"}


def test_input_models_keep_their_own_required_list() -> None:
    spec = task_spec(input=Person, output="x")
    assert spec is not None
    schema = spec["input_schema"]["json_schema"]
    assert schema["required"] == ["name"]
    assert "additionalProperties" not in schema


def test_raw_and_wrapped_json_schemas_are_normalised() -> None:
    raw = {
        "type": "object",
        "properties": {"a": {"type": "string", "maxLength": 10}, "b": {"type": "integer"}},
        "required": ["a"],
    }
    for given in (raw, {"type": "json", "json_schema": raw}):
        spec = task_spec(output=given)
        assert spec is not None
        schema = spec["output_schema"]["json_schema"]
        assert schema["required"] == ["a", "b"]
        assert schema["properties"]["b"]["type"] == ["integer", "null"]
        assert schema["properties"]["a"] == {
            "type": "string",
            "description": "at most 10 characters",
        }


def test_recursive_models_are_rejected_with_advice() -> None:
    class Node(BaseModel):
        name: str
        children: list[Node]

    with pytest.raises(SchemaError, match="refers to itself"):
        compile_json_schema(Node)


def test_free_form_dicts_are_rejected_with_advice() -> None:
    class Bag(BaseModel):
        values: dict[str, int]

    with pytest.raises(SchemaError) as info:
        compile_json_schema(Bag)
    assert "free-form mapping" in str(info.value)
    assert info.value.problems


def test_tuples_are_rejected() -> None:
    class Pair(BaseModel):
        pair: tuple[str, int]

    with pytest.raises(SchemaError, match="tuples"):
        compile_json_schema(Pair)


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        node = {"type": "object", "properties": {"x": node}}
    return node


def test_depth_limit() -> None:
    compile_json_schema(nested(5))
    with pytest.raises(SchemaError, match="nests 6 levels"):
        compile_json_schema(nested(6))


def test_property_and_enum_limits() -> None:
    many = {"type": "object", "properties": {f"f{i}": {"type": "string"} for i in range(101)}}
    with pytest.raises(SchemaError, match="101 properties"):
        compile_json_schema(many)
    enums = {
        "type": "object",
        "properties": {
            f"e{j}": {"type": "string", "enum": [f"v{i}" for i in range(200)]} for j in range(3)
        },
    }
    with pytest.raises(SchemaError, match="600 values"):
        compile_json_schema(enums)
    big = {
        "type": "object",
        "properties": {"e": {"type": "string", "enum": ["x" * 40 + str(i) for i in range(260)]}},
    }
    with pytest.raises(SchemaError, match="more than 250 values"):
        compile_json_schema(big)


def test_root_rules() -> None:
    issues = check_output_schema({"type": "string"})
    assert any("root must be" in i.message for i in issues)
    issues = check_output_schema({"anyOf": [{"type": "object"}]})
    assert any("union" in i.message for i in issues)
    lone_null = {"type": "object", "properties": {"a": {"type": "null"}}}
    assert any(
        i.severity == "error" and "null" in i.message for i in check_output_schema(lone_null)
    )


def test_check_reports_warnings_for_what_the_api_accepts_with_a_warning() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    issues = check_output_schema(schema)
    assert {i.severity for i in issues} == {"warning"}
    assert any("required" in i.message for i in issues)
    assert any("additionalProperties" in i.message for i in issues)


def test_unsupported_keywords_in_a_raw_schema_are_errors_for_the_checker() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "format": "date"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    issues = check_output_schema(schema)
    assert [i.path for i in issues] == ["$.properties.a.format"]


def test_reserved_field_names_warn() -> None:
    class WithSources(BaseModel):
        answer: str
        sources: list[str]

    with pytest.warns(SchemaWarning, match="sources"):
        task_spec(output=WithSources)


def test_spec_size_limit() -> None:
    class Wordy(BaseModel):
        a: str = Field(description="x" * 16_000)

    with pytest.raises(SchemaError, match="15,000"):
        task_spec(output=Wordy)


def test_request_size_limit() -> None:
    assert check_request_size({"output_schema": "x"}, "short") is None
    message = check_request_size({"output_schema": "x"}, "y" * 25_000)
    assert message is not None and "25,000" in message
    assert check_request_size(None, {"k": "v" * 24_000}) is None


def test_bad_output_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        task_spec(output=42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("node", "where"),
    [
        ({"type": "strung"}, "$.properties.a.type"),
        ({"type": []}, "$.properties.a.type"),
        ({"type": "object", "properties": [1, 2]}, "$.properties.a.properties"),
        (
            {"type": "object", "properties": {"x": {"type": "string"}}, "required": 5},
            "$.properties.a.required",
        ),
        ({"anyOf": 5}, "$.properties.a.anyOf"),
        ({"anyOf": []}, "$.properties.a.anyOf"),
        ({"type": "array", "items": [{"type": "string"}]}, "$.properties.a.items"),
        ({"type": "string", "enum": "abc"}, "$.properties.a.enum"),
        (7, "$.properties.a"),
    ],
)
def test_malformed_schemas_are_errors_not_crashes(node: Any, where: str) -> None:
    schema = {"type": "object", "properties": {"a": node}}
    errors = [i for i in check_output_schema(schema) if i.severity == "error"]
    assert [i.path for i in errors] == [where]


def test_references_are_a_warning_the_compiler_never_emits() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A"}},
        "required": ["a"],
        "additionalProperties": False,
        "$defs": {"A": {"type": "string"}},
    }
    assert [(i.severity, i.path) for i in check_output_schema(schema)] == [
        ("warning", "$.properties.a")
    ]
    compiled = compile_json_schema(schema)
    assert compiled["properties"]["a"] == {"type": "string"}


def test_inline_refs_resolves_nested_definitions_and_stops_at_recursion() -> None:
    from parallel_tools._schema import inline_refs

    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A", "description": "x"}, "n": {"$ref": "#/$defs/N"}},
        "$defs": {
            "A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/B"}}},
            "B": {"type": "string"},
            "N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}},
        },
    }
    resolved = inline_refs(schema)
    assert "$defs" not in resolved
    assert resolved["properties"]["a"] == {
        "type": "object",
        "properties": {"b": {"type": "string"}},
        "description": "x",
    }
    assert resolved["properties"]["n"]["properties"]["next"] == {}


def test_fields_with_defaults_stay_non_null_so_the_model_accepts_every_allowed_answer() -> None:

    class Color(enum.StrEnum):
        red = "red"
        blue = "blue"

    class Defaults(BaseModel):
        employees: int = 0
        tags: list[str] = Field(default_factory=list)
        color: Color = Color.red
        note: str | None = None

    schema = compile_json_schema(Defaults)
    props = schema["properties"]
    assert props["employees"]["type"] == "integer"
    assert props["tags"]["type"] == "array"
    assert "null" not in json.dumps(props["color"])
    assert props["note"]["type"] == ["string", "null"]
    assert schema["required"] == ["employees", "tags", "color", "note"]
    Defaults.model_validate({"employees": 3, "tags": [], "color": "blue", "note": None})
