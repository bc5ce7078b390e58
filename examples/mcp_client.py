"""Talk to `parallel-tools mcp` the way a host does: over stdio, with the MCP SDK's client.

Uses Parallel's API when PARALLEL_API_KEY is set (runs are billed: two `lite` runs, $0.01),
else the server's built-in emulator (`--emulator`), and says which.

    python examples/mcp_client.py
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import TextContent

TASKS = Path(__file__).with_name("mcp_tasks.py")


async def main() -> None:
    real = bool(os.environ.get("PARALLEL_API_KEY"))
    print("Using Parallel's API (runs are billed)." if real else "Using the built-in emulator.")
    # Only the cheapest processor, so only the lite task (fact_check) can be offered.
    tasks = f"{TASKS}:fact_check"
    args = ["-m", "parallel_tools", "mcp", "--tasks", tasks, "--processors", "lite"]
    server = StdioServerParameters(
        command=sys.executable,
        args=args if real else [*args, "--emulator"],
        env={key: value for key, value in os.environ.items() if key.startswith("PARALLEL_")},
    )

    async def progress(value: float, total: float | None, message: str | None) -> None:
        print(f"  ... {message}")

    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        print("Tools:", ", ".join(tool.name for tool in tools))

        result = await client.call_tool(
            "research",
            {"question": "When was the United Nations founded?", "processor": "lite"},
            progress_callback=progress,
        )
        data = result.structured_content or {}
        print(f"\nStatus: {data.get('status')}, run {data.get('run_id')}")
        for block in result.content:
            if isinstance(block, TextContent):
                print(block.text)
        if data.get("status") != "completed":
            # The run outlasted the wait: collect it later, as a model would.
            later = await client.call_tool(
                "get_research_result", {"run_id": data["run_id"], "wait_seconds": 40}
            )
            data = later.structured_content or {}
        print("\nCitations:")
        for source in data.get("sources", []):
            print(f"  [{source['number']}] {source['url']}")

        typed = await client.call_tool(
            "fact_check", {"input": "The Eiffel Tower was finished in 1889."}
        )
        print("\nfact_check:", (typed.structured_content or {}).get("answer"))


if __name__ == "__main__":
    asyncio.run(main())
