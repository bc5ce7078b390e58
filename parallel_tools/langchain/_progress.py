"""Relaying a run's progress to LangChain and LangGraph streaming while a tool waits.

Two audiences: `astream_events(version="v2")` consumers see LangChain custom events
(`on_custom_event` named `parallel_progress`), and LangGraph `stream_mode="custom"` consumers get
the same payload through the graph's stream writer. Both are best effort: outside a run or a
graph there is nobody to tell, and the wait must not fail because of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import adispatch_custom_event, dispatch_custom_event

from .._progress import Progress

__all__ = ["PROGRESS_EVENT", "ProgressRelay", "progress_payload"]

PROGRESS_EVENT = "parallel_progress"
"""The name of the custom event (and the `event` key of stream-writer chunks) for progress."""


def progress_payload(tool: str, progress: Progress) -> dict[str, Any]:
    """The JSON-friendly data of one progress event.

    Keys: `tool`, `run_id`, `status`, `message`, `kind`, `meter` (0-100), `sources_read`,
    `elapsed` (seconds), and `text` (a one-line summary for display).
    """
    return {
        "tool": tool,
        "run_id": progress.run_id,
        "status": progress.status,
        "message": progress.message,
        "kind": progress.kind,
        "meter": progress.meter,
        "sources_read": progress.sources_read,
        "elapsed": round(progress.elapsed, 3),
        "text": progress.describe(),
    }


def _stream_writer() -> Callable[[Any], None] | None:
    # langgraph is optional; inside a graph node its runtime carries the writer, elsewhere the
    # lookup fails (no config, or a config without a runtime).
    try:
        from langgraph.config import get_stream_writer
    except ImportError:
        return None
    try:
        return get_stream_writer()
    except (RuntimeError, LookupError, TypeError):
        return None


class ProgressRelay:
    """Sends `Progress` snapshots to the current LangChain run and LangGraph stream.

    Create it inside the tool call (so it finds the call's context), then pass `relay` to the
    sync client's `wait_with_progress`, or `arelay` to the async one's.

    Attributes:
        last: The latest snapshot relayed, if any.
    """

    def __init__(self, tool: str) -> None:
        self._tool = tool
        self._writer = _stream_writer()
        self.last: Progress | None = None

    def _write(self, data: dict[str, Any]) -> None:
        if self._writer is not None:
            self._writer({"event": PROGRESS_EVENT, **data})

    def relay(self, progress: Progress) -> None:
        """Relay one snapshot from synchronous code."""
        self.last = progress
        data = progress_payload(self._tool, progress)
        with contextlib.suppress(RuntimeError):  # outside a LangChain run nobody listens
            dispatch_custom_event(PROGRESS_EVENT, data)
        self._write(data)

    async def arelay(self, progress: Progress) -> None:
        """Relay one snapshot from asynchronous code."""
        self.last = progress
        data = progress_payload(self._tool, progress)
        with contextlib.suppress(RuntimeError):  # outside a LangChain run nobody listens
            await adispatch_custom_event(PROGRESS_EVENT, data)
        self._write(data)
