"""TaskResult: both sample responses of the quickstart parse exactly, and their basis is arranged
for citing (numbered, deduplicated, by field)."""

from __future__ import annotations

import copy
from typing import Literal

import pytest
from pydantic import BaseModel

from parallel_tools import OutputValidationError, TaskResult, TaskRunResult

from .fake_api import load_fixture

TEXT = load_fixture("seed_text_result.json")
JSON = load_fixture("seed_json_result.json")


class CompanyOutput(BaseModel):
    founding_date: str
    employee_count: Literal["1-10 employees", "10001+ employees"]
    funding_sources: str


def test_the_text_sample_parses_exactly() -> None:
    result = TaskResult.from_run_result(TEXT)
    assert result.run_id == "trun_9907962f83aa4d9d98fd7f4bf745d654"
    assert result.interaction_id == result.run_id  # absent on the wire: falls back to the run id
    assert result.parsed == "10-1945" == result.content
    assert result.output.type == "text"
    assert list(result.basis) == ["output"]
    assert result.confidence("output") is None  # "" means no rating
    urls = [c.url for c in result.citations()]
    assert urls == [
        "https://www.un.org/en/about-us/history-of-the-un",
        "https://history.state.gov/milestones/1937-1945/un",
        "https://en.wikipedia.org/wiki/United_Nations",
        "https://research.un.org/en/unmembers/founders",
    ]
    assert result.run.created_at == "2025-04-23T20:21:48.037943Z"


def test_text_with_a_trailing_newline_keeps_its_markers_on_the_last_line() -> None:
    data = copy.deepcopy(TEXT)
    data["output"]["content"] = "A report.\n\nIts last line.\n"
    markdown = TaskResult.from_run_result(data).to_markdown()
    assert "Its last line. [1][2][3][4]" in markdown


def test_the_text_sample_renders_with_numbered_sources() -> None:
    markdown = TaskResult.from_run_result(TEXT).to_markdown()
    assert markdown.splitlines()[0] == "10-1945 [1][2][3][4]"
    assert "[4] https://research.un.org/en/unmembers/founders" in markdown


def test_the_json_sample_parses_into_the_model() -> None:
    result = TaskResult.from_run_result(JSON, CompanyOutput)
    assert isinstance(result.parsed, CompanyOutput)
    assert result.parsed.founding_date == "10-1945"
    assert result.parsed.employee_count == "10001+ employees"
    assert result.run.processor == "core"
    assert result.warnings == []
    assert result.confidence("employee_count") == "low"
    assert result.confidence("founding_date") == "high"
    assert result.low_confidence_fields == ["employee_count"]
    assert set(result.basis) == {"funding_sources", "employee_count", "founding_date"}


def test_citations_are_deduplicated_in_order_and_merged() -> None:
    result = TaskResult.from_run_result(JSON)
    urls = [c.url for c in result.citations()]
    assert urls == [
        "https://www.financingun.report/un-financing/un-funding/funding-entity",
        "https://betterworldcampaign.org/us-funding-for-the-un",
        "https://www.un.org/en/about-us/history-of-the-un",
        "https://history.state.gov/milestones/1937-1945/un",
    ]
    founding = result.citations("founding_date")
    assert [c.title for c in founding] == [
        "Funding sources",
        "History of the United Nations",
        "The Formation of the United Nations, 1945",
    ]
    assert result.citations("nope") == []


def test_sources_are_numbered_once_with_the_fields_they_support() -> None:
    result = TaskResult.from_run_result(JSON)
    first = result.sources[0]
    assert first.number == 1
    assert first.fields == ["funding_sources", "employee_count", "founding_date"]
    assert result.source_numbers("founding_date") == [1, 3, 4]
    markdown = result.to_markdown()
    assert "- founding_date: 10-1945 [1][3][4] (confidence: high)" in markdown
    assert "- employee_count: 10001+ employees [1] (confidence: low)" in markdown
    assert (
        "[2] US Funding for the UN - https://betterworldcampaign.org/us-funding-for-the-un"
        in markdown
    )
    assert markdown.rstrip().endswith("Low confidence: employee_count")


def test_list_elements_have_their_own_basis_by_dot_path() -> None:
    data = copy.deepcopy(JSON)
    data["output"]["content"] = {"people": [{"name": "A"}, {"name": "B"}]}
    data["output"]["basis"] = [
        {"field": "people", "citations": [{"url": "https://x.org/all"}], "reasoning": "r"},
        {
            "field": "people.0",
            "citations": [{"url": "https://x.org/a"}],
            "reasoning": "r",
            "confidence": "low",
        },
        {"field": "people.1", "citations": [{"url": "https://x.org/b"}], "reasoning": "r"},
    ]
    result = TaskResult.from_run_result(data)
    assert [c.url for c in result.citations("people")] == [
        "https://x.org/all",
        "https://x.org/a",
        "https://x.org/b",
    ]
    assert [c.url for c in result.citations("people.1")] == ["https://x.org/b"]
    assert result.low_confidence_fields == ["people.0"]
    markdown = result.to_markdown()
    assert "- people: [1]" in markdown
    assert "  - [0]: [2] (confidence: low)" in markdown
    assert "    - name: A" in markdown


def test_json_content_sent_as_a_string_is_parsed() -> None:
    data = copy.deepcopy(JSON)
    data["output"]["content"] = (
        '{"founding_date": "10-1945", "employee_count": "1-10 employees", "funding_sources": "x"}'
    )
    result = TaskResult.from_run_result(data, CompanyOutput)
    assert result.parsed is not None and result.parsed.employee_count == "1-10 employees"


def test_output_that_does_not_fit_the_model_keeps_the_raw_result() -> None:
    data = copy.deepcopy(JSON)
    data["output"]["content"]["employee_count"] = "about 37,000"
    with pytest.raises(OutputValidationError) as info:
        TaskResult.from_run_result(data, CompanyOutput)
    assert info.value.run_id == "trun_0824bb53c79c407b89614ba22e9db51c"
    assert info.value.result.content["employee_count"] == "about 37,000"
    assert info.value.result.citations("founding_date")
    assert info.value.errors[0]["loc"] == ["employee_count"]
    assert "employee_count" in str(info.value)


def test_a_wire_model_works_as_input_and_unknown_fields_survive() -> None:
    data = copy.deepcopy(TEXT)
    data["output"]["beta_fields"] = {"x": 1}
    data["run"]["brand_new"] = True
    wire = TaskRunResult.model_validate(data)
    result = TaskResult.from_run_result(wire)
    assert result.run.model_extra == {"brand_new": True}
    assert result.output.model_dump()["beta_fields"] == {"x": 1}
