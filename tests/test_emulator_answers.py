"""What runs answer: built-in and custom fixtures, and schema-valid synthetic outputs."""

from __future__ import annotations

import enum
import json
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import httpx
import pytest
from parallel.types import TaskRunResult as SDKTaskRunResult
from pydantic import BaseModel, Field

from parallel_tools._models import TaskRunResult
from parallel_tools._schema import compile_json_schema
from parallel_tools.emulator import Emulator, EmulatorServer

SEED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "founding_date": {
            "type": "string",
            "description": "The official founding date of the company in the format MM-YYYY",
        },
        "employee_count": {
            "type": "string",
            "enum": [
                "1-10 employees",
                "11-50 employees",
                "51-200 employees",
                "201-500 employees",
                "501-1000 employees",
                "1001-5000 employees",
                "5001-10000 employees",
                "10001+ employees",
            ],
            "description": "The range of employees working at the company.",
        },
        "funding_sources": {
            "type": "string",
            "description": "A detailed description of the company's funding sources.",
        },
    },
    "required": ["founding_date", "employee_count", "funding_sources"],
    "additionalProperties": False,
}
UN_INPUT = {"company_name": "United Nations", "company_website": "www.un.org"}
EXAMPLE_HOSTS = re.compile(r"^([a-z]+\.)?example\.(com|org|net)$")


def run_output(api: httpx.Client, input: Any, output_schema: Any = None, **body: Any) -> Any:
    payload: dict[str, Any] = {"input": input, "processor": "core", **body}
    if output_schema is not None:
        payload["task_spec"] = {"output_schema": output_schema}
    created = api.post("/v1/tasks/runs", json=payload)
    assert created.status_code == 202, created.text
    result = api.get(f"/v1/tasks/runs/{created.json()['run_id']}/result")
    assert result.status_code == 200
    body_json = result.json()
    TaskRunResult.model_validate(body_json)
    SDKTaskRunResult.model_validate(body_json)
    return body_json["output"]


def json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json", "json_schema": schema}


# --- fixtures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("input", ["United Nations", UN_INPUT, "  united nations "])
def test_the_quickstart_structured_answer_is_built_in(api: httpx.Client, input: Any) -> None:
    output = run_output(api, input, json_schema(SEED_SCHEMA))
    assert output["type"] == "json"
    content = output["content"]
    assert list(content) == ["funding_sources", "employee_count", "founding_date"]
    assert content["founding_date"] == "10-1945"
    assert content["employee_count"] == "10001+ employees"
    assert "assessed" in content["funding_sources"] and "voluntary" in content["funding_sources"]
    basis = {b["field"]: b for b in output["basis"]}
    assert [b["field"] for b in output["basis"]] == list(content)
    assert {b["field"]: b["confidence"] for b in output["basis"]} == {
        "funding_sources": "high",
        "employee_count": "low",
        "founding_date": "high",
    }
    assert [(c["title"], c["url"]) for c in basis["founding_date"]["citations"]] == [
        (
            "Funding sources",
            "https://www.financingun.report/un-financing/un-funding/funding-entity",
        ),
        ("History of the United Nations", "https://www.un.org/en/about-us/history-of-the-un"),
        (
            "The Formation of the United Nations, 1945",
            "https://history.state.gov/milestones/1937-1945/un",
        ),
    ]
    assert [c["url"] for c in basis["funding_sources"]["citations"]] == [
        "https://www.financingun.report/un-financing/un-funding/funding-entity",
        "https://betterworldcampaign.org/us-funding-for-the-un",
    ]


def test_the_structured_fixture_also_fits_the_sdk_pydantic_schema(api: httpx.Client) -> None:
    class CompanyOutput(BaseModel):
        founding_date: str = Field(description="Founding date, MM-YYYY")
        employee_count: Literal["1-10 employees", "10001+ employees"]
        funding_sources: str

    output = run_output(api, "United Nations", json_schema(CompanyOutput.model_json_schema()))
    assert output["content"]["founding_date"] == "10-1945"


def test_fixtures_only_answer_what_they_fit(api: httpx.Client) -> None:
    other = {
        "type": "object",
        "properties": {"founding_date": {"type": "string"}, "ceo": {"type": "string"}},
        "required": ["founding_date", "ceo"],
        "additionalProperties": False,
    }
    output = run_output(api, "United Nations", json_schema(other))
    assert set(output["content"]) == {"founding_date", "ceo"}
    assert output["content"]["founding_date"] != "10-1945"
    text = run_output(api, "United Nations", "Where is the headquarters?")
    assert text["type"] == "text" and text["content"] != "10-1945"
    auto = run_output(api, "United Nations")
    assert auto["content"]["founding_date"] == "10-1945"
    assert auto["output_schema"]["properties"]["employee_count"] == {"type": "string"}


def test_custom_fixtures_are_returned_verbatim(
    api: httpx.Client, parallel_emulator: EmulatorServer
) -> None:
    emulator = parallel_emulator.emulator
    basis = [
        {
            "field": "ceo",
            "citations": [
                {
                    "url": "https://acme.example/about",
                    "title": "About",
                    "excerpts": ["Wile E. Coyote runs Acme."],
                }
            ],
            "reasoning": "Stated on the company's page.",
            "confidence": "high",
        }
    ]
    emulator.add_fixture([{"company": "Acme"}, "Acme"], {"ceo": "Wile E. Coyote"}, basis)
    schema = {
        "type": "object",
        "properties": {"ceo": {"type": "string"}},
        "required": ["ceo"],
        "additionalProperties": False,
    }
    for input in ({"company": "Acme"}, "ACME"):
        output = run_output(api, input, json_schema(schema))
        assert output == {"type": "json", "content": {"ceo": "Wile E. Coyote"}, "basis": basis}
    # Later fixtures win; a processor-specific one only answers that processor.
    emulator.add_fixture("Acme", {"ceo": "Road Runner"}, processor="pro")
    assert run_output(api, "Acme", json_schema(schema))["content"]["ceo"] == "Wile E. Coyote"
    pro = run_output(api, "Acme", json_schema(schema), processor="pro")
    assert pro["content"] == {"ceo": "Road Runner"}
    assert [b["field"] for b in pro["basis"]] == ["ceo"]  # generated when not given


def test_fixtures_load_from_a_json_file(
    api: httpx.Client, parallel_emulator: EmulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "fixtures.json"
    path.write_text(
        json.dumps(
            {
                "fixtures": [
                    {"input": "Initech", "output": "Founded in 1992.", "basis": []},
                    {"inputs": ["Globex", "Globex Corp"], "output": {"hq": "Cypress Creek"}},
                ]
            }
        )
    )
    assert parallel_emulator.emulator.load_fixtures(path) == 2
    assert run_output(api, "Initech", "Founding year")["content"] == "Founded in 1992."
    assert run_output(api, "Globex Corp")["content"] == {"hq": "Cypress Creek"}
    for bad in (
        '{"fixtures": {}}',
        "[1]",
        '[{"input": "x"}]',
        '[{"input": [1], "output": "x"}]',
        '[{"input": "x", "output": "y", "colour": "red"}]',
        "not json",
    ):
        path.write_text(bad)
        with pytest.raises(ValueError, match="ixture"):
            parallel_emulator.emulator.load_fixtures(path)


def test_builtin_fixtures_can_be_left_out() -> None:
    emulator = Emulator(builtin_fixtures=False)
    with (
        emulator.serve() as server,
        httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}) as client,
    ):
        output = run_output(client, "United Nations", "The founding date, MM-YYYY")
        assert output["content"] != "10-1945"


# --- synthetic answers --------------------------------------------------------------------------


class Sector(enum.Enum):
    TECH = "tech"
    ENERGY = "energy"


class Person(BaseModel):
    name: str
    email: str = Field(description="Work email address")
    joined: str = Field(description="Start date, YYYY-MM-DD")


class Company(BaseModel):
    legal_name: str
    website: str
    founded_year: int
    revenue_musd: float
    public: bool
    sector: Sector
    stage: Literal["seed", "growth", "mature"]
    ticker: str | None
    employees: int | str
    executives: list[Person]
    tags: list[str]
    headquarters: Person | None


def test_synthetic_answers_fit_every_kind_of_field(api: httpx.Client) -> None:
    schema = compile_json_schema(Company)
    output = run_output(api, {"company_name": "Hooli"}, json_schema(schema))
    company = Company.model_validate(output["content"])
    assert company.website.startswith("https://")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", company.executives[0].joined)
    assert "@" in company.executives[0].email
    fields = [b["field"] for b in output["basis"]]
    top = list(Company.model_fields)
    assert fields == [
        *top[:9],
        "executives",
        "executives.0",
        "executives.1",
        "tags",
        "tags.0",
        "tags.1",
        "headquarters",
    ]
    for basis in output["basis"]:
        assert basis["reasoning"] and basis["confidence"] in ("high", "medium", "low")
        assert basis["citations"]
        for citation in basis["citations"]:
            assert EXAMPLE_HOSTS.match(urlparse(citation["url"]).hostname or "")
            assert citation["title"] and citation["excerpts"]


def test_raw_schema_features(api: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "maybe": {"type": ["integer", "null"]},
            "choice": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "fixed": {"type": "string", "enum": ["only"]},
            "nullable_enum": {"type": ["string", "null"], "enum": ["a", "b", None]},
            "launch": {"type": "string", "description": "Month of launch, MM-YYYY"},
            "untyped": {"description": "Anything"},
            "nested": {
                "type": "object",
                "properties": {"list": {"type": "array", "items": {"type": "boolean"}}},
                "required": ["list"],
                "additionalProperties": False,
            },
        },
        "required": ["maybe", "choice", "fixed", "nullable_enum", "launch", "untyped", "nested"],
        "additionalProperties": False,
    }
    content = run_output(api, "Widget", json_schema(schema))["content"]
    assert isinstance(content["maybe"], int) and not isinstance(content["maybe"], bool)
    assert isinstance(content["choice"], int | float)
    assert content["fixed"] == "only"
    assert content["nullable_enum"] in ("a", "b")
    assert re.fullmatch(r"\d\d-\d{4}", content["launch"])
    assert isinstance(content["untyped"], str)
    assert all(isinstance(v, bool) for v in content["nested"]["list"])


def test_text_answers_cite_inline(api: httpx.Client) -> None:
    output = run_output(api, "Hooli", "A short report on the company")
    assert output["type"] == "text"
    (basis,) = output["basis"]
    assert basis["field"] == "output"
    linked = re.findall(r"\]\((https://[^)]+)\)", output["content"])
    assert set(linked) == {c["url"] for c in basis["citations"]}
    assert "emulator" in output["content"]


def test_auto_answers_report_their_schema(api: httpx.Client) -> None:
    output = run_output(api, "Hooli", {"type": "auto"})
    schema = output["output_schema"]
    assert set(output["content"]) == set(schema["properties"])
    assert "key_facts.0" in [b["field"] for b in output["basis"]]


def test_answers_are_deterministic_per_seed() -> None:
    schema = json_schema(compile_json_schema(Company))

    def answer(seed: int) -> Any:
        with (
            Emulator(seed=seed, time_scale=0).serve() as server,
            httpx.Client(base_url=server.base_url, headers={"x-api-key": "k"}) as client,
        ):
            return run_output(client, "Hooli", schema)

    first, again, other = answer(1), answer(1), answer(2)
    assert first == again
    assert first["content"] != other["content"]
