"""Quickstart 2: a simple query, a structured and cited answer.

The output is a pydantic model; parallel-tools turns it into a schema Parallel accepts and
validates the answer against it. Every field comes back with its citations and confidence.

    python examples/quickstart_2_structured.py
"""

from typing import Literal

from pydantic import BaseModel, Field

from parallel_tools import connect


class CompanyOutput(BaseModel):
    """What to find out about a company."""

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


with connect() as client:
    result = client.run("United Nations", output=CompanyOutput, processor="core")
    company = result.parsed  # a CompanyOutput instance
    print(f"Founded {company.founding_date}, {company.employee_count}.")
    for citation in result.citations("founding_date"):
        print(f"  source: {citation.title or citation.url} <{citation.url}>")
    if result.low_confidence_fields:
        print(f"Check these, Parallel was not sure: {', '.join(result.low_confidence_fields)}")
    print()
    print(result.to_markdown())
