"""Quickstart 3: structured input, structured output, defined once as a Task.

The same Task can become a LangChain tool, an MCP tool, or a batch enrichment over a CSV.

    python examples/quickstart_3_structured_input.py
"""

from typing import Literal

from pydantic import BaseModel, Field

from parallel_tools import Task, connect


class CompanyInput(BaseModel):
    """The company to research."""

    company_name: str = Field(description="The name of the company to research")
    company_website: str = Field(description="The website of the company to research")


class CompanyOutput(BaseModel):
    """What to find out about it."""

    founding_date: str = Field(
        description="The official founding date of the company in the format MM-YYYY"
    )
    employee_count: Literal[
        "1-10 employees",
        "11-50 employees",
        "51-200 employees",
        "201-500 employees",
        "501-1000 employees",
        "1001-5000 employees",
        "5001-10000 employees",
        "10001+ employees",
    ] = Field(description="The range of employees; check it against several sources.")
    funding_sources: str = Field(
        description="One to four sentences on the company's funding sources and their value."
    )


company_profile = Task(
    name="company_profile",
    description="Founding date, size and funding of a company, with sources.",
    input=CompanyInput,
    output=CompanyOutput,
    processor="core",
)

with connect() as client:
    result = client.run(
        company_profile,
        CompanyInput(company_name="United Nations", company_website="www.un.org"),
    )
    print(result.parsed.model_dump_json(indent=2))
    print()
    print(result.to_markdown())
