"""Quickstart 1: a simple question, a cited text answer.

Runs against Parallel's API when PARALLEL_API_KEY is set, else against the built-in emulator
(which knows this question and answers it as the API did in Parallel's quickstart).

    python examples/quickstart_1_text.py
"""

from parallel_tools import connect

with connect() as client:
    result = client.run(
        "United Nations",
        output="The founding date of the company in the format MM-YYYY",
        processor="base",
    )
    print(f"Run {result.run_id}")
    print(result.to_markdown())
