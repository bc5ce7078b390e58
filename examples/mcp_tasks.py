"""Task definitions to serve as typed MCP tools.

Every module-level `Task` here becomes one tool:

    parallel-tools mcp --tasks examples/mcp_tasks.py          # a file
    parallel-tools mcp --tasks mypkg.tasks                    # or an importable module
    parallel-tools mcp --tasks mypkg.tasks:company_profile    # or just one of them

The tool's arguments are the task's input model and its structured result is the output model
plus numbered citations, so an agent gets typed, cited fields back.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from parallel_tools import Task


class Company(BaseModel):
    """The company to profile."""

    company_name: str = Field(description="The company's name, e.g. 'Stripe'")
    company_website: str | None = Field(
        default=None, description="Its website, to tell it apart from namesakes"
    )


class CompanyProfile(BaseModel):
    """What the profile contains."""

    founding_date: str = Field(description="When it was founded, MM-YYYY")
    headquarters: str = Field(description="City and country of the headquarters")
    ceo: str = Field(description="Full name of the current CEO")
    employee_count: str = Field(description="Approximate number of employees, with the year")


company_profile = Task(
    name="company_profile",
    description="Profile a company: founding date, headquarters, CEO and size, with sources.",
    input=Company,
    output=CompanyProfile,
    processor="base",
)

fact_check = Task(
    name="fact_check",
    description="Check whether a claim is true, and say what the evidence shows.",
    output="A verdict (true, false, partly true or unverifiable) and a short explanation.",
    processor="lite",
)
