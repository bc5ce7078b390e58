"""Server-sent events: the wire format and each run's emulated progress trace.

Events are written as ``event: <type>``, one ``data:`` line of compact JSON, and a blank line.
No ``id:`` lines are ever sent (group cursors travel in the JSON's ``event_id``), which makes
``: keepalive`` comments safe: the official SDK's decoder turns a comment that follows an
``id:`` line into an empty event and fails to parse it.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ._answers import subject_of
from ._state import StoredRun, rfc3339

__all__ = ["KEEPALIVE", "progress_trace", "sse"]

KEEPALIVE: Final = b": keepalive\n\n"


def sse(event: dict[str, Any]) -> bytes:
    """One event in SSE framing; the ``event:`` name is the payload's ``type``."""
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def _message(kind: str, text: str, at: float) -> dict[str, Any]:
    return {"type": f"task_run.progress_msg.{kind}", "message": text, "timestamp": rfc3339(at)}


def _stats(meter: float, considered: int, read: int, sample: list[str]) -> dict[str, Any]:
    return {
        "type": "task_run.progress_stats",
        "source_stats": {
            "num_sources_considered": considered,
            "num_sources_read": read,
            "sources_read_sample": sample,
        },
        "progress_meter": meter,
    }


def progress_trace(run: StoredRun) -> list[tuple[float, dict[str, Any]]]:
    """The run's progress events with the Unix time each happens, in order.

    They are spread over the running phase and all happen before the run ends, so a stream
    that replays the past and then waits for the rest never misses one.
    """
    subject = subject_of(run.input)
    slug = "-".join(subject.lower().split()[:4]) or "topic"
    urls = [f"https://www.example.com/{slug}/source-{i}" for i in range(1, 5)]
    steps: list[tuple[float, dict[str, Any] | tuple[str, str]]] = [
        (0.0, ("exec_status", "Run started (emulated by parallel-tools; no web research).")),
        (0.05, ("plan", f"Plan: look up {subject}, compare sources, then write the answer.")),
        (0.15, _stats(10.0, 6, 0, [])),
        (0.25, ("search", f"Searching the web for {subject}.")),
        (0.4, _stats(40.0, 12, 2, urls[:2])),
        (0.5, ("search", f"Searching for more sources that confirm facts about {subject}.")),
        (0.65, ("result", f"Read {len(urls)} sources about {subject}.")),
        (0.75, _stats(75.0, 18, 4, urls)),
        (0.9, ("exec_status", "Writing the answer.")),
        (0.95, _stats(95.0, 18, 4, urls)),
    ]
    fields = run.fields
    servers = fields.get("mcp_servers") if fields else None
    if servers:
        name = servers[0].get("name", "mcp")
        steps.insert(7, (0.7, ("tool_call", f"Called a tool on the MCP server {name}.")))
    start = run.start
    span = run.end - start
    trace = []
    for fraction, step in steps:
        at = start + fraction * span
        event = _message(*step, at) if isinstance(step, tuple) else step
        trace.append((at, event))
    return trace
