"""Enrich a CSV: one run per row through one task group, resumable, output in input order.

Interrupt it (Ctrl-C, or even kill -9) and run it again: it resumes from the journal beside the
output without paying for any row twice. The empty row is reported, not sent.

    python examples/enrich_csv.py [OUTPUT.csv]

The same job from the command line:

    parallel-tools enrich examples/data/companies.csv -o out.csv \\
        --output "founded: the founding year" --output "headquarters: the headquarters city"
"""

import sys
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from parallel_tools import Task, connect
from parallel_tools.enrich import enrich


class Company(BaseModel):
    company_name: str
    company_website: str


class Facts(BaseModel):
    founded: str = Field(description="The year the organisation was founded, YYYY")
    headquarters: str = Field(description="The city of its headquarters")


facts = Task("company_facts", "Founding year and headquarters.", input=Company, output=Facts)

source = Path(__file__).parent / "data" / "companies.csv"
target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "companies.csv"

with connect() as client:
    summary = enrich(client, source, target, task=facts, processor="lite")

print(f"{summary.completed} enriched, {summary.invalid} invalid, {summary.failed} failed")
print(f"Output: {summary.output_path}")
if summary.errors_path:
    print(f"Errors: {summary.errors_path}")
print(target.read_text())
